"""``evaluate``: score one grid cell's samples (FID, IS, KID, precision/recall, mode coverage, FID over training)."""

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
    if result.status != "ok":
        typer.echo(f"{variant}-{seed}: {result.status} ({result.reason}); no metrics")
        return
    ci = f" [{result.fid_ci_low:.3f}, {result.fid_ci_high:.3f}]" if result.fid_ci_low is not None else ""
    classes = f"classes {result.classes_covered}/{result.num_classes}  " if result.num_classes else ""
    typer.echo(
        f"{variant}-{seed}: FID {result.fid:.3f}{ci}  IS {_number(result.isc_mean, 3)}  "
        f"KID {result.kid_mean:.5f}  precision {result.precision:.3f}  recall {result.recall:.3f}  {classes}"
        f"NDB {result.ndb}/{result.ndb_bins}  ({result.num_samples} samples, {result.feature_extractor})"
    )
    for extractor, scores in (result.feature_spaces or {}).items():
        if extractor != result.feature_extractor:
            typer.echo(f"{variant}-{seed}: FID {scores.fid:.3f}  IS {_number(scores.isc_mean, 3)}  "
                       f"KID {scores.kid_mean:.5f}  ({extractor})")


def _number(value: float | None, digits: int) -> str:
    """A metric for the terminal: n/a where it does not apply."""
    return "n/a" if value is None else f"{value:.{digits}f}"
