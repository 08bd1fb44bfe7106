"""The contrastive evaluator: NT-Xent against a hand computation, augmentations, a fit that beats its random
initialisation, its file and torch-fidelity extractor (no IS layer), and how ``auto`` chooses the kind."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from pipeline.config import ContrastiveConfig, EvaluatorConfig
from pipeline.errors import DataError
from pipeline.evaluation.classifier import to_unit_range
from pipeline.evaluation.contrastive import ContrastiveEncoder, augment, fit_contrastive, knn_accuracy, nt_xent
from pipeline.evaluation.evaluator import choose_kind, evaluator_kind, load_evaluator, save_evaluator
from pipeline.evaluation.features import DOMAIN_SPACES, Features, resolve_space
from tests.evaluation.test_classifier import separable

TINY = ContrastiveConfig(width=8, feature_dim=16, projection_dim=8, batch_size=64, epochs=20, lr=5e-3)


def test_nt_xent_matches_a_hand_computation() -> None:
    z = torch.eye(3)  # three orthogonal unit embeddings; each view equals its partner
    tau = 0.5
    # every row: the partner at similarity 1, the 2B - 2 = 4 others at 0 (the row itself is excluded)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 4))
    torch.testing.assert_close(nt_xent(z, z.clone(), tau), torch.tensor(expected))
    swapped = nt_xent(z, z[[1, 2, 0]], tau)  # partners now orthogonal, and another embedding identical
    assert swapped > nt_xent(z, z.clone(), tau)


def test_augment_keeps_shape_and_range_and_is_random() -> None:
    images, _ = separable(16, resolution=8)
    cfg = ContrastiveConfig()
    a, b = (augment(images, cfg, torch.Generator().manual_seed(s)) for s in (0, 1))
    assert a.shape == images.shape and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, b)
    rgb = augment(torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8), cfg, torch.Generator().manual_seed(0))
    assert rgb.shape == (4, 3, 8, 8)


def test_augment_is_reproducible_and_geometry_alone_keeps_intensities() -> None:
    images, _ = separable(32, resolution=8)
    cfg = ContrastiveConfig()
    torch.testing.assert_close(augment(images, cfg, torch.Generator().manual_seed(5)),
                               augment(images, cfg, torch.Generator().manual_seed(5)))
    flat = torch.full((4, 1, 8, 8), 200, dtype=torch.uint8)  # crop, resize and flip of a flat image change nothing
    view = augment(flat, ContrastiveConfig(jitter=0.0), torch.Generator().manual_seed(0))
    torch.testing.assert_close(view, torch.full_like(view, 200 / 127.5 - 1))
    jittered = augment(flat, ContrastiveConfig(jitter=0.4), torch.Generator().manual_seed(0))
    assert jittered.amin(dim=(1, 2, 3)).unique().numel() == 4  # each image its own brightness


def test_knn_accuracy_on_a_labelled_bank() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.0, 1.0]])
    assert knn_accuracy(bank, labels, queries, torch.tensor([0, 1, 0]), k=2) == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def fitted() -> tuple[ContrastiveEncoder, dict]:
    """An encoder fitted on scikit-learn's real 8×8 digits (1,400 train, 397 test)."""
    digits = load_digits()
    images = torch.from_numpy((digits.images * 255 / 16).round().astype(np.uint8))[:, None]  # (1797, 1, 8, 8)
    labels = torch.from_numpy(digits.target)
    data = {"train_images": images[:1400], "train_labels": labels[:1400], "test_images": images[1400:],
            "test_labels": labels[1400:]}
    return fit_contrastive(data, TINY, num_classes=10)


def test_fit_beats_its_random_initialisation(fitted: tuple[ContrastiveEncoder, dict]) -> None:
    model, metrics = fitted
    assert not model.training and metrics["steps"] == 20 * (1400 // 64)
    assert metrics["final_loss"] < metrics["loss_at_chance"] == pytest.approx(math.log(127))
    assert metrics["view_retrieval"] > 2 * metrics["view_retrieval_at_init"]
    assert metrics["view_retrieval_chance"] == 1 / 397
    assert metrics["knn_accuracy"] > metrics["knn_accuracy_at_init"] + 0.1  # the embedding learnt the digits' shapes
    assert metrics["knn_chance"] < 0.15
    assert metrics["uniformity"] < 0 and metrics["alignment"] >= 0


def test_saved_encoder_round_trips_and_has_no_is_layer(tmp_path: Path, fitted: tuple[ContrastiveEncoder, dict]) -> None:
    model, metrics = fitted
    path = tmp_path / "evaluator.pt"
    save_evaluator(path, model, metrics=metrics, data_fingerprint="abc")
    loaded, info = load_evaluator(path)
    assert isinstance(loaded, ContrastiveEncoder) and info["kind"] == evaluator_kind(path) == "contrastive"
    x = to_unit_range(separable(8, seed=3)[0])
    torch.testing.assert_close(loaded.features(x), model.features(x))
    space = resolve_space("domain", path)
    assert space == DOMAIN_SPACES["contrastive"] and space.extractor == "domain-contrastive"
    features = Features(space, path, batch_size=16)
    assert features.layers == {"fid": "feat", "kid": "feat", "prc": "feat"}  # no logits, so no IS
    feats = features(separable(8, seed=3)[0])
    torch.testing.assert_close(feats["feat"], model.features(x))


def test_too_few_images_is_a_data_error() -> None:
    image, label = separable(1)
    with pytest.raises(DataError, match="at least 2 training images"):
        fit_contrastive({"train_images": image, "train_labels": label, "test_images": image, "test_labels": label},
                        TINY, num_classes=1)


@pytest.mark.parametrize(("counts", "kind", "expected", "reason"), [
    ([500] * 10, "auto", "classifier", "auto: 10 classes, the smallest with 500 training images meets the rule"),
    ([500] * 9 + [50], "auto", "contrastive", "the smallest with 50 training images does not meet the rule"),
    ([500] * 4, "auto", "contrastive", "auto: 4 classes"),
    ([1200], "auto", "contrastive", "auto: 1 class, the smallest with 1200"),
    ([500] * 2, "classifier", "classifier", "evaluator.kind is classifier (2 classes"),
    ([500] * 10, "contrastive", "contrastive", "evaluator.kind is contrastive (10 classes"),
])  # fmt: skip
def test_choose_kind(counts: list[int], kind: str, expected: str, reason: str) -> None:
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    chosen, why = choose_kind(EvaluatorConfig(kind=kind), labels, [str(k) for k in range(len(counts))])
    assert chosen == expected and reason in why


def test_choose_kind_refuses_a_one_class_classifier() -> None:
    with pytest.raises(DataError, match="a classifier needs at least 2 classes, the data have 1 \\(all\\)"):
        choose_kind(EvaluatorConfig(kind="classifier"), torch.zeros(100, dtype=torch.long), ["all"])
