"""The ``fit-evaluator`` command on a tiny prepared dataset: outputs, the kind auto picks, a weak evaluator's
warning, the one-class refusal, exit 2 without data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from pipeline import layout
from pipeline.evaluation.evaluator import load_evaluator, weights_hash
from stages import fit_evaluator
from tests.conftest import tiny_params, write_params, write_prepared


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command()(fit_evaluator.main)
    return app


def test_fit_evaluator_writes_weights_and_metrics(app: typer.Typer, workdir: Path) -> None:
    write_prepared(workdir)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"kind": "classifier", "epochs": 1, "width": 4,
                                                                 "feature_dim": 8, "batch_size": 32,
                                                                 "min_accuracy": 0.0}))
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    assert "evaluator: classifier (evaluator.kind is classifier (4 classes" in result.output
    assert "test_accuracy" in result.output and "warning" not in result.output

    model, info = load_evaluator(layout.EVALUATOR_PATH)
    assert model.arch() == {"channels": 1, "resolution": 8, "num_classes": 4, "width": 4, "feature_dim": 8}
    assert info["data_fingerprint"] == "synthetic-0" and info["kind"] == "classifier"
    summary = json.loads(layout.EVALUATOR_METRICS_PATH.read_text())
    assert summary["weights_sha256"] == weights_hash(layout.EVALUATOR_PATH)
    assert summary["data_fingerprint"] == "synthetic-0" and summary["num_train"] == 64 and summary["epochs"] == 1
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["train_seconds"] > 0
    assert summary["meets_min_accuracy"] is True and summary["weak"] is False
    assert summary["quality_metric"] == "test_accuracy" and summary["quality"] == summary["test_accuracy"]
    assert summary["quality_chance"] == max(np.bincount(np.load("data/prepared/test_labels.npy"))) / 32
    assert summary["config"]["width"] == 4
    assert info["metrics"]["test_accuracy"] == summary["test_accuracy"]


def test_a_crippled_classifier_is_flagged_weak(app: typer.Typer, workdir: Path) -> None:
    write_prepared(workdir, n_train=32, n_test=16)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"kind": "classifier", "width": 4, "feature_dim": 8,
                                                                 "max_steps": 1, "min_accuracy": 0.9}))
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    summary = json.loads(layout.EVALUATOR_METRICS_PATH.read_text())
    assert summary["steps"] == 1 and summary["test_accuracy"] < 0.9
    assert summary["weak"] is True and summary["meets_min_accuracy"] is False and summary["min_accuracy"] == 0.9
    assert f"warning: weak evaluator: test accuracy {summary['test_accuracy']:.3f} is below evaluator.min_accuracy" \
        in " ".join(result.output.split())


def test_auto_fits_a_contrastive_encoder_when_classes_are_few(app: typer.Typer, workdir: Path) -> None:
    write_prepared(workdir, n_train=64, n_test=32, num_classes=4)  # 4 classes < evaluator.min_classes (5)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"contrastive": {"width": 4, "feature_dim": 8,
                                                                                 "batch_size": 16, "epochs": 2}}))
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    model, info = load_evaluator(layout.EVALUATOR_PATH)
    summary = json.loads(layout.EVALUATOR_METRICS_PATH.read_text())
    assert info["kind"] == summary["kind"] == "contrastive" and model.num_classes == 0
    assert summary["kind_reason"].startswith("auto: 4 classes") and "does not meet" in summary["kind_reason"]
    assert summary["num_classes"] == 0 and summary["steps"] == 8  # 64 // 16 full batches × 2 epochs
    assert summary["quality_metric"] == "view_retrieval" and summary["quality_chance"] == 1 / 32
    assert 0 <= summary["knn_accuracy"] <= 1 and "test_accuracy" not in summary
    assert "meets_min_accuracy" not in summary  # a classifier's figure is never written for an encoder


def test_a_one_class_classifier_is_refused(app: typer.Typer, workdir: Path) -> None:
    write_prepared(workdir, num_classes=1)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"kind": "classifier"}))
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "evaluator.kind: a classifier needs at least 2 classes, the data have 1 (0); use contrastive" \
        in " ".join(result.output.split())
    assert not layout.EVALUATOR_PATH.exists() and not layout.EVALUATOR_METRICS_PATH.exists()


def test_fit_evaluator_without_prepared_data_exits_2(app: typer.Typer, workdir: Path) -> None:
    write_params(workdir / "params.yaml", tiny_params())
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 2
    assert "prepared dataset not found" in result.output
    assert not layout.EVALUATOR_PATH.exists() and not layout.EVALUATOR_METRICS_PATH.exists()


def test_fit_evaluator_with_bad_params_exits_2(app: typer.Typer, workdir: Path) -> None:
    write_prepared(workdir)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"epochs": 0}))
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 2
    assert "evaluator.epochs" in result.output
