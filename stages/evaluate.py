"""``evaluate``: score one grid cell's samples with FID, IS and KID."""

from __future__ import annotations

from pathlib import Path

import typer

from stages.common import ParamsOption, SeedOption, VariantOption, check_in_grid, exits_on_bad_input, load


@exits_on_bad_input
def main(variant: VariantOption, seed: SeedOption, params: ParamsOption = Path("params.yaml")) -> None:
    """Generate samples from a trained cell, score them against the test split, write metrics/<variant>-<seed>.json."""
    cfg = load(params)
    check_in_grid(cfg, variant, seed)
    from pipeline.evaluation.cell import evaluate_cell  # heavy imports after validation

    result = evaluate_cell(cfg, variant, seed)
    if result["status"] != "ok":
        typer.echo(f"{variant}-{seed}: {result['status']} ({result['reason']}); no metrics")
        return
    typer.echo(
        f"{variant}-{seed}: FID {result['fid']:.3f}  IS {result['isc_mean']:.3f}  "
        f"KID {result['kid_mean']:.5f}  ({result['num_samples']} samples, {result['feature_extractor']})"
    )
