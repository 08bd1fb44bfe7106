"""Evaluating one cell: the metrics file's contract, MLflow logging, diverged cells."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline import layout
from pipeline.config import parse_params
from pipeline.data import load_prepared
from pipeline.errors import InputError
from pipeline.evaluation.cell import evaluate_cell, read_train_summary
from pipeline.evaluation.classifier import fit_classifier
from pipeline.evaluation.evaluator import save_evaluator
from pipeline.layout import Cell
from pipeline.records import write_record
from pipeline.training.loop import train_cell
from tests.conftest import tiny_params, write_prepared
from tests.evaluation.test_classifier import TINY

CONTRACT_KEYS = {"variant", "seed", "status", "fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "feature_extractor",
                 "num_samples", "train_seconds", "images_per_second", "mlflow_run_id"}


@pytest.fixture
def trained(trained_workdir: Path):
    """The tiny project's params and gan-0's training summary, in a private copy."""
    return parse_params(tiny_params()), read_train_summary(Cell("gan", 0))


def test_metrics_file_and_mlflow(trained) -> None:
    params, summary = trained
    result = evaluate_cell(params, "gan", 0).model_dump()
    written = json.loads(Cell("gan", 0).metrics.read_text())
    assert written == result and CONTRACT_KEYS <= set(written)
    assert written["status"] == "ok" and written["num_samples"] == 64
    assert written["mlflow_run_id"] == summary.mlflow_run_id
    assert written["fid"] > 0 and 1 <= written["isc_mean"] <= 4  # IS lies between 1 and the 4 classes
    assert written["fid"] == pytest.approx(sum(written["fid_draws"]) / len(written["fid_draws"]))
    metrics = MlflowClient().get_run(summary.mlflow_run_id).data.metrics
    assert metrics["fid"] == pytest.approx(written["fid"])


def test_evaluation_is_reproducible(trained) -> None:
    params, _ = trained
    assert evaluate_cell(params, "gan", 0).fid == evaluate_cell(params, "gan", 0).fid


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cells_are_scored_on_the_training_device(trained) -> None:
    """Sampling, features and FID follow ``train.device``: a GPU this machine lacks is refused, naming the key, and
    no metrics file is written."""
    params, _ = trained
    on_gpu = params.model_copy(update={"train": params.train.model_copy(update={"device": "cuda"})})
    with pytest.raises(InputError, match=r"train.device: 'cuda' requested but no CUDA device is available"):
        evaluate_cell(on_gpu, "gan", 0)
    assert not Cell("gan", 0).metrics.exists()


def test_diverged_cell_gets_null_metrics(trained) -> None:
    params, summary = trained
    write_record(Cell("gan", 0).train_summary,
                 summary.model_copy(update={"status": "diverged", "reason": "non-finite loss_d at step 4"}))
    result = evaluate_cell(params, "gan", 0).model_dump()
    assert result["status"] == "diverged" and result["reason"] == "non-finite loss_d at step 4"
    assert result["fid"] is None and result["isc_mean"] is None and result["kid_mean"] is None


def test_metrics_file_has_every_evaluation_section(trained) -> None:
    params, _ = trained
    result = evaluate_cell(params, "gan", 0).model_dump()
    draws = result["fid_draws"]  # tiny params: 3 independent draws of 64 samples
    assert len(draws) == 3 and len(set(draws)) == 3 and result["fid"] == pytest.approx(sum(draws) / 3)
    assert result["fid_ci_low"] < result["fid"] < result["fid_ci_high"] and result["fid_draws_std"] > 0
    assert result["fid_ci_confidence"] == 0.95 and "3 independent noise draws of 64 samples" in result["fid_ci_method"]
    assert 0 <= result["fid_infinity_ci_low"] <= result["fid_infinity"] <= result["fid_infinity_ci_high"]
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert result["feature_spaces"] == {"domain-classifier": {k: result[k] for k in (
        "fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "precision", "recall", "f_score", "fid_ci_low",
        "fid_ci_high")}}
    assert result["num_classes"] == 4 and sum(result["class_histogram"]) == 64
    assert 1 <= result["classes_covered"] <= 4 and result["class_names"] == ["0", "1", "2", "3"]
    assert [p["step"] for p in result["fid_curve"]] == [0, 3, 6]  # snapshot_every 3 over 6 steps
    assert result["curve_feature_extractor"] == "domain-classifier" and result["curve_num_samples"] == 32
    assert all(p["fid"] > 0 for p in result["fid_curve"])
    curve, target = result["fid_curve"], 1.1 * result["fid_curve"][-1]["fid"]
    first = next(p for p in curve if p["fid"] <= target)  # the first snapshot within 10% of the last one's FID
    assert (result["steps_to_within_10pct"], result["time_to_within_10pct"]) == (first["step"], first["train_seconds"])
    history = MlflowClient().get_metric_history(result["mlflow_run_id"], "curve_fid")
    assert sorted((m.step, m.value) for m in history) == [(p["step"], p["fid"]) for p in result["fid_curve"]]


def test_collapsed_generator_covers_one_class(workdir: Path) -> None:
    """A generator that ignores its noise and always draws class 2 (a uniform image of that class's brightness)."""
    write_prepared(workdir, n_train=512, n_test=256)
    params = parse_params(tiny_params())
    model, metrics = fit_classifier(*load_prepared("train"), *load_prepared("test"), TINY, num_classes=4)
    assert metrics["test_accuracy"] > 0.95
    save_evaluator(layout.EVALUATOR_PATH, model, metrics=metrics, data_fingerprint="synthetic-0")
    train_cell(params, "gan", 0, progress=False)
    path = Cell("gan", 0).generator
    state = torch.load(path, weights_only=True)
    last = max(k for k in state["state_dict"] if k.endswith(".weight") and state["state_dict"][k].ndim == 4)
    state["state_dict"][last].zero_()  # output = tanh(bias) everywhere, whatever z is
    grey = 2 * (255 // 4) + 20  # class k of write_prepared: brightness 63k + U[0, 40)
    state["state_dict"][last.replace("weight", "bias")].fill_(math.atanh(grey / 127.5 - 1))
    torch.save(state, path)

    result = evaluate_cell(params, "gan", 0).model_dump()
    p_real = result["real_class_share"][2]
    assert result["classes_covered"] == 1 and result["class_histogram"] == [0, 0, 64, 0]
    assert result["class_kl"] == pytest.approx(math.log(1 / p_real)) and result["class_kl"] > 1.0
    assert result["recall"] < 0.5  # one mode of four: most real samples are far from every generated one
