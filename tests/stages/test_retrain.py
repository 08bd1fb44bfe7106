"""``make retrain`` on a tiny grid in a git repository: unchanged results pass the gate, a forced regression fails
it with a summary naming the variant; bad input is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_project, tiny_params, write_params

pytestmark = pytest.mark.slow
COPIED = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore", "Makefile", "pyproject.toml",
          "requirements.lock"]


def _run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    result = subprocess.run(list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed tiny grid with its results, using this checkout's virtual environment."""
    repo = tmp_path_factory.mktemp("retrain")
    copy_project(repo, COPIED)
    (repo / ".venv").symlink_to(Path(sys.executable).parents[1])
    raw = tiny_params()
    raw["evaluate"]["num_samples"] = 100
    write_params(repo / "params.yaml", raw)
    _run(repo, "git", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    _run(repo, "make", "repro")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "baseline results")
    return repo


def test_unchanged_results_pass_the_gate(project: Path) -> None:
    result = _run(project, "make", "retrain")
    summary = (project / "reports/retrain.md").read_text()
    assert "**Quality gate passed**" in summary and "| gan |" in summary and "| vae |" in summary
    assert "Quality gate passed" in result.stdout


def test_a_worse_fid_than_the_committed_one_fails_the_gate(project: Path) -> None:
    """The committed baseline claims a VAE twice as good as it is: the re-run's real FID is a +100% regression."""
    metrics = project / "reports/metrics.json"
    summary = json.loads(metrics.read_text())
    real = summary["variants"]["vae"]["fid"]["mean"]
    summary["variants"]["vae"]["fid"]["mean"] = real / 2
    summary["variants"]["vae"]["fid"]["values"] = [real / 2]  # the gate reads the per-seed FIDs
    metrics.write_text(json.dumps(summary))
    _run(project, "git", "commit", "-q", "-am", "a baseline with a better VAE")
    try:
        result = _run(project, "make", "retrain", check=False)
        assert result.returncode != 0
        text = (project / "reports/retrain.md").read_text()
        assert "**Quality gate failed**: 1 variant regressed" in text
        assert "(+100.0%) | — | **regressed** |" in text and "- vae: FID" in text
        assert "Untested (a single seed on a side" in text  # one seed: the tolerance alone decides
        assert json.loads(metrics.read_text())["variants"]["vae"]["fid"]["mean"] == pytest.approx(real)
        loose = _run(project, sys.executable, "-m", "stages", "gate", "--tolerance", "1.5", check=False)
        assert loose.returncode == 0 and "Quality gate passed" in loose.stdout
    finally:
        _run(project, "git", "reset", "-q", "--hard", "HEAD~1")


def test_a_variant_without_an_ok_cell_fails_the_gate(project: Path) -> None:
    params = project / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["variants"]["gan"]["g_optimizer"] = {"lr": 1.0e30}  # the generator blows up: no ok cell any more
    raw["variants"]["gan"]["d_optimizer"] = {"lr": 1.0e30}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        result = _run(project, "make", "retrain", check=False)
        assert result.returncode != 0
        summary = (project / "reports/retrain.md").read_text()
        assert "**Quality gate failed**: 1 variant regressed" in summary
        assert "**lost**" in summary and "- gan: FID" in summary and "| vae |" in summary
    finally:
        params.write_text(original)


def test_an_unknown_baseline_revision_is_bad_input(project: Path) -> None:
    result = _run(project, sys.executable, "-m", "stages", "gate", "--rev", "no-such-rev", check=False)
    assert result.returncode == 2 and "git knows no revision 'no-such-rev'" in result.stderr
