"""NDB, label-free mode coverage: a hand-checkable case, and a mode-dropping "generator" built from real digits that
NDB must tell from one drawing every mode."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from pipeline import layout
from pipeline.config import DataConfig, EvaluateConfig, EvaluatorConfig
from pipeline.data import load_prepared, prepare_dataset
from pipeline.evaluation.cell import ReferenceSet, score_samples
from pipeline.evaluation.classifier import fit_classifier
from pipeline.evaluation.evaluator import save_evaluator
from pipeline.evaluation.ndb import fit_bins, ndb


def test_ndb_of_two_clusters_matches_a_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    reference = torch.cat([torch.randn(100, 2, generator=g) * 0.1, torch.randn(100, 2, generator=g) * 0.1 + 5])
    bins = fit_bins(reference, bins=2)
    assert sorted(bins.counts.tolist()) == [100, 100]
    collapsed = torch.randn(200, 2, generator=g) * 0.1  # every sample in the first cluster
    result = ndb(collapsed, bins, alpha=0.05)
    m = (0.75, 0.25)  # JS of (1, 0) against (1/2, 1/2): mixture (3/4, 1/4)
    js = 0.5 * math.log(1 / m[0]) + 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1]))
    assert result == {"ndb": 2, "ndb_share": 1.0, "ndb_js": pytest.approx(js), "ndb_bins": 2, "ndb_alpha": 0.05}
    faithful = ndb(torch.cat([reference[:100] + 0.01, reference[100:] - 0.01]), bins, alpha=0.05)
    assert faithful["ndb"] == 0 and faithful["ndb_js"] == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReferenceSet, EvaluateConfig]]:
    """Prepared digits (10 classes, 8×8) and a fitted classifier evaluator, in their own working directory."""
    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        meta = prepare_dataset(DataConfig(dataset="digits", resolution=8), Path(layout.PREPARED_DIR))
        train, train_labels = load_prepared("train")
        test, test_labels = load_prepared("test")
        cfg = EvaluatorConfig(kind="classifier", width=8, feature_dim=16, epochs=15, batch_size=64, lr=1e-2)
        model, metrics = fit_classifier(train, train_labels, test, test_labels, cfg, num_classes=10)
        save_evaluator(layout.EVALUATOR_PATH, model, metrics=metrics, data_fingerprint=meta["fingerprint"])
        evaluate = EvaluateConfig(num_samples=600, noise_draws=1, kid_subset_size=100, kid_subsets=5)
        yield ReferenceSet(evaluate), evaluate


def test_ndb_sees_half_of_the_modes_dropped(digits: tuple[ReferenceSet, EvaluateConfig]) -> None:
    reference, cfg = digits
    train, labels = load_prepared("train")
    g = torch.Generator().manual_seed(0)
    every_mode = train[torch.randperm(train.shape[0], generator=g)[:600]]
    half = torch.nonzero(labels < 5).squeeze(1)
    half_of_the_modes = train[half[torch.randint(0, half.numel(), (600,), generator=g)]]
    faithful = score_samples([every_mode], reference, cfg, seed=0)
    dropped = score_samples([half_of_the_modes], reference, cfg, seed=0)
    bins = faithful["ndb_bins"]
    assert bins == dropped["ndb_bins"] == reference.images.shape[0] // 20  # one bin per 20 test images
    assert dropped["ndb_share"] >= 0.35, dropped
    assert faithful["ndb_share"] <= 0.2, faithful
    assert dropped["ndb_js"] > 5 * faithful["ndb_js"]
    assert dropped["classes_covered"] <= 6 and faithful["classes_covered"] == 10  # the class view agrees
