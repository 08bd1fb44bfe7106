"""SIGTERM / SIGINT through the real CLI: checkpoint, MLflow run KILLED, exit 143 / 130, then resume the same run."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.layout import list_steps
from pipeline.tracking import Outbox
from pipeline.training import checkpoint as ckpt
from tests.conftest import REPO, tiny_params, write_params, write_prepared

pytestmark = pytest.mark.slow  # subprocesses training for seconds each: `make test-fast` leaves them out
HANG_GUARD = 120  # seconds: generous bounds on waits that normally take a few seconds, never asserted on


def _wait_for_logged_steps(process: subprocess.Popen, client: MlflowClient, db: Path) -> None:
    """Until the cell's MLflow run has training losses (the process is past start-up, inside the loop); polled by
    waiting on the process itself, which also ends the wait if it dies. A hang guard, not a measurement."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)
            pytest.fail(f"training exited with {process.returncode} before logging:\n{process.stderr.read()}")
        experiments = [e.experiment_id for e in client.search_experiments()] if db.exists() else []
        runs = client.search_runs(experiments, filter_string="tags.stage = 'train'") if experiments else []
        if runs and client.get_metric_history(runs[0].info.run_id, "loss"):
            return
    process.kill()
    pytest.fail(f"training did not start logging within {HANG_GUARD} s")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_and_resume_continues_the_run(workdir: Path, signum: int, code: int) -> None:
    """A signal mid-run stops the process after the step in progress: the message names that step, the only
    checkpoint is of it and holds every step's losses up to it, the run is KILLED; re-running resumes there and
    the loss log continues without a gap or a repeat."""
    write_prepared(workdir)
    raw = tiny_params()
    raw["train"].update(steps=100_000, checkpoint_every=50_000, log_every=10, sample_every=50_000,
                        snapshot_every=50_000)
    write_params(workdir / "params.yaml", raw)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "stages", "train", "--variant", "vae", "--seed", "0", "--no-progress"]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = workdir / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    _wait_for_logged_steps(process, client, db)
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"training did not stop within {HANG_GUARD} s of {signal.Signals(signum).name}")
    assert process.returncode == code, stderr

    (step, path), = list_steps(workdir / "runs/vae-0/checkpoints")  # none due before step 50,000: the signal's
    assert 0 < step < 50_000
    assert f"vae-0: stopped by {signal.Signals(signum).name} at step {step}; checkpoint written; re-run the same " \
           "command to resume" in stderr
    state = ckpt.load_checkpoint(path)
    assert state["step"] == step and state["trainer"]["steps_done"] == step
    assert [row["step"] for row in state["history"]] == list(range(1, step + 1))  # nothing lost before the stop
    run_id = Outbox(workdir / "runs/vae-0/mlflow" / state["mlflow_outbox"]).run_id  # delivered before exiting
    assert client.get_run(run_id).info.status == "KILLED"
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == list(range(1, step + 1))

    raw["train"]["steps"] = step + 5
    write_params(workdir / "params.yaml", raw)
    resumed = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {step}/{step + 5}" in resumed.stderr
    with (workdir / "runs/vae-0/losses.csv").open() as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == list(range(1, step + 6))
    summary = json.loads((workdir / "runs/vae-0/train.json").read_text())
    assert summary["status"] == "ok" and summary["steps"] == step + 5 and summary["mlflow_run_id"] == run_id
    assert client.get_run(run_id).info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == list(range(1, step + 6))
    cell_runs = client.search_runs([client.get_run(run_id).info.experiment_id], filter_string="tags.stage = 'train'")
    assert [r.info.run_id for r in cell_runs] == [run_id]  # the same run continued, no second one
