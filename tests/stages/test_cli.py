"""The ``python -m stages`` CLI: commands listed, bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stages.app import COMMANDS, app
from tests.conftest import REPO, tiny_params, write_params, write_prepared
from tests.test_config import HOSTILE, _edit

runner = CliRunner()
STAGES = ["prepare", "fit-evaluator", "train", "evaluate", "noise-floor", "feature-check", "prune", "report"]  # DVC stages


def test_help_lists_every_stage() -> None:
    result = subprocess.run([sys.executable, "-m", "stages", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout
    assert set(COMMANDS) == {*STAGES, "server", "sync", "gate", "launch", "ui"}


@pytest.mark.parametrize("command", STAGES)
def test_every_command_takes_params(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--params" in result.output
    if command in ("train", "evaluate"):
        assert "--variant" in result.output and "--seed" in result.output


@pytest.mark.parametrize("command", STAGES)
def test_invalid_params_exit_2_before_writing(command: str, workdir: Path) -> None:
    raw = tiny_params()
    raw["train"]["steps"] = -1
    raw["variants"]["gan"]["loss"] = "wasserstein"
    write_params(workdir / "params.yaml", raw)
    args = [command, "--params", "params.yaml"] + (["--variant", "gan", "--seed", "0"] if command in ("train", "evaluate", "prune") else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "train.steps" in result.output and "variants.gan.loss" in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(("path", "value", "expected"), HOSTILE)
def test_hostile_params_through_train_exit_2_and_write_nothing(path: str, value: object, expected: str,
                                                               workdir: Path) -> None:
    write_prepared(workdir)
    write_params(workdir / "params.yaml", _edit(path, value))
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    result = runner.invoke(app, ["train", "--variant", "vae", "--seed", "0", "--no-progress"])
    assert result.exit_code == 2
    assert expected.replace("Value error, ", "") in result.output
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grid: [unclosed\n", "invalid YAML at line"),
        ("", "expected a mapping of sections at the top level, got NoneType"),
        ("- just\n- a list\n", "expected a mapping of sections at the top level, got list"),
        ("variants: {}\n", "grid: Field required"),
    ],
)
def test_unparseable_params_exit_2(text: str, expected: str, workdir: Path) -> None:
    (workdir / "params.yaml").write_text(text)
    result = runner.invoke(app, ["prepare"])
    assert result.exit_code == 2 and expected in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


def test_unknown_variant_exits_2(workdir: Path) -> None:
    write_params(workdir / "params.yaml", tiny_params())
    result = runner.invoke(app, ["train", "--variant", "stylegan", "--seed", "0"])
    assert result.exit_code == 2 and "unknown variant 'stylegan'" in result.output


def test_train_refuses_changed_params_then_restarts(workdir: Path) -> None:
    write_prepared(workdir)
    write_params(workdir / "params.yaml", tiny_params())
    assert runner.invoke(app, ["train", "--variant", "vae", "--seed", "0", "--no-progress"]).exit_code == 0
    raw = tiny_params()
    raw["variants"]["vae"]["beta"] = 2.0
    write_params(workdir / "params.yaml", raw)
    refused = runner.invoke(app, ["train", "--variant", "vae", "--seed", "0", "--no-progress"])
    assert refused.exit_code == 2 and "variant_params.beta" in refused.output
    raw["train"]["threads"] = 2  # pinned: used and recorded whatever the machine (the suite runs torch on 1)
    write_params(workdir / "params.yaml", raw)
    restarted = runner.invoke(app, ["train", "--variant", "vae", "--seed", "0", "--no-progress", "--restart"])
    assert restarted.exit_code == 0 and "vae-0: ok after 6 steps" in restarted.output
    assert json.loads((workdir / "runs/vae-0/train.json").read_text())["cpu_threads"] == 2


def test_evaluate_before_train_exits_2(workdir: Path) -> None:
    write_params(workdir / "params.yaml", tiny_params())
    result = runner.invoke(app, ["evaluate", "--variant", "gan", "--seed", "0"])
    assert result.exit_code == 2 and "runs/gan-0/train.json: training summary not found" in result.output
    assert not Path("metrics").exists()
