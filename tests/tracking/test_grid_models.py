"""MLflow structure: a parent run per grid, logged generators, the champion alias, system metrics, the store."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline.config import parse_params
from pipeline.errors import InputError
from pipeline.evaluation.cell import evaluate_cell
from pipeline.layout import Cell
from pipeline.tracking import experiment_id, grid_key, grid_run_id, tracking_uri
from pipeline.training.loop import train_cell
from stages.app import app
from tests.conftest import save_untrained_evaluator, tiny_params, write_params, write_prepared


def test_grid_key_follows_params_commit_and_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = write_params(tmp_path / "params.yaml", tiny_params())
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    key = grid_key(params, "abc")
    assert key == grid_key(params, "abc-dirty")  # dvc.lock edits during a repro must not split the grid
    assert key != grid_key(params, "def")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    assert grid_key(params, "abc") not in (key, grid_key(write_params(tmp_path / "other.yaml", tiny_params(
        report={"confidence": 0.9})), "abc"))


def test_concurrent_cells_share_one_parent(workdir: Path) -> None:
    client = MlflowClient(tracking_uri())
    experiment = experiment_id(client, "genbench-test", tracking_uri())
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(grid_run_id(client, experiment, "k1", tags={})))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found) == 4
    assert grid_run_id(client, experiment, "k2", tags={}) != found[0]


def test_file_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for uri in ("file:///tmp/mlruns", "./mlruns"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with pytest.raises(InputError, match="file store is deprecated"):
            tracking_uri()


@pytest.fixture
def grid(workdir: Path) -> Path:
    """Two tiny trained and evaluated cells of one grid (key from the params file), system metrics every 0.2 s."""
    write_prepared(workdir)
    raw = tiny_params(tracking={"system_metrics_interval": 0.2})
    raw["train"]["steps"] = 30  # long enough for a few system-metric samples
    params_path = write_params(workdir / "params.yaml", raw)
    params = parse_params(raw)
    save_untrained_evaluator()
    key = grid_key(params_path, None)
    for variant in ("gan", "vae"):
        train_cell(params, variant, 0, progress=False, grid_key=key)
        evaluate_cell(params, variant, 0)
    return workdir


def test_cells_are_children_of_the_grid_run_with_models_and_system_metrics(grid: Path) -> None:
    client = MlflowClient(tracking_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "genbench-synthetic"]
    cells = client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'train'")
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.`genbench.role` = 'grid'")
    assert sorted(r.info.run_name for r in cells) == ["gan-0", "vae-0"]
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parent.info.run_id}
    for run in cells:
        assert any(key.startswith("system/cpu_utilization") for key in run.data.metrics), run.data.metrics.keys()
        assert any(key.startswith("system/system_memory_usage") for key in run.data.metrics)
        summary = json.loads((grid / Cell(run.data.tags["variant"], 0).train_summary).read_text())
        assert summary["mlflow_model_uri"] is None  # tracking.log_models is off by default: the report logs one


def test_report_registers_the_champion_and_it_generates(grid: Path) -> None:
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert "models:/genbench-synthetic-generator@champion = version 1" in result.output
    client = MlflowClient(tracking_uri())
    version = client.get_model_version_by_alias("genbench-synthetic-generator", "champion")
    summary_best = client.get_run(version.run_id).data.tags["variant"]
    assert version.tags["variant"] == summary_best

    uri = "models:/genbench-synthetic-generator@champion"
    info = mlflow.models.get_model_info(uri)
    assert info.run_id == version.run_id and info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"][0] == -1
    latent_dim = info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"][1]
    generator = mlflow.pytorch.load_model(uri)
    with torch.no_grad():
        images = generator(torch.randn(5, latent_dim))  # another batch size than the logged example's 2
    assert images.shape == (5, 1, 8, 8) and images.min() >= -1 and images.max() <= 1

    again = CliRunner().invoke(app, ["report"])  # same champion: no second version
    assert again.exit_code == 0 and "version 1" in again.output
    assert len(client.search_model_versions("name = 'genbench-synthetic-generator'")) == 1
    parent = client.get_run(client.search_runs(
        [client.get_run(version.run_id).info.experiment_id], filter_string="tags.`genbench.role` = 'grid'")[0].info.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["best_variant"] in ("gan", "vae")
    assert "reports/metrics.json" in [a.path for a in client.list_artifacts(parent.info.run_id, "reports")]
