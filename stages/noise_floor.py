"""``noise-floor``: real-vs-real FID (test split vs train subsets of its size) in every configured feature space."""

from __future__ import annotations

from pathlib import Path

import typer

from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Score real test images against real training images; write metrics/noise-floor.json."""
    cfg = load(params)
    from pipeline.evaluation.noise_floor import write_noise_floor  # heavy imports after validation

    result = write_noise_floor(cfg.evaluate)
    for extractor, floor in result.feature_spaces.items():
        spread = f" ± {floor.fid_std:.3f}" if floor.fid_std is not None else ""
        typer.echo(f"noise floor ({extractor}): FID {floor.fid_mean:.3f}{spread} "
                   f"({result.num_samples} vs {result.num_samples} real images, {result.repeats} repeats)")
