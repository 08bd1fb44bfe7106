"""Data-parallel training under ``torchrun`` with gloo on CPU: 2 ranks stay in sync and match one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, tiny_params, write_params, write_prepared

pytestmark = pytest.mark.slow  # subprocesses training for seconds each: `make test-fast` leaves them out

TRAIN = ["-m", "stages", "train", "--seed", "0", "--no-progress"]


def _setup(folder: Path, variant: str, *, steps: int, checkpoint_every: int | None = None,
           batch_size: int = 32) -> dict[str, str]:
    folder.mkdir()
    write_prepared(folder, n_train=256)
    raw = tiny_params()
    raw["train"].update(steps=steps, batch_size=batch_size, log_every=5, sample_every=steps, snapshot_every=steps,
                        checkpoint_every=checkpoint_every or steps)
    write_params(folder / "params.yaml", raw)
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}


def _torchrun(folder: Path, env: dict[str, str], variant: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               *TRAIN, "--variant", variant, *extra]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def _single(folder: Path, env: dict[str, str], variant: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *TRAIN, "--variant", variant], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600)


# Ranks draw independent noise (seed offset by rank) and normalise their own shard in BatchNorm, so DDP
# follows the single-process trajectory only approximately: measured ‖w_ddp − w_single‖ / ‖w_single − w_0‖ after
# 20 steps was 0.30 (GAN) and 0.25 (VAE). Summing instead of averaging gradients, or ranks training on the same
# rows, shows up as far larger deviations or unequal ranks.
TOLERANCE = {"gan": 0.45, "vae": 0.4}


@pytest.mark.parametrize("variant", ["gan", "vae"])
def test_two_gloo_ranks_stay_in_sync_and_match_one_process(tmp_path: Path, variant: str) -> None:
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    result = _torchrun(ddp, _setup(ddp, variant, steps=20), variant)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((ddp / f"runs/{variant}-0/train.json").read_text())
    assert summary["world_size"] == 2
    sums = summary["rank_weight_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]  # bit-equal parameters on both ranks
    assert result.stdout.count(f"{variant}-0: ok after 20 steps") == 1  # only rank 0 reports

    result = _single(single, _setup(single, variant, steps=20), variant)
    assert result.returncode == 0, result.stderr[-3000:]
    initial = _weights(single, variant, "snapshots/step-00000000.pt")
    w_ddp, w_single = _weights(ddp, variant), _weights(single, variant)
    assert float((w_ddp - w_single).norm() / (w_single - initial).norm()) < TOLERANCE[variant]


def test_resume_under_ddp_continues_exactly(tmp_path: Path) -> None:
    """A 2-rank run resumed from its step-10 checkpoint ends where the uninterrupted run ends."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    for folder in (whole, resumed):
        result = _torchrun(folder, _setup(folder, "gan", steps=20, checkpoint_every=10), "gan")
        assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = resumed / "runs/gan-0/checkpoints"
    (checkpoints / "step-00000020.pt").unlink()
    shutil.rmtree(resumed / "runs/gan-0/snapshots")
    result = _torchrun(resumed, {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                 "MLFLOW_TRACKING_URI": f"sqlite:///{resumed / 'mlflow.db'}"}, "gan")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from step 10/20" in result.stderr
    assert torch.equal(_weights(resumed, "gan"), _weights(whole, "gan"))


def test_batch_norm_with_too_few_samples_a_rank_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """16 over 2 CPU ranks is 8 samples a rank for the generator's BatchNorm: exit 2, the rule in the message."""
    result = _torchrun(tmp_path / "cell", _setup(tmp_path / "cell", "gan", steps=5, batch_size=16), "gan")
    assert result.returncode != 0
    assert result.stderr.count("train.batch_size: 16 over 2 processes is 8 samples a rank, but the gan generator "
                               "uses BatchNorm") == 2  # each rank refuses, before any collective
    assert "at least 16 (use a batch of at least 32" in result.stderr
    assert "exitcode  : 2" in result.stderr  # torchrun's report of the ranks' exit status
    assert not (tmp_path / "cell/runs").exists() and not (tmp_path / "cell/mlruns").exists()


def _weights(folder: Path, variant: str, name: str = "generator.pt") -> torch.Tensor:
    """The generator's parameters (not BatchNorm statistics) from an exported file, as one vector."""
    state = torch.load(folder / f"runs/{variant}-0/{name}", weights_only=True)["state_dict"]
    return torch.cat([v.flatten().double() for k, v in sorted(state.items())
                      if "running" not in k and "num_batches" not in k])
