"""Dockerfile, compose file and GitHub workflows: linted and schema-checked with the real tools, and the promises
the README makes about them (non-root, entry point, loopback ports, GPU reservation, schedule, gate, PR)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent
WORKFLOWS = [REPO / ".github/workflows/ci.yml", REPO / ".github/workflows/retrain.yml"]


def tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_dockerfile_passes_hadolint_with_no_warnings() -> None:
    result = tool("hadolint", "--failure-threshold", "info", "Dockerfile")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_dockerfile_promises() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in text and "ARG TORCH_INDEX_URL=" in text  # CUDA wheels by default, CPU via a build arg
    assert "-c requirements.lock" in text  # pinned by the project's constraints
    assert "FashionMNIST(" in text and "/usr/share/datasets/fashion-mnist" in text  # dataset baked in
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["python", "-m", "stages"]' in text
    assert "docker run --gpus all" in text and "repro" in text


def test_compose_file_matches_the_compose_specification() -> None:
    result = tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_stack_binds_loopback_and_reserves_a_gpu() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert set(services) == {"postgres", "mlflow", "trainer"}
    assert "ports" not in services["postgres"]  # reachable only inside the compose network
    assert all(port.startswith("127.0.0.1:") for port in services["mlflow"]["ports"])
    assert any("postgresql://" in arg for arg in services["mlflow"]["command"])
    assert any(v.endswith(":/mlartifacts") for v in services["mlflow"]["volumes"])
    devices = services["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["trainer"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    result = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_actionlint() -> None:
    result = tool("actionlint", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_retrain_workflow_promises() -> None:
    flow = yaml.safe_load((REPO / ".github/workflows/retrain.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    text = (REPO / ".github/workflows/retrain.yml").read_text()
    for needed in ("dvc pull", "make retrain", "upload-artifact", "GITHUB_STEP_SUMMARY", "gh pr create",
                   "vars.GPU_RUNNER", "secrets.MLFLOW_TRACKING_URI"):
        assert needed in text, needed
    ci = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    assert {"push", "pull_request"} <= set(ci[True]) and ".ci/run" in (REPO / ".github/workflows/ci.yml").read_text()


def test_the_retrain_pull_request_adds_only_files_git_tracks() -> None:
    """`git add` of an ignored path fails the step: what the workflow commits must not be gitignored (the report,
    plots and figures are DVC-cached outputs, metrics/ is ignored)."""
    text = (REPO / ".github/workflows/retrain.yml").read_text()
    (line,) = [line.split("#")[0].split() for line in text.splitlines() if line.strip().startswith("git add")]
    paths = line[2:]
    assert "reports/metrics.json" in paths and "dvc.lock" in paths
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout == "", f"gitignored: {ignored.stdout}"
