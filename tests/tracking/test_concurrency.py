"""Four cells at once (as ``dvc queue start -j 4`` or parallel ``dvc repro`` runs them) against one sqlite store and
against the team server: nothing lost, no "database is locked"; then the comparison a user makes in the MLflow UI,
through the same REST API the UI calls."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import parse_params
from pipeline.evaluation.cell import evaluate_cell
from pipeline.layout import Cell
from pipeline.teamserver import MlflowServer, free_port
from pipeline.tracking import Outbox
from tests.conftest import REPO, save_untrained_evaluator, tiny_params, write_params, write_prepared

pytestmark = pytest.mark.slow

CELLS = [("gan", 0), ("gan", 1), ("vae", 0), ("vae", 1)]
STEPS = 120


def _all_at_once(workdir: Path, env: dict[str, str], command: str) -> None:
    """Run ``python -m stages <command>`` for the four cells concurrently; each must succeed without lock errors."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "stages", command, "--variant", variant, "--seed", str(seed),
                          "--no-progress"],
                         cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for variant, seed in CELLS
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        assert "database is locked" not in stderr and "not delivered" not in stderr, stderr


def _search_rest(url: str, experiment_id: str, parent: str) -> list[dict]:
    """The UI's query: the grid's child runs, best FID first (POST /api/2.0/mlflow/runs/search)."""
    body = {"experiment_ids": [experiment_id], "filter": f"tags.`mlflow.parentRunId` = '{parent}'",
            "order_by": ["metrics.fid ASC"], "max_results": 100}
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["runs"]


def _run_grid(workdir: Path, store: str) -> tuple[str, str, dict[str, dict]]:
    """Train the four cells concurrently, evaluate them; check every cell's run; (experiment, parent, results)."""
    write_prepared(workdir)
    # generator logging (torch.export) is covered by the outage and registry tests; here it would only add minutes
    raw = tiny_params(grid={"variants": ["gan", "vae"], "seeds": [0, 1]},
                      tracking={"system_metrics_interval": 0.5, "log_models": False})
    raw["train"].update(steps=STEPS, log_every=10, sample_every=40, checkpoint_every=60, snapshot_every=60)
    write_params(workdir / "params.yaml", raw)
    save_untrained_evaluator()
    # one intra-op thread each: four processes on a 2-core CI machine would otherwise oversubscribe it 4x
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": store, "OMP_NUM_THREADS": "1"}
    _all_at_once(workdir, env, "train")
    os.environ["MLFLOW_TRACKING_URI"] = store  # (restored by the workdir fixture's monkeypatch)
    for variant, seed in CELLS:  # in-process: the evaluations only need to give the runs an FID to sort by
        evaluate_cell(parse_params(raw), variant, seed)

    client = MlflowClient(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "genbench-synthetic"]
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.`genbench.role` = 'grid'")
    results = {}
    for variant, seed in CELLS:
        metrics = json.loads(Cell(variant, seed).metrics.read_text())
        assert Outbox(Path(metrics["mlflow_outbox"])).count_pending() == 0
        run = client.get_run(metrics["mlflow_run_id"])
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        key = "loss_d" if variant == "gan" else "loss"
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == list(range(1, STEPS + 1))
        assert any(k.startswith("system/") for k in run.data.metrics)
        assert run.data.metrics["fid"] == pytest.approx(metrics["fid"])
        results[run.info.run_id] = metrics
    return experiment.experiment_id, parent.info.run_id, results


def _compare_like_the_ui(url: str, experiment_id: str, parent: str, results: dict[str, dict]) -> None:
    found = _search_rest(url, experiment_id, parent)
    assert {r["info"]["run_id"] for r in found} == set(results)  # every cell, nothing else
    fids = [next(m["value"] for m in r["data"]["metrics"] if m["key"] == "fid") for r in found]
    assert fids == sorted(fids) == pytest.approx(sorted(m["fid"] for m in results.values()))
    for run in found:
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        cell = results[run["info"]["run_id"]]
        assert params["variant"] == cell["variant"] == tags["variant"] and params["seed"] == str(cell["seed"])
        assert params["train.steps"] == str(STEPS) and params["train.batch_size"] == "8"
        assert {m["key"] for m in run["data"]["metrics"]} >= {"fid", "kid_mean", "precision", "recall", "train_seconds"}


def test_four_cells_at_once_on_sqlite_then_compared_in_mlflow_ui(workdir: Path) -> None:
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    assert not (workdir / "mlflow.db").exists()  # created by the racing cells themselves
    experiment, parent, results = _run_grid(workdir, store)
    root = Path(tempfile.mkdtemp(prefix="genbench-ui-"))
    ui = MlflowServer(store, root / "artifacts", free_port(), command="ui")  # `mlflow ui` on the grid's store
    try:
        _compare_like_the_ui(ui.start(log=root / "ui.log").url, experiment, parent, results)
    finally:
        ui.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_four_cells_at_once_on_the_team_server(team_server: MlflowServer, workdir: Path) -> None:
    experiment, parent, results = _run_grid(workdir, team_server.url)
    _compare_like_the_ui(team_server.url, experiment, parent, results)
