"""SIGTERM / SIGINT through the real CLI: checkpoint, MLflow run KILLED, exit 143 / 130, then resume the same run."""

from __future__ import annotations

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


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_and_resume_continues_the_run(workdir: Path, signum: int, code: int) -> None:
    write_prepared(workdir)
    raw = tiny_params()
    raw["train"].update(steps=100_000, checkpoint_every=50_000, log_every=10, sample_every=50_000)
    write_params(workdir / "params.yaml", raw)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "stages", "train", "--variant", "vae", "--seed", "0", "--no-progress"]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = workdir / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training steps are being logged
        time.sleep(0.5)
        experiments = [e.experiment_id for e in client.search_experiments()] if db.exists() else []
        runs = client.search_runs(experiments, filter_string="tags.stage = 'train'") if experiments else []
        if runs and client.get_metric_history(runs[0].info.run_id, "loss"):
            break
    else:
        process.kill()
        pytest.fail("training did not start logging within 120 s")
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert time.monotonic() - sent < 15
    assert "re-run the same command to resume" in stderr

    (step, path), = list_steps(workdir / "runs/vae-0/checkpoints")
    state = ckpt.load_checkpoint(path)
    assert step == state["step"] > 0
    run_id = Outbox(workdir / "runs/vae-0/mlflow" / state["mlflow_outbox"]).run_id  # delivered before exiting
    assert client.get_run(run_id).info.status == "KILLED"

    raw["train"]["steps"] = step + 5
    write_params(workdir / "params.yaml", raw)
    resumed = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {step}/{step + 5}" in resumed.stderr
    assert client.get_run(run_id).info.status == "FINISHED"
    cell_runs = client.search_runs([client.get_run(run_id).info.experiment_id], filter_string="tags.stage = 'train'")
    assert [r.info.run_id for r in cell_runs] == [run_id]  # the same run continued, no second one
