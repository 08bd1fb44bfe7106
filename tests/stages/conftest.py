"""The one full pipeline run the end-to-end and launch tests share: `dvc repro` of a tiny grid, built once a session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from tests.conftest import copy_project, tiny_params, write_params

PROJECT_FILES = ["pipeline", "stages", "dvc.yaml", ".dvcignore"]


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dvc args`` in ``repo`` (which must succeed) on one CPU thread, as a Ray task of ``--cpus-per-cell 1`` runs:
    the same floats in the same order, so the launch test can ask for equal metrics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def reproduced_params() -> dict:
    """The shared grid: gan and vae, and ``boom``, a GAN whose learning rate blows it up (its cell must not stop the
    grid); gan and boom pruned, vae not."""
    raw = tiny_params()
    raw["evaluate"]["num_samples"] = 200
    raw["variants"]["boom"] = {**raw["variants"]["gan"], "g_optimizer": {"lr": 1.0e30}, "d_optimizer": {"lr": 1.0e30}}
    raw["grid"]["variants"].append("boom")
    raw["prune"]["variants"] = ["gan", "boom"]
    return raw


def project(repo: Path, raw: dict) -> Path:
    """A DVC project (no git) of this checkout's pipeline code and ``raw`` as its params."""
    copy_project(repo, PROJECT_FILES)
    write_params(repo / "params.yaml", raw)
    dvc(repo, "init", "--no-scm", "-q")
    dvc(repo, "config", "core.analytics", "false")
    return repo


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The shared grid after `dvc repro`. Under pytest-xdist the first worker to ask builds it in the session's
    common temp folder, holding a lock; a worker asking meanwhile waits, then uses the same project. Tests only
    read it, or put back what they change."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the folder above every worker's own
    repo, done = shared / "reproduced", shared / "reproduced.done"
    with FileLock(shared / "reproduced.lock"):
        if not done.exists():
            shutil.rmtree(repo, ignore_errors=True)  # what a failed build left
            dvc(project(repo, reproduced_params()), "repro")
            done.touch()
    return repo
