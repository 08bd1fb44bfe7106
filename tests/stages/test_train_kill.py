"""``kill -9`` a training cell at two different points: re-running resumes, and the final weights are bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.layout import list_steps
from tests.conftest import REPO, tiny_params, write_params, write_prepared

pytestmark = pytest.mark.slow  # subprocesses training for seconds each: `make test-fast` leaves them out

STEPS = 500
COMMAND = [sys.executable, "-m", "stages", "train", "--variant", "gan", "--seed", "0", "--no-progress"]


def _setup(folder: Path) -> dict[str, str]:
    folder.mkdir()
    write_prepared(folder)
    raw = tiny_params()
    raw["train"].update(steps=STEPS, checkpoint_every=20, log_every=100, sample_every=STEPS)
    write_params(folder / "params.yaml", raw)
    return {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "runs/gan-0/generator.pt", weights_only=True)["state_dict"]


def test_kill_9_twice_then_resume_is_bit_identical(tmp_path: Path) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    env = _setup(reference)
    subprocess.run(COMMAND, cwd=reference, env=env, check=True, capture_output=True, timeout=600)

    env = _setup(killed)
    checkpoints = killed / "runs/gan-0/checkpoints"
    kill_points = []
    for threshold in (40, 200):  # kill once early, once after resuming and training further
        process = subprocess.Popen(COMMAND, cwd=killed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            newest = list_steps(checkpoints)
            if newest and newest[-1][0] >= threshold:
                break
            time.sleep(0.05)
        assert process.poll() is None, "training finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        kill_points.append(list_steps(checkpoints)[-1][0])
    assert kill_points[0] < kill_points[1] < STEPS

    resumed = subprocess.run(COMMAND, cwd=killed, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {kill_points[1]}/{STEPS}" in resumed.stderr
    expected, actual = _weights(reference), _weights(killed)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
