"""The grid as queued DVC experiments: ``dvc exp run --queue`` + ``dvc queue start -j 2`` in a git repository, every
experiment (run in its own temp copy under .dvc/tmp/exps) logging to the project's one MLflow store."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import MAKE_DRY_RUN, REPO, copy_project, tiny_params, write_params

pytestmark = pytest.mark.slow
COPIED = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore", "Makefile"]
DVC = (sys.executable, "-m", "dvc")


def _make_variable(name: str) -> str:
    """A ``NAME := value`` of the Makefile, as the shell gets it."""
    return re.search(rf"^{name} := (.+)$", (REPO / "Makefile").read_text(), re.M)[1].replace("$$", "$")


# `make exps` (the README's `dvc exp show` recipe): the headline metrics, the grid and what the experiments changed
EXP_SHOW_COLUMNS = ("--only-changed", "--keep", _make_variable("EXPS_KEEP"), "--drop", _make_variable("EXPS_DROP"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_")) or k == "DVC_NO_ANALYTICS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    return env


def _run(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), cwd=repo, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def queued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project whose tiny grid ran as two queued experiments, ``short`` (4 steps) and ``long`` (6)."""
    repo = tmp_path_factory.mktemp("project")
    copy_project(repo, COPIED)
    raw = tiny_params()
    raw["evaluate"]["num_samples"] = 100
    raw["prune"]["variants"] = []  # the pruning study is the e2e test's; here 4 stage processes less
    write_params(repo / "params.yaml", raw)
    _run(repo, "git", "init", "-q")
    _run(repo, *DVC, "init", "-q")
    _run(repo, *DVC, "config", "core.analytics", "false")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "tiny grid")

    _run(repo, *DVC, "exp", "run", "--queue", "-n", "short", "-S", "train.steps=4")
    _run(repo, *DVC, "exp", "run", "--queue", "-n", "long", "-S", "train.steps=6")
    _start_workers(repo, 2)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = _run(repo, *DVC, "queue", "status").stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(5)
    _stop_workers(repo)
    assert status.count("Success") == 2, status + _run(repo, *DVC, "queue", "logs", "long").stdout
    return repo


def _start_workers(repo: Path, count: int) -> None:
    """``dvc queue start -j count``, its output to a file: the workers it daemonizes inherit its stdout, so waiting
    for a pipe's end would wait for the workers (one that misses the empty-queue shutdown never ends)."""
    with open(repo.parent / "queue-start.log", "w") as log:
        subprocess.run([*DVC, "queue", "start", "-j", str(count)], cwd=repo, env=_env(), stdout=log,
                       stderr=subprocess.STDOUT, timeout=120, check=True)


def _stop_workers(repo: Path) -> None:
    """Ask the queue's workers to stop; end any that is still alive after that (seen: a worker whose monitor shut
    down while its task ran stays idle for good)."""
    _run(repo, *DVC, "queue", "stop")
    deadline = time.monotonic() + 30
    for pid_file in (repo / ".dvc/tmp/exps/celery").glob("*.pid"):
        pid = int(pid_file.read_text().strip() or 0)
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
    recipe = _run(queued, *MAKE_DRY_RUN, "exps").stdout.strip()  # what `make exps` runs
    assert recipe == " ".join([".venv/bin/dvc", "exp", "show", *(f"'{a}'" if "^" in a else a for a in EXP_SHOW_COLUMNS)])
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
