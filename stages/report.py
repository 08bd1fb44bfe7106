"""``report`` stage: compare the grid's variants and write reports/ (metrics.json, report.md/.html, figures, plots)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import layout
from pipeline.config import Params
from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Compare the grid's variants: rank them by mean FID over seeds with confidence intervals, test the best
    against the runner-up (Welch's t-test), and write reports/report.md, report.html, metrics.json, figures/ and
    plots/. Needs metrics/<variant>-<seed>.json for every grid cell (the evaluate stage)."""
    cfg = load(params)
    from rich.console import Console

    from pipeline.reporting import headline_text, ranking_table, write_report  # heavy imports after validation

    summary = write_report(cfg)
    print(headline_text(summary))
    Console(width=120).print(ranking_table(summary))
    print(f"Report: {layout.REPORTS_DIR / 'report.html'} (and report.md, headline.json, metrics.json, figures/)")
    publish(cfg, summary, params)


def publish(cfg: Params, summary: dict, params: Path) -> None:
    """Parent run + champion in MLflow; the report files are the stage's product, so a tracking failure warns."""
    from mlflow.exceptions import MlflowException

    from pipeline.tracking.publish import publish_report

    try:
        published = publish_report(cfg, summary, params)
    except (MlflowException, OSError) as error:  # unreachable server (requests' errors are OSErrors), permissions
        print(f"warning: could not publish the grid to MLflow ({type(error).__name__}: {error})", file=sys.stderr)
        return
    champion = published["champion"]
    if champion is not None:
        print(f"MLflow: grid run {published['parent_run_id']}; models:/{champion['name']}@champion = version "
              f"{champion['version']} ({champion['cell']})")
