"""The prune stage on tiny trained cells: its metrics file, MLflow metrics and the report's pruning section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import layout
from pipeline.config import parse_params
from pipeline.evaluation.cell import evaluate_cell
from pipeline.layout import Cell
from pipeline.reporting import write_report
from stages.app import app
from tests.conftest import tiny_params, write_params

SPARSITIES = [0.0, 0.5, 0.9]


@pytest.fixture
def trained(trained_workdir: Path):
    """The tiny project's gan-0 and vae-0, evaluated, with the study's prune section, in a private copy."""
    raw = tiny_params(prune={"sparsities": SPARSITIES, "variants": ["gan", "vae"], "num_samples": 64,
                             "finetune_steps": 3, "finetune_batch_size": 8, "latency_repeats": 2,
                             "latency_batch_size": 4})
    write_params(trained_workdir / "params.yaml", raw)
    params = parse_params(raw)
    for variant in ("gan", "vae"):
        evaluate_cell(params, variant, 0)
    return params


def test_prune_stage_writes_every_sparsity_and_logs_to_the_cells_run(trained) -> None:
    result = CliRunner().invoke(app, ["prune", "--variant", "gan", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "gan-0 sparsity 90%" in result.output and "largest sparsity within the dense model's FID noise" in result.output
    study = json.loads(Cell("gan", 0).prune_metrics.read_text())
    assert study["status"] == "ok" and study["finetune_steps"] == 3 and study["num_samples"] == 64
    rows = study["rows"]
    assert [r["sparsity"] for r in rows] == SPARSITIES
    assert all(abs(r["achieved_sparsity"] - r["sparsity"]) < 0.01 for r in rows)
    assert all(isinstance(r["fid"], float) and r["latency_ms"] > 0 for r in rows)
    assert rows[0]["fid_ci_low"] <= rows[0]["fid"] <= rows[0]["fid_ci_high"] == study["dense_fid_ci_high"]
    assert rows[0]["finetune_final_loss"] is None and rows[1]["finetune_final_loss"] is not None
    assert rows[2]["nonzero_parameters"] < rows[1]["nonzero_parameters"] < rows[0]["nonzero_parameters"]
    assert rows[2]["sparse_bytes"] < rows[0]["sparse_bytes"]
    ok = [r["sparsity"] for r in rows if r["fid"] <= study["dense_fid_ci_high"]]  # the dense row always is
    assert study["largest_sparsity_within_noise"] == max(ok)

    run_id = json.loads(Path("runs/gan-0/train.json").read_text())["mlflow_run_id"]
    history = MlflowClient().get_metric_history(run_id, "prune/fid")
    assert sorted(m.step for m in history) == [0, 50, 90]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_the_study_runs_on_the_training_device(trained) -> None:
    """Sampling, fine-tuning and scoring follow ``train.device``: a GPU this machine lacks is refused, naming the key,
    and no study file is written."""
    raw = tiny_params(prune={"sparsities": SPARSITIES, "variants": ["gan", "vae"]})
    raw["train"]["device"] = "cuda"
    write_params(Path("params.yaml"), raw)
    result = CliRunner().invoke(app, ["prune", "--variant", "gan", "--seed", "0"])
    assert result.exit_code == 2
    assert "train.device: 'cuda' requested but no CUDA device is available" in result.output
    assert not Cell("gan", 0).prune_metrics.exists()


def test_vae_cells_are_pruned_without_fine_tuning(trained) -> None:
    assert CliRunner().invoke(app, ["prune", "--variant", "vae", "--seed", "0"]).exit_code == 0
    study = json.loads(Cell("vae", 0).prune_metrics.read_text())
    assert study["kind"] == "vae" and study["finetune_steps"] == 0
    assert all(r["finetune_final_loss"] is None for r in study["rows"])


def test_report_shows_the_pruning_study(trained) -> None:
    for variant in ("gan", "vae"):
        assert CliRunner().invoke(app, ["prune", "--variant", variant, "--seed", "0"]).exit_code == 0
    summary = write_report(trained)
    assert set(summary["pruning"]) == {"gan", "vae"}
    assert Path("reports/figures/fid-vs-sparsity.png").stat().st_size > 0
    report = Path("reports/report.md").read_text()
    assert "Pruning: fewer parameters, same quality?" in report and "Largest sparsity within noise" in report


def test_report_without_a_pruning_study_has_no_such_section(trained) -> None:
    summary = write_report(trained)
    assert "pruning" not in summary and "Pruning" not in Path("reports/report.md").read_text()


def test_bad_prune_sections_are_refused() -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="prune.sparsities"):
        parse_params(tiny_params(prune={"sparsities": [0.5, 0.9]}))
    with pytest.raises(ConfigError, match=r"prune.seeds: 3 not in grid.seeds \(0\): only trained cells"):
        parse_params(tiny_params(prune={"seeds": [0, 3]}))
    with pytest.raises(ConfigError, match=r"prune.variants: gone not in grid.variants \(gan, vae\): only trained"):
        parse_params(tiny_params(prune={"variants": ["gan", "gone"]}))
