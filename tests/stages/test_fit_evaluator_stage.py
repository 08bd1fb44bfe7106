"""The ``fit-evaluator`` command on a tiny prepared dataset: outputs, accuracy warning, exit 2 without data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline import layout
from pipeline.evaluation import classifier
from pipeline.evaluation.classifier import load_evaluator, weights_hash
from stages import fit_evaluator
from tests.conftest import tiny_params, write_params, write_prepared


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command()(fit_evaluator.main)
    return app


def test_fit_evaluator_writes_weights_and_metrics(app: typer.Typer, workdir: Path) -> None:
    write_prepared(workdir)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"epochs": 1, "width": 4, "feature_dim": 8,
                                                                 "batch_size": 32, "min_accuracy": 0.0}))
    result = CliRunner().invoke(app, ["--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    assert "evaluator: test accuracy" in result.output and "warning" not in result.output

    model, info = load_evaluator(layout.EVALUATOR_PATH)
    assert model.arch() == {"channels": 1, "resolution": 8, "num_classes": 4, "width": 4, "feature_dim": 8}
    assert info["data_fingerprint"] == "synthetic-0"
    summary = json.loads(layout.EVALUATOR_METRICS_PATH.read_text())
    assert summary["weights_sha256"] == weights_hash(layout.EVALUATOR_PATH)
    assert summary["data_fingerprint"] == "synthetic-0" and summary["num_train"] == 64 and summary["epochs"] == 1
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["train_seconds"] > 0
    assert summary["meets_min_accuracy"] is True
    assert summary["config"]["width"] == 4
    assert info["metrics"]["test_accuracy"] == summary["test_accuracy"]


def test_fit_evaluator_warns_below_min_accuracy(
    app: typer.Typer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = classifier.fit_classifier

    def poor_fit(*args, **kwargs):
        model, metrics = original(*args, **kwargs)
        return model, {**metrics, "test_accuracy": 0.5}

    monkeypatch.setattr(classifier, "fit_classifier", poor_fit)
    write_prepared(workdir, n_train=32, n_test=16)
    write_params(workdir / "params.yaml", tiny_params(evaluator={"epochs": 1, "width": 4, "feature_dim": 8,
                                                                 "min_accuracy": 0.9}))
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    assert "warning: evaluator test accuracy 0.5000 is below evaluator.min_accuracy 0.9" in result.output
    summary = json.loads(layout.EVALUATOR_METRICS_PATH.read_text())
    assert summary["meets_min_accuracy"] is False and summary["min_accuracy"] == 0.9


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
