"""Planning (which stages, in which order) and the cluster checks that need no Ray cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.launch.cluster import check_reachable, check_tracking
from pipeline.launch.plan import plan
from tests.conftest import REPO, copy_project, tiny_params, write_params


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_project(tmp_path, ["pipeline", "stages", "dvc.yaml", ".dvcignore"])
    write_params(tmp_path / "params.yaml", tiny_params())
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_a_fresh_project_plans_every_stage_after_its_inputs(project: Path) -> None:
    stages = plan(project)
    names = [s.name for s in stages]
    assert set(names) == {"prepare", "fit-evaluator", "train@gan-0", "train@vae-0", "evaluate@gan-0",
                          "evaluate@vae-0", "noise-floor", "feature-check", "prune@gan-0", "prune@vae-0", "report"}
    for stage in stages:  # topological: what a stage waits for is planned before it
        assert all(names.index(up) < names.index(stage.name) for up in stage.upstream)
    by_name = {s.name: s for s in stages}
    assert by_name["evaluate@gan-0"].upstream == ("fit-evaluator", "prepare", "train@gan-0")
    assert by_name["train@gan-0"].cmd.startswith("python -m stages train --variant gan --seed 0")
    assert by_name["prepare"].upstream == ()


def test_a_broken_dvc_yaml_is_an_input_error_naming_the_project(project: Path) -> None:
    (project / "dvc.yaml").write_text("stages:\n  train:\n    cmd: [\n")
    with pytest.raises(InputError, match=str(project)):
        plan(project)


def test_sqlite_is_refused_across_machines_only() -> None:
    check_tracking("sqlite:////repo/mlflow.db", {"127.0.0.1"})
    check_tracking("http://10.0.0.1:5000", {"10.0.0.1", "10.0.0.2"})
    with pytest.raises(InputError, match="MLFLOW_TRACKING_URI") as error:
        check_tracking("sqlite:////repo/mlflow.db", {"10.0.0.1", "10.0.0.2"})
    assert "10.0.0.2" in str(error.value)


@pytest.mark.parametrize("address", ["nohost", "host:port", ":6379"])
def test_a_malformed_address_is_an_input_error(address: str) -> None:
    with pytest.raises(InputError, match="expected host:port"):
        check_reachable(address)


def test_without_ray_launch_exits_2_saying_how_to_install_it(project: Path) -> None:
    code = "import runpy, sys; sys.modules['ray'] = None; runpy.run_module('stages', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", code, "launch"], cwd=project, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2 and "pip install -e '.[ray]'" in result.stderr, result.stderr
    assert not (project / "runs").exists()


def test_bad_params_exit_2_before_anything_runs(project: Path) -> None:
    raw = tiny_params()
    raw["variants"]["gan"]["loss"] = "nope"
    write_params(project / "params.yaml", raw)
    result = subprocess.run([sys.executable, "-m", "stages", "launch"], cwd=project, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2 and "variants.gan.loss" in result.stderr and not (project / "data").exists()


def test_the_gpu_grid_plans_train_evaluate_and_prune_for_every_cell(tmp_path: Path) -> None:
    """params-gpu.yaml as the README runs it (copied over params.yaml): 11 variants × 3 seeds, each trained,
    evaluated and pruned — a prune section without variants would silently plan no pruning study."""
    copy_project(tmp_path, ["pipeline", "stages", "dvc.yaml", ".dvcignore"])
    (tmp_path / "params.yaml").write_text((REPO / "params-gpu.yaml").read_text())
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    names = [s.name for s in plan(tmp_path)]
    for kind in ("train", "evaluate", "prune"):
        assert len([n for n in names if n.startswith(f"{kind}@")]) == 33, kind
    assert "prune@sngan-2" in names and "prune@vae-logistic-0" in names
