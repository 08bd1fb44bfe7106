"""The grid as queued DVC experiments: ``dvc exp run --queue`` + ``dvc queue start -j 2`` in a git repository, every
experiment (run in its own temp copy under .dvc/tmp/exps) logging to the project's one MLflow store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, copy_project, tiny_params, write_params

pytestmark = pytest.mark.slow
COPIED = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore"]
DVC = (sys.executable, "-m", "dvc")
# `make exps` (the README's `dvc exp show` recipe): the headline metrics and the params people vary
EXPS_KEEP = re.search(r"^EXPS_KEEP := (.+)$", (REPO / "Makefile").read_text(), re.M)[1].replace("$$", "$")
EXP_SHOW_COLUMNS = ("--drop", ".*", "--keep", EXPS_KEEP)


def _run(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_")) or k == "DVC_NO_ANALYTICS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    result = subprocess.run(list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def queued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project whose tiny grid ran as two queued experiments, ``short`` (4 steps) and ``long`` (6)."""
    repo = tmp_path_factory.mktemp("project")
    copy_project(repo, COPIED)
    raw = tiny_params()
    raw["evaluate"]["num_samples"] = 100
    write_params(repo / "params.yaml", raw)
    _run(repo, "git", "init", "-q")
    _run(repo, *DVC, "init", "-q")
    _run(repo, *DVC, "config", "core.analytics", "false")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "tiny grid")

    _run(repo, *DVC, "exp", "run", "--queue", "-n", "short", "-S", "train.steps=4")
    _run(repo, *DVC, "exp", "run", "--queue", "-n", "long", "-S", "train.steps=6")
    _run(repo, *DVC, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = _run(repo, *DVC, "queue", "status").stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == 2, status + _run(repo, *DVC, "queue", "logs", "long").stdout
    return repo


def _flat(data: Any, prefix: str = "") -> list[str]:
    """Dotted keys of nested mappings, as ``dvc exp show`` names its columns."""
    if not isinstance(data, dict):
        return [prefix]
    return [key for name, value in data.items() for key in _flat(value, f"{prefix}.{name}" if prefix else name)]


def test_exp_show_compares_the_headline_and_exp_diff_each_variants_fid(queued: Path) -> None:
    shown = json.loads(_run(queued, *DVC, "exp", "show", "--json").stdout)
    experiments = {e["name"]: e["revs"][0]["data"] for e in shown[1]["experiments"]}
    assert set(experiments) == {"short", "long"}
    for data in experiments.values():
        assert set(data["metrics"]) == {"reports/headline.json"}  # per-cell files are plain outputs
        columns = _flat(data["metrics"]["reports/headline.json"]["data"])
        # one seed a variant: no interval and no test, and DVC leaves out null values
        assert sorted(columns) == ["best", "evaluator_quality", "feature_space", "fid.gan.mean", "fid.gan.n",
                                   "fid.vae.mean", "fid.vae.n"]
    table = _run(queued, *DVC, "exp", "show", "--csv", *EXP_SHOW_COLUMNS).stdout.splitlines()
    header = table[0].split(",")
    assert len(header) <= 60 and {"Experiment", "fid.gan.mean", "best", "train.steps"} <= set(header), header
    assert sum(line.startswith(("short,", "long,")) for line in table) == 2
    diff = json.loads(_run(queued, *DVC, "exp", "diff", "short", "long", "--json").stdout)
    changed = diff["metrics"]["reports/headline.json"]
    assert {"fid.gan.mean", "fid.vae.mean"} <= set(changed)
    assert changed["fid.gan.mean"]["old"] != changed["fid.gan.mean"]["new"]
    assert diff["params"]["params.yaml"]["train.steps"] == {"old": 4, "new": 6, "diff": 2}


def test_queued_experiments_log_to_the_projects_store(queued: Path) -> None:
    repo = queued
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
