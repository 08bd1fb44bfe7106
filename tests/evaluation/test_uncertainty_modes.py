"""Cross-checks of the FID maths, the interval over noise draws and FID∞, mode coverage and time-to-final-FID."""

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
from pipeline.evaluation.uncertainty import FrechetToReference, fid_over_draws, t_interval
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


DIM, SHIFT, SCALE = 32, 0.2, 0.8
# FID(N(SHIFT·1, SCALE²I), N(0, I)) = |Δμ|² + tr(Σg + Σr - 2√(Σg Σr))
CLOSED_FORM = DIM * SHIFT**2 + DIM * (1 - SCALE) ** 2
EXACT = {"mu": np.zeros(DIM), "sigma": np.eye(DIM)}  # the reference's population statistics: no reference-side noise


def isotropic(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(n, DIM, generator=generator, dtype=torch.float64) * SCALE + SHIFT


def draws_of(n: int, k: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [isotropic(n, generator) for _ in range(k)]


def test_fid_over_draws_brackets_the_expected_fid_and_fid_infinity_the_closed_form() -> None:
    """Gaussians with a closed-form FID: over 20 repetitions of 5 draws of 1,000, the t-interval of the mean FID
    covers E[FID at N=1,000] (Monte Carlo, 300 draws) and FID∞'s covers the population FID; FID at N does not."""
    distance = FrechetToReference(EXACT)
    expected_at_n = float(np.mean([distance(x) for x in draws_of(1000, 300, seed=10_000)]))
    assert expected_at_n > CLOSED_FORM * 1.05  # the bias in N the extrapolation removes
    covers = {"at_n": 0, "infinity": 0, "at_n_closed_form": 0}
    for repetition in range(20):
        result = fid_over_draws(draws_of(1000, 5, seed=repetition), EXACT, confidence=0.95, seed=repetition)
        assert 0 <= result["fid_ci_low"] < result["fid"] < result["fid_ci_high"] and len(result["fid_draws"]) == 5
        covers["at_n"] += result["fid_ci_low"] <= expected_at_n <= result["fid_ci_high"]
        covers["at_n_closed_form"] += result["fid_ci_low"] <= CLOSED_FORM <= result["fid_ci_high"]
        covers["infinity"] += result["fid_infinity_ci_low"] <= CLOSED_FORM <= result["fid_infinity_ci_high"]
    assert covers["at_n"] >= 16 and covers["infinity"] >= 16, covers  # nominal 95%: 19 of 20
    assert covers["at_n_closed_form"] <= 4, covers


@pytest.mark.parametrize(("values", "confidence"), [([50.1, 51.3, 49.8, 50.6], 0.95), ([3.0, 9.0, 4.5], 0.9)])
def test_t_interval_is_scipy_stats_t_interval(values: list[float], confidence: float) -> None:
    from scipy import stats

    x = np.asarray(values)
    low, high = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert t_interval(x, confidence) == (pytest.approx(max(low, 0.0), rel=1e-12), pytest.approx(high, rel=1e-12))


def test_one_draw_has_no_interval_and_nothing_goes_below_zero() -> None:
    """Real against real (FID ≈ 0): FID∞ and the interval are clamped at 0; one draw gives no interval."""
    generator = torch.Generator().manual_seed(0)
    same = [torch.randn(400, 8, generator=generator, dtype=torch.float64) for _ in range(3)]
    result = fid_over_draws(same, {"mu": np.zeros(8), "sigma": np.eye(8)}, confidence=0.95, seed=0)
    assert result["fid_ci_low"] >= 0 and result["fid_infinity"] >= 0 and result["fid_infinity_ci_low"] >= 0
    single = fid_over_draws(same[:1], {"mu": np.zeros(8), "sigma": np.eye(8)}, confidence=0.95, seed=0)
    assert single["fid_ci_low"] is None and single["fid_draws_std"] is None and single["fid"] == result["fid_draws"][0]
    assert "1 independent noise draws of 400 samples" in single["fid_ci_method"]


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
