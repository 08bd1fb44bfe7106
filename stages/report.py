"""``report`` stage: compare the grid's variants and write reports/ (metrics.json, report.md/.html, figures, plots)."""

from __future__ import annotations

from pathlib import Path

from pipeline import layout
from pipeline.reporting import headline_text, write_report
from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Compare the grid's variants: rank them by mean FID over seeds with confidence intervals, test the best
    against the runner-up (Welch's t-test), and write reports/report.md, report.html, metrics.json, figures/ and
    plots/. Needs metrics/<variant>-<seed>.json for every grid cell (the evaluate stage)."""
    cfg = load(params)
    summary = write_report(cfg)
    print(headline_text(summary))
    print(f"Report: {layout.REPORTS_DIR / 'report.md'} (and report.html, metrics.json, figures/)")
