"""``python -m stages noise-floor``: real-vs-real FID per feature space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from pipeline import layout
from pipeline.data import load_prepared
from pipeline.evaluation.classifier import fit_classifier
from pipeline.evaluation.evaluator import save_evaluator
from pipeline.evaluation.features import FEATURE_SPACES, Features
from pipeline.evaluation.metrics import fid_from_statistics, fid_statistics
from stages.app import app
from tests.conftest import tiny_params, write_params, write_prepared
from tests.evaluation.test_classifier import TINY

runner = CliRunner()


def test_noise_floor_is_small_next_to_a_different_distribution(workdir: Path) -> None:
    write_prepared(workdir, n_train=300, n_test=100)
    write_params(workdir / "params.yaml", tiny_params())
    model, metrics = fit_classifier(*load_prepared("train"), *load_prepared("test"), TINY, num_classes=4)
    save_evaluator(layout.EVALUATOR_PATH, model, metrics=metrics, data_fingerprint="synthetic-0")

    result = runner.invoke(app, ["noise-floor"])
    assert result.exit_code == 0, result.output
    assert "noise floor (domain-classifier)" in result.output
    floor = json.loads(layout.NOISE_FLOOR_PATH.read_text())
    assert floor["num_samples"] == 100 and floor["repeats"] == 2 and floor["reference"] == "test"
    assert floor["disjoint_subsets"] is True  # 2 × 100 of 300 training images
    domain = floor["feature_spaces"]["domain-classifier"]
    assert len(domain["fid_values"]) == 2 and len(set(domain["fid_values"])) == 2  # different train subsets
    assert domain["fid_mean"] == np.mean(domain["fid_values"]) and domain["fid_std"] > 0

    # The same number of images from another distribution (every image one class darker) scores far worse.
    test, _ = load_prepared("test")
    extractor = Features(FEATURE_SPACES["domain"], layout.EVALUATOR_PATH, batch_size=50)
    stats = fid_statistics(extractor(test)["feat"])
    shifted = fid_from_statistics(fid_statistics(extractor((test.int() - 63).clamp(0, 255).byte())["feat"]), stats)
    assert 0 < domain["fid_mean"] < shifted / 5


def test_noise_floor_without_an_evaluator_is_bad_input(workdir: Path) -> None:
    write_prepared(workdir)
    write_params(workdir / "params.yaml", tiny_params())
    result = runner.invoke(app, ["noise-floor"])
    assert result.exit_code == 2 and "fit-evaluator" in result.output
    assert not layout.NOISE_FLOOR_PATH.exists()
