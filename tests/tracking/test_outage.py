"""No lost metrics: the tracking server goes away mid-run, or is never there, and training does not care."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline.config import parse_params
from pipeline.teamserver import MlflowServer, free_port
from pipeline.tracking import Outbox
from pipeline.training.gan import GanTrainer
from pipeline.training.loop import train_cell
from stages.app import app
from tests.conftest import tiny_params, write_prepared

pytestmark = pytest.mark.slow


def _every_step_once(client: MlflowClient, run_id: str, key: str, steps: int) -> None:
    history = client.get_metric_history(run_id, key)
    assert sorted(m.step for m in history) == list(range(1, steps + 1))


def test_server_stopped_mid_run_loses_nothing(team_server: MlflowServer, workdir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    write_prepared(workdir)
    raw = tiny_params(tracking={"system_metrics_interval": 1.0, "delivery_timeout": 120, "log_models": True})
    steps = 700
    raw["train"].update(steps=steps, log_every=5, sample_every=100, checkpoint_every=350, snapshot_every=350)
    done: list[int] = []
    real_step = GanTrainer.step

    def slow_step(self: GanTrainer, batches: list) -> dict:
        time.sleep(0.04)  # ~30 s of training, so that the outage falls in the middle of it
        done.append(1)
        return real_step(self, batches)

    monkeypatch.setattr(GanTrainer, "step", slow_step)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(train_cell(parse_params(raw), "gan", 0, progress=False).model_dump()))
    worker.start()
    client = MlflowClient(team_server.url)
    deadline = time.monotonic() + 60
    while len(done) < 100 and time.monotonic() < deadline:
        time.sleep(0.2)
    team_server.stop()
    stopped, stopped_at, at_stop = time.monotonic(), time.time(), len(done)
    try:
        time.sleep(15)
        during = len(done) - at_stop
    finally:
        team_server.start()
    print(f"server down {time.monotonic() - stopped:.1f} s; {during} steps trained meanwhile")
    worker.join(timeout=300)
    assert not worker.is_alive() and result["status"] == "ok"
    assert during >= 100  # training went on while the server was away

    run_id = result["mlflow_run_id"]
    assert run_id is not None and Outbox(workdir / result["mlflow_outbox"]).count_pending() == 0
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["train.steps"] == str(steps)
    for key in ("loss_d", "loss_g", "images_per_second"):
        _every_step_once(client, run_id, key, steps)
    system = client.get_metric_history(run_id, "system/cpu_utilization_percentage")
    seconds = [m.timestamp / 1000 for m in system]
    assert any(t < stopped_at - 2 for t in seconds) and any(stopped_at + 2 < t < stopped_at + 14 for t in seconds)
    assert len({m.step for m in system}) == len(system)  # sampled through the outage, each sample once
    samples = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert {f"samples/step-{s:08d}.png" for s in range(100, steps + 1, 100)} | {"samples/final.png"} == samples
    assert result["mlflow_model_uri"].startswith("models:/")


def test_never_reachable_keeps_a_local_copy_that_sync_delivers(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    write_prepared(workdir)
    raw = tiny_params(tracking={"delivery_timeout": 1, "log_models": True})
    summary = train_cell(parse_params(raw), "gan", 0, progress=False)
    assert summary.status == "ok" and summary.mlflow_run_id is None  # finished without the server
    outbox = Outbox(workdir / summary.mlflow_outbox)
    assert outbox.count_pending() > 0 and any((outbox.folder / "files").iterdir())

    runner = CliRunner()
    offline = runner.invoke(app, ["sync", "--timeout", "1"])
    assert offline.exit_code == 1 and "still undelivered" in offline.output, offline.output

    root = Path(tempfile.mkdtemp(prefix="genbench-sync-"))
    server = MlflowServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", port)
    try:
        server.start(log=root / "mlflow.log")
        synced = runner.invoke(app, ["sync"])
        assert synced.exit_code == 0 and "delivered" in synced.output, synced.output
        again = runner.invoke(app, ["sync"])
        assert again.exit_code == 0 and "0 outboxes" in again.output, again.output

        client = MlflowClient(url)
        outbox.reload()
        run = client.get_run(outbox.run_id)
        assert run.info.status == "FINISHED" and run.data.tags["cell"] == "gan-0"
        assert run.data.params["train.batch_size"] == "8"
        for key in ("loss_d", "loss_g"):
            _every_step_once(client, outbox.run_id, key, 6)
        assert "samples/final.png" in {a.path for a in client.list_artifacts(outbox.run_id, "samples")}
        assert outbox.state["model_uri"].startswith("models:/") and not outbox.state["failed"]
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
