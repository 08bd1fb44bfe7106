"""What the report stage sends to MLflow: the grid's parent run gets the per-variant summary and ``reports/``;
the best cell of the best variant becomes the registered model's ``champion``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Params
from pipeline.errors import InputError
from pipeline.layout import REPORTS_DIR, Cell
from pipeline.tracking.grid import grid_run_id
from pipeline.tracking.models import log_generator, promote_champion
from pipeline.tracking.outbox import STATE, Outbox
from pipeline.tracking.runs import MAX_BATCH
from pipeline.tracking.sender import fail_fast_http
from pipeline.tracking.store import NOTE_TAG, open_client

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

SUMMARY_STATS = ("mean", "std", "ci_low", "ci_high")


def with_delivered_ids(cell: Mapping[str, Any]) -> dict[str, Any]:
    """The cell with ``mlflow_run_id`` / ``mlflow_model_uri`` filled in from its outbox when they were delivered
    after its metrics file was written (e.g. by ``python -m stages sync``)."""
    cell = dict(cell)
    folder = cell.get("mlflow_outbox")
    if folder and (Path(folder) / STATE).exists():
        state = Outbox(Path(folder)).state
        cell["mlflow_run_id"] = cell.get("mlflow_run_id") or state.get("run_id")
        cell["mlflow_model_uri"] = cell.get("mlflow_model_uri") or state.get("model_uri")
    return cell


def describe_grid(summary: Mapping[str, Any]) -> str:
    """The experiment's description: what its latest grid compares and how it came out."""
    grid, best = summary["grid"], summary["best_variant"]
    seeds = grid["seeds"]
    seeds_text = f"seeds {seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1 \
        else f"seeds {', '.join(map(str, seeds))}"
    outcome = "no variant has an ok cell" if best is None else (
        f"best {best} ({'significant' if (summary.get('comparison') or {}).get('significant') else 'not significant'}"
        f" against the runner-up)")
    return (f"genbench grid: {', '.join(grid['variants'])} × {seeds_text}, ranked by mean FID in the "
            f"{summary['feature_extractor']} feature space. Latest report: {outcome}. One child run per cell "
            "(<variant>-<seed>) under one parent run per grid.")


def champion_cell(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The ok cell with the lowest FID of the best-ranked variant that has an MLflow run, or None."""
    for variant in summary["ranking"]:
        candidates = [c for c in cells if c["variant"] == variant and c["status"] == "ok" and c.get("mlflow_run_id")]
        if candidates:
            return min(candidates, key=lambda c: c["fid"])
    return None


def champion_model_uri(client: MlflowClient, cell: Mapping[str, Any], model_name: str) -> str:
    """The champion cell's logged generator: the one training logged, else the one an earlier report registered
    from this run, else logged now from ``runs/<cell>/generator.pt`` (``tracking.log_models: false``)."""
    if cell.get("mlflow_model_uri"):
        return str(cell["mlflow_model_uri"])
    registered = client.search_model_versions(f"name = '{model_name}' and run_id = '{cell['mlflow_run_id']}'")
    if registered:
        return str(registered[0].source)
    from pipeline.generators import load_generator

    generator, _ = load_generator(Cell(cell["variant"], int(cell["seed"])).generator)
    return log_generator(cell["mlflow_run_id"], generator, tracking_uri=client.tracking_uri)


def publish_grid(
    summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], *, key: str, reports_dir: Path, model_name: str
) -> dict[str, Any]:
    """Log the summary and ``reports_dir`` to grid ``key``'s parent run; register and alias the champion.

    Returns ``parent_run_id`` and ``champion`` ({name, version, cell, model_uri} or None). Needs at least one cell
    with an MLflow run (the parent lives in the cells' experiment).
    """
    fail_fast_http()
    client = open_client()
    cells = [with_delivered_ids(c) for c in cells]
    runs = [c["mlflow_run_id"] for c in cells if c.get("mlflow_run_id")]
    if not runs:
        return {"parent_run_id": None, "champion": None}
    experiment = client.get_run(runs[0]).info.experiment_id
    client.set_experiment_tag(experiment, NOTE_TAG, describe_grid(summary))
    parent = grid_run_id(client, experiment, key, tags={})
    metrics = {
        f"{variant}/{metric}_{stat}": float(entry[metric][stat])
        for variant, entry in summary["variants"].items()
        for metric in ("fid", "isc_mean", "kid_mean", "precision", "recall", "train_seconds")
        if isinstance(entry.get(metric), dict)
        for stat in SUMMARY_STATS
        if entry[metric].get(stat) is not None
    }
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(name, value, now, 0) for name, value in metrics.items()]
    for start in range(0, len(batch), MAX_BATCH):
        client.log_batch(parent, metrics=batch[start : start + MAX_BATCH])
    client.log_artifacts(parent, str(reports_dir), "reports")
    client.set_tag(parent, "best_variant", str(summary.get("best_variant")))
    best = champion_cell(summary, cells)
    champion = None
    if best is not None:
        cell = f"{best['variant']}-{best['seed']}"
        model_uri = champion_model_uri(client, best, model_name)
        version = promote_champion(client, model_name, model_uri=model_uri, run_id=best["mlflow_run_id"],
                                   tags={"cell": cell, "variant": str(best["variant"]), "fid": f"{best['fid']:.4f}",
                                         "feature_extractor": str(best.get("feature_extractor")), "grid_key": key})
        champion = {"name": model_name, "version": version.version, "cell": cell, "model_uri": model_uri}
        client.set_tag(parent, "champion", f"{model_name} v{version.version} ({cell})")
    client.set_terminated(parent, "FINISHED")
    return {"parent_run_id": parent, "champion": champion}


def publish_report(params: Params, summary: Mapping[str, Any], params_path: Path) -> dict[str, Any]:
    """The report stage's MLflow side: :func:`publish_grid` for the grid of ``params_path`` with the registered
    model named by ``tracking.registered_model`` (default ``<prefix>-<dataset>-generator``)."""
    from pipeline.reporting.inputs import read_cells
    from pipeline.tracking.grid import grid_key
    from pipeline.tracking.runs import git_commit

    tracking = params.tracking
    name = tracking.registered_model or f"{tracking.experiment_prefix}-{_dataset()}-generator"
    return publish_grid(summary, read_cells(params, root=Path(".")), key=grid_key(params_path, git_commit()),
                        reports_dir=REPORTS_DIR, model_name=name)


def _dataset() -> str:
    """The prepared data's name; ``data`` where nothing is prepared here."""
    from pipeline.data import load_meta

    try:
        return str(load_meta()["dataset"])
    except InputError:
        return "data"
