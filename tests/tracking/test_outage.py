"""No lost metrics: the tracking server goes away mid-run, or is never there, and training does not care."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline.config import parse_params
from pipeline.teamserver import MlflowServer, free_port
from pipeline.tracking import CellRun, Outbox
from pipeline.training import loop
from pipeline.training.gan import GanTrainer
from pipeline.training.loop import train_cell
from stages.app import app
from tests.conftest import tiny_params, write_prepared

pytestmark = pytest.mark.slow


def _every_step_once(client: MlflowClient, run_id: str, key: str, steps: int) -> None:
    history = client.get_metric_history(run_id, key)
    assert sorted(m.step for m in history) == list(range(1, steps + 1))


HANG_GUARD = 120.0  # seconds: a generous bound on each wait below, there to end a hang, never asserted on


def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (failing after :data:`HANG_GUARD` seconds)."""
    done, deadline = threading.Event(), time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        done.wait(0.1)


def _journaled(run: CellRun) -> list[list]:
    """The metrics ``[key, value, timestamp, step]`` of the operations still waiting in the run's outbox."""
    pending = Outbox(run.outbox.folder).pending()
    return [metric for _, op in pending if op["op"] == "batch" for metric in op.get("metrics", [])]


def test_server_stopped_mid_run_loses_nothing(team_server: MlflowServer, workdir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The store stops at step 100 and comes back at step 200: training the 100 steps in between does not wait for
    it, what it logged meanwhile (losses and system samples) waits in the outbox, and afterwards every step and
    every sample is in the store exactly once. Driven by events: the training thread pauses at the two steps until
    the test has stopped or restarted the server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    write_prepared(workdir)
    raw = tiny_params(tracking={"system_metrics_interval": 1.0, "delivery_timeout": 120, "log_models": True})
    steps, stop_at, restart_at = 300, 100, 200
    raw["train"].update(steps=steps, log_every=5, sample_every=100, checkpoint_every=150, snapshot_every=150)
    at_stop, server_down, at_restart, server_up = (threading.Event() for _ in range(4))
    trained: list[int] = []
    real_step = GanTrainer.step

    def paused_step(self: GanTrainer, batches: list) -> dict:
        if len(trained) == stop_at:  # steps 1..100 done: wait for the outage
            at_stop.set()
            server_down.wait(HANG_GUARD)
        if len(trained) == restart_at:  # 100 steps trained with the server away: wait for it to come back
            at_restart.set()
            server_up.wait(HANG_GUARD)
        trained.append(1)
        return real_step(self, batches)

    runs: list[CellRun] = []
    real_start_run = loop._start_run
    monkeypatch.setattr(GanTrainer, "step", paused_step)
    monkeypatch.setattr(loop, "_start_run", lambda *args: runs.append(real_start_run(*args)) or runs[-1])
    result: dict[str, Any] = {}
    params = parse_params(raw)
    worker = threading.Thread(target=lambda: result.update(train_cell(params, "gan", 0, progress=False).model_dump()))
    worker.start()
    client = MlflowClient(team_server.url)
    down = False
    try:
        assert at_stop.wait(HANG_GUARD), "training did not reach the step of the outage"
        (run,) = runs
        # before the outage: the run exists on the server with the first 100 steps and some system samples
        _until(lambda: run.run_id is not None and len(client.get_metric_history(run.run_id, "loss_d")) == stop_at
               and client.get_metric_history(run.run_id, "system/cpu_utilization_percentage"), "steps 1-100 arrived")
        team_server.stop()
        down = True
        origin = run.outbox.state["created_at"]
        down_step = int(time.time() - origin)  # system samples with a later step were taken with the server down
        server_down.set()
        assert at_restart.wait(HANG_GUARD), "training did not go on while the server was away"
        _until(lambda: run.sender.last_error is not None, "the sender found the store unreachable")
        noticed = int(time.time() - origin)  # MLflow's own monitor would stop sampling for good here
        _until(lambda: any(key.startswith("system/") and step > noticed for key, _, _, step in _journaled(run)),
               "a system sample taken after the sender's failure waits in the outbox")
        backlog = _journaled(run)
    finally:
        if down:
            team_server.start()
        server_down.set()
        server_up.set()
    worker.join(timeout=300)
    assert not worker.is_alive() and result["status"] == "ok"
    assert len(trained) == steps

    # what waited in the outbox: the losses of the steps trained during the outage, and the outage's system samples
    waiting_steps = {step for key, _, _, step in backlog if key == "loss_d"}
    assert set(range(stop_at + 1, restart_at + 1)) <= waiting_steps
    outage_samples = {step for key, _, _, step in backlog if key == "system/cpu_utilization_percentage"
                      and step > down_step}
    assert outage_samples

    run_id = result["mlflow_run_id"]
    assert run_id == runs[0].run_id and Outbox(workdir / result["mlflow_outbox"]).count_pending() == 0
    mlflow_run = client.get_run(run_id)
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.params["train.steps"] == str(steps)
    for key in ("loss_d", "loss_g", "images_per_second"):
        _every_step_once(client, run_id, key, steps)
    system = client.get_metric_history(run_id, "system/cpu_utilization_percentage")
    assert len({m.step for m in system}) == len(system)  # each sample once, resent or not
    assert outage_samples <= {m.step for m in system}  # the samples taken during the outage arrived
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
