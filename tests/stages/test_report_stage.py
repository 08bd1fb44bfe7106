"""The ``report`` command end to end: params file in, reports/ out, exit 2 when a grid cell has no metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stages import report
from tests.test_report import NEW_KEYS, cell

PARAMS = """\
grid:
  variants: [dcgan, vae]
  seeds: [0, 1]
evaluator:
  min_accuracy: 0.9
variants:
  dcgan: {kind: gan, loss: ns}
  vae: {kind: vae}
"""
FIDS = {("dcgan", 0): 30.0, ("dcgan", 1): 34.0, ("vae", 0): 50.0, ("vae", 1): 52.0}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command()(report.main)
    return app


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmp repository root with params.yaml, every cell's metrics without the optional results (no precision,
    interval, coverage or curve) and the evaluator's metrics (no loss logs)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(PARAMS)
    (tmp_path / "metrics").mkdir()
    for (variant, seed), fid in FIDS.items():
        metrics = cell(variant, seed, fid, **dict.fromkeys(NEW_KEYS), isc_mean=4.0, kid_mean=0.02, num_samples=64,
                       train_seconds=12.0, images_per_second=800.0, mlflow_run_id=f"{variant}{seed}")
        (tmp_path / "metrics" / f"{variant}-{seed}.json").write_text(json.dumps(metrics))
    (tmp_path / "models").mkdir()
    (tmp_path / "models/evaluator.json").write_text(json.dumps({"test_accuracy": 0.93}))
    return tmp_path


def test_report_command_writes_the_report(app: typer.Typer, project: Path) -> None:
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    assert "dcgan has the lowest FID (domain classifier): 32.00 [14.42, 70.74] (95% CI over 2 seeds; wide because n is small)." in result.stdout
    assert "Welch's t-test" in result.stdout
    rows = [line[1:-1].split(line[0]) for line in result.stdout.splitlines() if line.startswith(("│", "┃"))]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["#", "variant", "FID", "Δ to best", "significant?", "seeds"],
        ["1", "dcgan", "32.00 [14.42, 70.74]", "", "best", "2"],
        ["2", "vae", "51.00 [39.74, 65.42]", "+19.00", "yes (p=0.0317)", "2"],
    ]  # the ranking in the terminal, after the headline (the same p as its Welch's test)
    assert "FID over seeds (domain classifier; 95% interval)" in result.stdout
    assert result.stdout.index("has the lowest FID") < result.stdout.index("│ 1 ")
    reports = project / "reports"
    for name in ["report.md", "report.html", "metrics.json", "figures/fid.png", "figures/losses.png", "plots/fid.csv"]:
        assert (reports / name).is_file(), name
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["best_variant"] == "dcgan" and metrics["grid"] == {"variants": ["dcgan", "vae"], "seeds": [0, 1]}
    assert metrics["variants"]["vae"]["fid"]["mean"] == 51.0
    assert metrics["noise_floor"] is None and [(p["a"], p["b"]) for p in metrics["pairwise"]] == [("dcgan", "vae")]
    assert metrics["pairwise"][0]["p_adjusted"] == metrics["pairwise"][0]["p_value"]  # one pair: Holm changes nothing
    page = (reports / "report.html").read_text()  # one file: the figures embedded, the headline before the ranking
    assert 'src="figures/' not in page and page.index('<p id="headline">') < page.index('<table id="ranking">')
    md = (reports / "report.md").read_text()
    assert "No readable loss log for dcgan-0 (runs/dcgan-0/losses.csv)." in md  # optional inputs: noted, not fatal
    assert "No sample grid for: dcgan, vae" in md
    # metrics files from before precision, coverage and FID curves, and no noise floor: said, not fatal
    assert "## Is the difference real?" in md and "No noise floor" in md
    assert "No precision and recall, FID interval over noise draws" in md and "dcgan-0, dcgan-1, vae-0, vae-1" in md


def test_missing_metrics_file_exits_2_naming_it(app: typer.Typer, project: Path) -> None:
    (project / "metrics/vae-0.json").unlink()
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 2
    assert "metrics/vae-0.json" in result.stderr and "evaluate --variant vae --seed 0" in result.stderr
    assert not (project / "reports").exists()


def test_invalid_params_exit_2(app: typer.Typer, project: Path) -> None:
    (project / "params.yaml").write_text(PARAMS.replace("seeds: [0, 1]", "seeds: [0, 0]"))
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 2
    assert "grid.seeds" in result.stderr


def test_help_describes_the_stage(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Welch" in result.stdout and "--params" in result.stdout
