"""Evaluating one cell: the metrics file's contract, MLflow logging, diverged cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline import layout
from pipeline.config import parse_params
from pipeline.evaluation.cell import evaluate_cell
from pipeline.evaluation.classifier import DomainClassifier, save_evaluator
from pipeline.io import atomic_write_json
from pipeline.training.loop import train_cell
from tests.conftest import tiny_params, write_prepared

CONTRACT_KEYS = {"variant", "seed", "status", "fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "feature_extractor",
                 "num_samples", "train_seconds", "images_per_second", "mlflow_run_id"}


@pytest.fixture
def trained(workdir: Path):
    write_prepared(workdir)
    params = parse_params(tiny_params())
    save_evaluator(layout.EVALUATOR_PATH, DomainClassifier(1, 8, 4, width=4, feature_dim=8).eval(),
                   metrics={"test_accuracy": 0.5}, data_fingerprint="synthetic-0")
    return params, train_cell(params, "gan", 0, progress=False)


def test_metrics_file_and_mlflow(trained) -> None:
    params, summary = trained
    result = evaluate_cell(params, "gan", 0)
    written = json.loads(layout.metrics_path("gan", 0).read_text())
    assert written == result and CONTRACT_KEYS <= set(written)
    assert written["status"] == "ok" and written["num_samples"] == 64
    assert written["mlflow_run_id"] == summary["mlflow_run_id"]
    assert all(isinstance(written[k], float) for k in ("fid", "isc_mean", "kid_mean"))
    metrics = MlflowClient().get_run(summary["mlflow_run_id"]).data.metrics
    assert metrics["fid"] == pytest.approx(written["fid"])


def test_evaluation_is_reproducible(trained) -> None:
    params, _ = trained
    assert evaluate_cell(params, "gan", 0)["fid"] == evaluate_cell(params, "gan", 0)["fid"]


def test_diverged_cell_gets_null_metrics(trained) -> None:
    params, summary = trained
    summary_path = layout.run_dir("gan", 0) / "train.json"
    atomic_write_json(summary_path, {**summary, "status": "diverged", "reason": "non-finite loss_d at step 4"})
    result = evaluate_cell(params, "gan", 0)
    assert result["status"] == "diverged" and result["reason"] == "non-finite loss_d at step 4"
    assert result["fid"] is None and result["isc_mean"] is None and result["kid_mean"] is None
