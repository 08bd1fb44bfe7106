"""The team server for real: PostgreSQL + ``mlflow server`` on loopback, a tiny cell trained against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import parse_params
from pipeline.teamserver import MlflowServer
from pipeline.training.loop import train_cell
from tests.conftest import tiny_params, write_prepared

pytestmark = pytest.mark.slow


def test_postgres_backend_and_artifacts(team_server: MlflowServer, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert team_server.backend_uri.startswith("postgresql+psycopg://") and "127.0.0.1" in team_server.backend_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    write_prepared(workdir)
    summary = train_cell(parse_params(tiny_params()), "gan", 0, progress=False)

    client = MlflowClient(team_server.url)
    run = client.get_run(summary.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.params["train.batch_size"] == "8"
    assert run.data.params["variant"] == "gan" and run.data.tags["cell"] == "gan-0"
    history = client.get_metric_history(run.info.run_id, "loss_d")
    assert sorted(m.step for m in history) == list(range(1, 7))  # every step once
    samples = [a.path for a in client.list_artifacts(run.info.run_id, "samples")]
    assert "samples/final.png" in samples
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # uploaded through the server, not a local path
    local = Path(client.download_artifacts(run.info.run_id, "samples/final.png", str(workdir)))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the artifacts live in the server's artifact folder, not in the working directory
    assert list(team_server.artifacts_dir.rglob("final.png")) and not (workdir / "mlruns").exists()
