"""``gate``: the quality gate of scheduled retraining — this run's FIDs against the committed report's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from stages.common import ParamsOption, dvc_executable, exits_on_bad_input, load

METRICS = "reports/metrics.json"


def _committed_best(rev: str) -> str | None:
    shown = subprocess.run(["git", "show", f"{rev}:{METRICS}"], capture_output=True, text=True)
    try:
        return json.loads(shown.stdout).get("best_variant") if shown.returncode == 0 else None
    except json.JSONDecodeError:
        return None


@exits_on_bad_input
def main(
    params: ParamsOption = Path("params.yaml"),
    rev: Annotated[str | None, typer.Option("--rev", help="Baseline git revision (default: retrain.baseline).")] = None,
    tolerance: Annotated[
        float | None, typer.Option("--tolerance", min=0, help="Relative FID rise allowed (default: retrain.fid_tolerance).")
    ] = None,
    summary: Annotated[Path, typer.Option("--summary", help="Markdown summary to write.")] = Path("reports/retrain.md"),
) -> None:
    """Compare reports/metrics.json with the committed one (`dvc metrics diff`), write a Markdown summary, and exit 1
    when a variant's mean FID rose by more than the tolerance or it lost every ok cell."""
    cfg = load(params)
    from pipeline.errors import InputError
    from pipeline.gate import fid_changes, summary_markdown
    from pipeline.io import atomic_write_text

    rev = rev or cfg.retrain.baseline
    tolerance = cfg.retrain.fid_tolerance if tolerance is None else tolerance
    if not Path(METRICS).exists():
        raise InputError(f"{METRICS}: missing; run `dvc repro` first")
    diff = subprocess.run([dvc_executable(), "metrics", "diff", "--all", "--json", rev, "--targets", METRICS],
                          capture_output=True, text=True)
    if diff.returncode != 0:
        raise InputError(f"dvc metrics diff {rev}: {diff.stderr.strip()[-500:]}")
    raw = json.loads(diff.stdout or "{}")
    if METRICS not in raw:  # nothing committed at rev: every variant is new
        current = json.loads(Path(METRICS).read_text())
        raw = {METRICS: {f"variants.{v}.fid.mean": {"old": None, "new": s["fid"]["mean"]}
                         for v, s in current["variants"].items()}}
    changes = fid_changes(raw, metrics_file=METRICS, tolerance=tolerance, grid=list(cfg.grid.variants))
    best_after = json.loads(Path(METRICS).read_text()).get("best_variant")
    text = summary_markdown(changes, rev=rev, tolerance=tolerance, best_before=_committed_best(rev),
                            best_after=best_after)
    atomic_write_text(summary, text)
    typer.echo(text)
    if any(change.fails for change in changes):
        raise typer.Exit(1)
