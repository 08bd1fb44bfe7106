"""``prepare`` stage: dataset source → validated, resized arrays in ``data/prepared/`` with ``meta.json``."""

from __future__ import annotations

from pathlib import Path

from pipeline import layout
from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Load the dataset named in the params' data section, validate it, resize it and write data/prepared/."""
    cfg = load(params)
    from pipeline.data import prepare_dataset  # heavy (torch) imports after validation, not at CLI start-up

    meta = prepare_dataset(cfg.data, layout.PREPARED_DIR)
    c, h, w = meta["shape"]
    print(
        f"prepared {meta['dataset']}: {meta['counts']['train']} train + {meta['counts']['test']} test images, "
        f"{c}x{h}x{w}, {meta['num_classes']} classes -> {layout.PREPARED_DIR} (fingerprint {meta['fingerprint'][:12]})"
    )
