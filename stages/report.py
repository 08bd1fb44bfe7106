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
    from pipeline.reporting import headline_text, write_report  # heavy (matplotlib, scipy) imports after validation

    summary = write_report(cfg)
    print(headline_text(summary))
    print(f"Report: {layout.REPORTS_DIR / 'report.md'} (and report.html, metrics.json, figures/)")
    publish(cfg, summary, params)


def publish(cfg: Params, summary: dict, params: Path) -> None:
    """Parent run + champion in MLflow; the report files are the stage's product, so a tracking failure warns."""
    from pipeline.reporting.inputs import read_cells
    from pipeline.tracking import git_commit, grid_key, publish_grid

    cells = read_cells(cfg, root=Path("."))
    name = cfg.tracking.registered_model or f"{cfg.tracking.experiment_prefix}-{_dataset()}-generator"
    try:
        published = publish_grid(summary, cells, key=grid_key(params, git_commit()), reports_dir=layout.REPORTS_DIR,
                                 model_name=name)
    except Exception as error:  # noqa: BLE001 - unreachable server, permissions: the report itself is written
        print(f"warning: could not publish the grid to MLflow ({type(error).__name__}: {error})", file=sys.stderr)
        return
    champion = published["champion"]
    if champion is not None:
        print(f"MLflow: grid run {published['parent_run_id']}; models:/{champion['name']}@champion = version "
              f"{champion['version']} ({champion['cell']})")


def _dataset() -> str:
    from pipeline.data import load_meta

    try:
        return str(load_meta()["dataset"])
    except Exception:  # noqa: BLE001 - no prepared data here: a generic name
        return "data"
