"""``python -m stages ui``: the URL of each experiment's runs table, with the description the report gave it."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline.tracking.store import NOTE_TAG
from stages.app import app
from tests.conftest import tiny_params, write_params

runner = CliRunner()


def test_ui_prints_each_experiments_runs_url_and_description(workdir: Path) -> None:
    write_params(workdir / "params.yaml", tiny_params())
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.create_experiment("other-project")  # not ours: not listed
    digits = client.create_experiment("genbench-digits", tags={NOTE_TAG: "genbench grid: gan, vae × seeds 0–1"})
    mnist = client.create_experiment("genbench-mnist")
    result = runner.invoke(app, ["ui", "--no-serve", "--port", "5050"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"genbench-digits: http://127.0.0.1:5050/#/experiments/{digits}/runs",
        "  genbench grid: gan, vae × seeds 0–1",
        f"genbench-mnist: http://127.0.0.1:5050/#/experiments/{mnist}/runs",
    ]


def test_ui_before_any_run_says_what_to_do(workdir: Path) -> None:
    write_params(workdir / "params.yaml", tiny_params())
    result = runner.invoke(app, ["ui", "--no-serve"])
    assert result.exit_code == 0 and "no genbench-* experiment" in result.output and "make repro" in result.output
