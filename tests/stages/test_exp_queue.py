"""The grid as queued DVC experiments: ``dvc exp run --queue`` + ``dvc queue start -j 2`` in a git repository, every
experiment (run in its own temp copy under .dvc/tmp/exps) logging to the project's one MLflow store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import copy_project, tiny_params, write_params

pytestmark = pytest.mark.slow
COPIED = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore"]


def _run(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_")) or k == "DVC_NO_ANALYTICS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    result = subprocess.run(list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_queued_experiments_log_to_the_projects_store(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    copy_project(repo, COPIED)
    raw = tiny_params()
    raw["evaluate"]["num_samples"] = 100
    write_params(repo / "params.yaml", raw)
    dvc = [sys.executable, "-m", "dvc"]
    _run(repo, "git", "init", "-q")
    _run(repo, *dvc, "init", "-q")
    _run(repo, *dvc, "config", "core.analytics", "false")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "tiny grid")

    _run(repo, *dvc, "exp", "run", "--queue", "-n", "short", "-S", "train.steps=4")
    _run(repo, *dvc, "exp", "run", "--queue", "-n", "long", "-S", "train.steps=6")
    _run(repo, *dvc, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = _run(repo, *dvc, "queue", "status").stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == 2, status + _run(repo, *dvc, "queue", "logs", "long").stdout

    shown = json.dumps(json.loads(_run(repo, *dvc, "exp", "show", "--json").stdout))
    assert '"short"' in shown and '"long"' in shown and "reports/metrics.json" in shown

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")  # the project's store, not the temp copies'
    experiment = client.get_experiment_by_name("genbench-digits")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'train'")
    assert sorted(r.info.run_name for r in runs) == ["gan-0", "gan-0", "vae-0", "vae-0"]
    assert all(r.info.status == "FINISHED" and "fid" in r.data.metrics for r in runs)
    assert sorted(r.data.params["steps"] for r in runs) == ["4", "4", "6", "6"]
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`genbench.role` = 'grid'")
    assert len(parents) == 2  # one grid parent run per experiment
    by_parent = {p.info.run_id: {r.data.params["steps"] for r in runs if r.data.tags["mlflow.parentRunId"] == p.info.run_id}
                 for p in parents}
    assert sorted(map(sorted, by_parent.values())) == [["4"], ["6"]]
    assert not list(repo.glob(".dvc/tmp/exps/**/mlflow.db"))
