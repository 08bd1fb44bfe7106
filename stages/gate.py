"""``gate``: the quality gate of scheduled retraining — this run's per-seed FIDs against the committed report's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages.common import ParamsOption, exits_on_bad_input, load

METRICS = Path("reports/metrics.json")


@exits_on_bad_input
def main(
    params: ParamsOption = Path("params.yaml"),
    rev: Annotated[str | None, typer.Option("--rev", help="Baseline git revision (default: retrain.baseline).")] = None,
    tolerance: Annotated[
        float | None, typer.Option("--tolerance", min=0, help="Relative FID rise allowed (default: retrain.fid_tolerance).")
    ] = None,
    summary: Annotated[Path, typer.Option("--summary", help="Markdown summary to write.")] = Path("reports/retrain.md"),
) -> None:
    """Compare reports/metrics.json with the committed one, write a Markdown summary, and exit 1 when a variant
    regressed beyond seed noise and the tolerance, or lost every ok cell."""
    cfg = load(params)
    from pipeline.gate import run_gate
    from pipeline.io import atomic_write_text

    text, failed = run_gate(metrics=METRICS, rev=rev or cfg.retrain.baseline,
                            tolerance=cfg.retrain.fid_tolerance if tolerance is None else tolerance,
                            alpha=cfg.retrain.alpha, grid=list(cfg.grid.variants))
    atomic_write_text(summary, text)
    typer.echo(text)
    if failed:
        raise typer.Exit(1)
