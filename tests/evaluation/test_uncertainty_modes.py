"""Cross-checks of the FID maths, the bootstrap interval, mode coverage and time-to-final-FID."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from pipeline.config import EvaluateConfig
from pipeline.evaluation.curve import time_to_within
from pipeline.evaluation.features import FEATURE_SPACES, Features
from pipeline.evaluation.metrics import fid_from_statistics, fid_statistics, score_features
from pipeline.evaluation.modes import class_coverage
from pipeline.evaluation.uncertainty import FrechetToReference, bootstrap_fid
from tests.evaluation.test_classifier import separable
from tests.evaluation.test_extractor_metrics import random_images, trained_weights  # noqa: F401 - fixture


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance written independently: numpy moments and scipy's matrix square root."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sigma_a @ sigma_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean))


def gaussian(n: int, dim: int, *, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=torch.Generator().manual_seed(99)) / math.sqrt(dim)
    return torch.randn(n, dim, generator=g) @ mixing + shift


def test_torch_fidelity_fid_agrees_with_an_independent_computation(trained_weights) -> None:
    """Same extractor features, two implementations: relative error ≤ 1e-3."""
    extractor = Features(FEATURE_SPACES["domain"], trained_weights, batch_size=64)
    generated = extractor(separable(300, seed=2)[0] // 2 + random_images(300, seed=1) // 4)
    reference = extractor(separable(400, seed=3)[0])
    cfg = EvaluateConfig(kid_subset_size=100, kid_subsets=5)
    ours = score_features(generated, reference, extractor.layers, cfg)["fid"]
    independent = scipy_fid(generated["feat"].double().numpy(), reference["feat"].double().numpy())
    assert independent > 0.1
    assert abs(ours - independent) / independent <= 1e-3


@pytest.mark.parametrize("shift", [0.0, 0.5, 3.0])
def test_resampling_distance_matches_torch_fidelity(shift: float) -> None:
    generated, reference = gaussian(2000, 16, seed=1, shift=shift), gaussian(3000, 16, seed=2)
    expected = fid_from_statistics(fid_statistics(generated), fid_statistics(reference))
    assert FrechetToReference(fid_statistics(reference))(generated) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_bootstrap_interval_brackets_the_noise_and_shrinks_with_more_samples() -> None:
    reference = fid_statistics(gaussian(20_000, 8, seed=2))
    small = bootstrap_fid(gaussian(300, 8, seed=1, shift=0.5), reference, resamples=100, confidence=0.9, seed=0)
    large = bootstrap_fid(gaussian(5000, 8, seed=1, shift=0.5), reference, resamples=100, confidence=0.9, seed=0)
    for result in (small, large):
        assert 0 < result["fid_ci_low"] < result["fid_ci_high"] and result["fid_bootstrap_std"] > 0
    assert (large["fid_ci_high"] - large["fid_ci_low"]) < (small["fid_ci_high"] - small["fid_ci_low"]) / 2
    truth = 8 * 0.25  # the mean shift alone: |Δμ|² = 8 · 0.5²; covariances are equal
    assert large["fid_ci_low"] < truth * 1.2 and large["fid_ci_high"] > truth * 0.8
    again = bootstrap_fid(gaussian(300, 8, seed=1, shift=0.5), reference, resamples=100, confidence=0.9, seed=0)
    assert again == small and "100 resamples" in small["fid_ci_method"]


def one_hot_logits(classes: list[int], num_classes: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), num_classes).float() * 5


REAL = torch.tensor([0, 1, 2, 3] * 25)


@pytest.mark.parametrize(("predicted", "covered", "kl"), [
    ([0, 1, 2, 3] * 10, 4, 0.0),                      # balanced like the real data
    ([2] * 40, 1, math.log(4)),                       # collapsed onto one class
    ([0] * 20 + [1] * 20, 2, math.log(2)),            # two modes
    ([0] * 77 + [1, 2, 3], 1, None),                  # 1 of 80 per class: below 0.1 × 1/4, not covered
])  # fmt: skip
def test_class_coverage(predicted: list[int], covered: int, kl: float | None) -> None:
    result = class_coverage(one_hot_logits(predicted), REAL, min_share=0.1)
    assert result["classes_covered"] == covered and result["num_classes"] == 4
    assert sum(result["class_histogram"]) == len(predicted) and result["real_class_share"] == [0.25] * 4
    if kl is not None:
        assert result["class_kl"] == pytest.approx(kl, abs=1e-9)
    else:
        assert result["class_kl"] > 1.0


def test_class_absent_from_the_real_data() -> None:
    result = class_coverage(one_hot_logits([3, 3, 0]), torch.tensor([0, 1, 2, 0]), min_share=0.1)
    assert result["class_kl"] is None  # infinite: the generator makes a class the data never shows
    assert result["classes_covered"] == 1  # class 3 has no real share: never counted as covered


def point(step: int, fid: float | None) -> dict:
    return {"step": step, "train_seconds": step / 10, "fid": fid}


@pytest.mark.parametrize(("fids", "step"), [
    ([300.0, 120.0, 105.0, 100.0], 2),   # 105 ≤ 110: the first within 10%
    ([300.0, 109.0, 150.0, 100.0], 1),   # the first time it got there, even if it left again
    ([300.0, 200.0, 100.0], 2),          # only the final point
    ([300.0, None, 100.0], 2),           # a non-finite snapshot is skipped
    ([300.0, 100.0, None], None),        # no final FID: undefined
    ([], None),
])  # fmt: skip
def test_time_to_within_ten_percent(fids: list, step: int | None) -> None:
    result = time_to_within([point(i, f) for i, f in enumerate(fids)])
    assert result["steps_to_within_10pct"] == step
    assert result["time_to_within_10pct"] == (None if step is None else step / 10)
