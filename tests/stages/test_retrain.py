"""What ``make retrain`` runs, on a tiny three-seed grid in a git repository: the same grid on another CPU thread
count passes the gate, a learning rate off by 50× fails it as a regression beyond seed noise, a baseline claiming
better FIDs fails it; bad input is refused. (A variant that lost every ok cell: tests/test_gate.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.conftest import MAKE_DRY_RUN, REPO, copy_project, tiny_params, write_params

pytestmark = pytest.mark.slow
COPIED = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore", "Makefile", "pyproject.toml",
          "requirements.lock"]


def _run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``args`` in ``repo`` with the environment the Makefile's recipes get (the venv's bin first on PATH, Agg)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", MPLBACKEND="Agg",
               PATH=f"{repo / '.venv/bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


# What `make retrain` runs once its `setup` prerequisite is done (checked against the Makefile by
# test_make_retrain_runs_these_commands): called directly, so no test reaches `setup`, which could re-install the
# checkout's editable package from the temporary copy or, as root, run apt-get.
REPRO = (".venv/bin/dvc", "repro")
GATE = (".venv/bin/python", "-m", "stages", "gate")


def _retrain(repo: Path) -> subprocess.CompletedProcess[str]:
    """`make retrain`'s recipe: ``dvc repro`` (which must succeed), then the gate, whose result is returned."""
    _run(repo, *REPRO)
    return _run(repo, *GATE, check=False)


SEEDS = [0, 1, 2]  # the gate's test needs seeds on both sides to tell seed noise from a regression
# The tiny GAN's learning rate: 50× the default, which at 30 steps learns most (FID ≈ 25–32 over the seeds; at
# 2e-4 it is ≈ 61). So here the learning rate broken on purpose is this one ÷ 50: ×50 only speeds up a net this
# small (measured: ×50 of 2e-4 and of 4e-3 both scored better or within the seed noise).
GAN_LR = 1e-2


def test_make_retrain_runs_these_commands(tmp_path: Path) -> None:
    """``make -n retrain`` with ``setup`` taken as done prints exactly REPRO and GATE (arguments passed through),
    and nothing that installs."""
    shutil.copy2(REPO / "Makefile", tmp_path / "Makefile")
    result = _run(tmp_path, *MAKE_DRY_RUN, "retrain", "REPRO_ARGS=--force", "RETRAIN_ARGS=--rev HEAD~1")
    assert result.stdout.split("\n")[:-1] == [" ".join((*REPRO, "--force")), " ".join((*GATE, "--rev", "HEAD~1"))]
    assert not any(word in result.stdout for word in ("pip", "apt", "install", "venv "))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A committed tiny grid of three seeds with its results (trained on one pinned CPU thread), using this
    checkout's virtual environment; and a pristine copy of it (git, DVC cache, MLflow store and all)."""
    repo = tmp_path_factory.mktemp("retrain") / "project"
    copy_project(repo, COPIED)
    (repo / ".venv").symlink_to(Path(sys.executable).parents[1])
    raw = tiny_params(grid={"variants": ["gan"], "seeds": SEEDS})  # one variant: each retrain is 3 cells
    raw["train"].update(steps=30, threads=1)
    raw["evaluator"].update(epochs=8, width=8, feature_dim=16)  # 97% test accuracy: FID sees a worse generator
    raw["variants"]["gan"].update(g_optimizer={"lr": GAN_LR}, d_optimizer={"lr": GAN_LR})
    raw["evaluate"]["num_samples"] = 100
    raw["prune"]["variants"] = []  # the gate reads FIDs only; the pruning study is the e2e test's
    write_params(repo / "params.yaml", raw)
    _run(repo, "git", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    _run(repo, *REPRO)
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "baseline results")
    pristine = repo.parent / "pristine"
    shutil.copytree(repo, pristine, symlinks=True)
    return repo, pristine


@pytest.fixture
def project(trained: tuple[Path, Path]) -> Path:
    """The trained project as committed, whatever an earlier test changed: put back from the pristine copy at the
    same path (the MLflow store, outboxes and DVC hold absolute paths), so the tests pass in any order."""
    repo, pristine = trained
    shutil.rmtree(repo)
    shutil.copytree(pristine, repo, symlinks=True)
    return repo


def _edit_params(repo: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``edit`` to the project's params (the ``project`` fixture puts them back for the next test)."""
    params = repo / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    edit(raw)
    params.write_text(yaml.safe_dump(raw, sort_keys=False))


def _train_summaries(repo: Path) -> list[dict[str, Any]]:
    return [json.loads((repo / f"runs/gan-{seed}/train.json").read_text()) for seed in SEEDS]


def test_a_worse_fid_than_the_committed_one_fails_the_gate(project: Path) -> None:
    """The committed baseline claims a GAN twice as good as it is, seed by seed: the re-run's real FIDs are a +100%
    regression well beyond their seed noise. With the committed params nothing retrains."""
    before = _train_summaries(project)
    metrics = project / "reports/metrics.json"
    summary = json.loads(metrics.read_text())
    real = summary["variants"]["gan"]["fid"]["mean"]
    summary["variants"]["gan"]["fid"]["mean"] = real / 2
    summary["variants"]["gan"]["fid"]["values"] = [v / 2 for v in summary["variants"]["gan"]["fid"]["values"]]
    metrics.write_text(json.dumps(summary))
    _run(project, "git", "commit", "-q", "-am", "a baseline with a better GAN")
    result = _retrain(project)
    assert result.returncode != 0
    assert _train_summaries(project) == before  # the same cells: nothing retrained
    text = (project / "reports/retrain.md").read_text()
    assert "**Quality gate failed**: 1 variant regressed" in text
    assert "(+100.0%) |" in text and "| **regressed** |" in text and "- gan: FID" in text
    assert "Untested" not in text  # three seeds a side: the Welch test decides, not the tolerance alone
    assert json.loads(metrics.read_text())["variants"]["gan"]["fid"]["mean"] == pytest.approx(real)
    loose = _run(project, *GATE, "--tolerance", "1.5", check=False)
    assert loose.returncode == 0 and "Quality gate passed" in loose.stdout


def test_the_same_grid_on_another_thread_count_passes_the_gate(project: Path) -> None:
    """Two threads instead of one: every cell retrains (new MLflow runs, two threads recorded) and nothing is
    flagged. (Cells this small give the same FIDs on 1 and 2 threads; the gate's tolerance of seed-level noise is
    tested in tests/test_gate.py.)"""
    before = [summary["mlflow_run_id"] for summary in _train_summaries(project)]
    _edit_params(project, lambda raw: raw["train"].update(threads=2))
    result = _retrain(project)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    summary = (project / "reports/retrain.md").read_text()
    assert "**Quality gate passed**" in summary and "| gan |" in summary
    assert "Quality gate passed" in result.stdout
    retrained = _train_summaries(project)
    assert all(s["cpu_threads"] == 2 for s in retrained)
    assert not {s["mlflow_run_id"] for s in retrained} & set(before)


def test_a_learning_rate_off_by_50x_fails_the_gate(project: Path) -> None:
    """gan's learning rates off by 50× (÷ 50, see GAN_LR): a regression beyond the seed noise."""
    def break_it(raw: dict[str, Any]) -> None:
        gan = raw["variants"]["gan"]
        gan["g_optimizer"], gan["d_optimizer"] = {"lr": GAN_LR / 50}, {"lr": GAN_LR / 50}

    _edit_params(project, break_it)
    result = _retrain(project)
    assert result.returncode != 0
    summary = (project / "reports/retrain.md").read_text()
    assert "**Quality gate failed**: 1 variant regressed" in summary, summary
    assert "| **regressed** |" in summary and "- gan: FID" in summary and "Untested" not in summary


def test_an_unknown_baseline_revision_is_bad_input(project: Path) -> None:
    result = _run(project, *GATE, "--rev", "no-such-rev", check=False)
    assert result.returncode == 2 and "git knows no revision 'no-such-rev'" in result.stderr
