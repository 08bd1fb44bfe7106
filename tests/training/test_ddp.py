"""Data-parallel training under ``torchrun`` with gloo on CPU: gradients are averaged over the ranks, the ranks stay
bit-identical, resume is exact and a too-small BatchNorm shard is refused."""

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


def _worker(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """tests/training/ddp_worker.py on 2 gloo ranks under torchrun, in ``folder``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO / "tests/training/ddp_worker.py"), *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_ddp_averages_the_ranks_gradients(tmp_path: Path) -> None:
    """One VAE step on 2 gloo ranks through the library's DDP path: the gradient it leaves on every parameter is
    the same on both ranks and is the mean of the two ranks' own gradients (each rank's computed beside it on an
    unwrapped copy with the same noise), not their sum. Adam and RMSprop are scale-invariant, so a summed gradient
    would barely change the trajectory; it shows here as twice the mean."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = _worker(tmp_path, env, "grads", str(tmp_path / "grads"))
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"grads/rank-{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert [r["rows"] for r in ranks] == [16, 16]  # each rank its half of the global batch of 32
    names = list(ranks[0]["ddp"])
    assert names and names == list(ranks[1]["ddp"])
    for name in names:
        ddp, local = [r["ddp"][name] for r in ranks], [r["local"][name] for r in ranks]
        assert torch.equal(ddp[0], ddp[1]), name  # one all-reduced gradient on both ranks
        mean = (local[0] + local[1]) / 2
        torch.testing.assert_close(ddp[0], mean, rtol=1e-5, atol=1e-7, msg=lambda m: f"{name}: {m}")
    differing = [n for n in names if not torch.allclose(ranks[0]["local"][n], ranks[1]["local"][n])]
    assert len(differing) == len(names)  # the shards' gradients differ: averaging them is not a no-op
    total = torch.cat([(r0 + r1).flatten() for r0, r1 in zip(ranks[0]["local"].values(), ranks[1]["local"].values())])
    averaged = torch.cat([g.flatten() for g in ranks[0]["ddp"].values()])
    assert float((averaged - total / 2).norm()) < 1e-4 * float(total.norm())  # a sum would be off by half its norm


@pytest.mark.parametrize("variant", ["gan", "vae"])
def test_two_gloo_ranks_train_identical_parameters(tmp_path: Path, variant: str) -> None:
    """20 steps of the real training loop on 2 gloo ranks: every parameter of every network is bit-equal on the two
    ranks at the end (compared tensor by tensor, as each rank holds it), only rank 0 writes the summary, and the
    parameters did move from their initial values."""
    folder = tmp_path / "ddp"
    result = _worker(folder, _setup(folder, variant, steps=20), "train", str(tmp_path / "weights"), variant)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((folder / f"runs/{variant}-0/train.json").read_text())
    assert summary["world_size"] == 2 and summary["status"] == "ok" and summary["steps"] == 20
    rank0, rank1 = (torch.load(tmp_path / f"weights/rank-{rank}.pt", weights_only=True) for rank in (0, 1))
    assert rank0.keys() == rank1.keys() and len(rank0) > 4
    unequal = [name for name in rank0 if not torch.equal(rank0[name], rank1[name])]
    assert not unequal, f"parameters differ between the ranks: {unequal}"
    exported = _weights(folder, variant)
    initial = _weights(folder, variant, "snapshots/step-00000000.pt")
    assert not torch.equal(exported, initial)  # it trained: equal ranks are not equal because nothing changed
    prefix = "generator." if variant == "gan" else "vae.decoder."
    final = torch.load(folder / f"runs/{variant}-0/generator.pt", weights_only=True)["state_dict"]
    learned = {name: value for name, value in final.items() if "running" not in name and "num_batches" not in name}
    assert learned.keys() == {k.removeprefix(prefix) for k in rank0 if k.startswith(prefix)}
    assert all(torch.equal(value, rank0[prefix + name]) for name, value in learned.items())  # rank 0's, exported


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
