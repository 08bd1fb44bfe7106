"""``feature-check``: FID of disturbed real images at growing levels, per feature space: can it see the defects?"""

from __future__ import annotations

from pathlib import Path

import typer

from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Score noised, blurred, salt-and-peppered and mode-dropped training images against the test split; write
    metrics/feature-check.json."""
    cfg = load(params)
    from pipeline.evaluation.feature_check import write_feature_check  # heavy imports after validation

    result = write_feature_check(cfg.evaluate)
    for extractor, space in result["feature_spaces"].items():
        for name, check in space["disturbances"].items():
            verdict = "rises with the level" if check["monotone"] else "NOT monotone: cannot rank this defect"
            fids = ", ".join(f"{fid:.2f}" for fid in check["fid"])
            typer.echo(f"feature check ({extractor}) {name}: FID {fids} — {verdict}")
