"""Statistics over seeds: mean, std and an interval that respects the metric's range, Welch's t-test, Holm's
correction, the probability of improvement and Hedges' g.

Undefined values (the std of one seed, the p-value of a test without two seeds a side) are ``None`` so that JSON
holds ``null``. :mod:`pipeline.reporting.summary` applies these to the grid.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

STATUSES = ("ok", "diverged", "failed")


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


INTERVAL_METHODS = {
    "log-t": "Student's t-interval on the log values (a multiplicative interval, never below zero)",
    "bootstrap": "percentile bootstrap of the mean over seeds (within the seeds' range, never below zero)",
    "t": "Student's t-interval of the mean",
    "t-clamped": "Student's t-interval of the mean clamped at zero (KID's unbiased estimate can be negative, the "
                 "squared MMD it estimates cannot)",
}
SMALL_N = 3  # at or below this many seeds an interval is wide because n is small, and the report says so
BOOTSTRAP_RESAMPLES = 9999


def interval(data: np.ndarray, *, confidence: float, nonnegative: bool, share: bool = False) -> tuple[float, float, str]:
    """A two-sided interval of the mean of ``data`` (n ≥ 2) and its method (a key of :data:`INTERVAL_METHODS`).

    A quantity that cannot be negative (FID, IS, times, ...) never gets a negative bound: with every value positive,
    a t-interval on log values; with zeros among them, a percentile bootstrap of the mean. A share in [0, 1]
    (precision, recall) always gets the bootstrap, which stays within the seeds' range.
    """
    n = data.size
    t = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    if nonnegative and not share and bool((data > 0).all()):
        logs = np.log(data)
        half = t * float(logs.std(ddof=1)) / math.sqrt(n)
        return math.exp(logs.mean() - half), math.exp(logs.mean() + half), "log-t"
    if nonnegative and bool((data >= 0).all()):
        if data.min() == data.max():
            return float(data[0]), float(data[0]), "bootstrap"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns that a two-seed bootstrap is degenerate; it is, and wide
            result = stats.bootstrap((data,), np.mean, confidence_level=confidence, method="percentile",
                                     n_resamples=BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(0))
        return float(result.confidence_interval.low), float(result.confidence_interval.high), "bootstrap"
    half = t * float(data.std(ddof=1)) / math.sqrt(n)
    return float(data.mean()) - half, float(data.mean()) + half, "t"


def describe(values: Sequence[float], *, confidence: float = 0.95, nonnegative: bool = True,
             share: bool = False, estimates_nonnegative: bool = False) -> dict[str, Any]:
    """Mean, sample std (ddof=1), n, the per-seed ``values`` and an interval of the mean at ``confidence``
    (:func:`interval`; ``ci_method`` names it). ``estimates_nonnegative``: values that may be negative estimates of
    a quantity that cannot be (KID): the t-interval's lower end is clamped at zero.

    With n = 1 the std and interval are None; with n = 0 everything but n and values is None.
    """
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    result: dict[str, Any] = {"mean": None, "std": None, "n": n, "ci_low": None, "ci_high": None, "ci_method": None,
                              "values": [float(v) for v in data]}
    if n == 0:
        return result
    result["mean"] = float(data.mean())
    if n >= 2:
        low, high, method = interval(data, confidence=confidence, nonnegative=nonnegative, share=share)
        if estimates_nonnegative and method == "t":
            low, high, method = max(low, 0.0), max(high, 0.0), "t-clamped"
        result.update(std=float(data.std(ddof=1)), ci_low=low, ci_high=high, ci_method=method)
    return result


def half_width(stat: dict[str, Any]) -> float | None:
    """Half-width of a :func:`describe` interval, None when undefined."""
    if stat.get("ci_high") is None or stat.get("mean") is None:
        return None
    return float(stat["ci_high"]) - float(stat["mean"])


def welch_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances); None when undefined (n < 2 or zero variance)."""
    if len(a) < 2 or len(b) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return finite(float(result.pvalue))


def alpha_for(confidence: float) -> float:
    """The significance level that matches a confidence level: 1 − confidence (rounded off float noise)."""
    return round(1 - confidence, 12)


def compare(
    best: str, runner_up: str, best_fid: Sequence[float], runner_up_fid: Sequence[float], *, confidence: float
) -> dict[str, Any]:
    """How far the runner-up's mean FID is above the best's, and whether Welch's t-test separates them."""
    best_mean, runner_mean = float(np.mean(best_fid)), float(np.mean(runner_up_fid))
    difference = runner_mean - best_mean
    enough = len(best_fid) >= 2 and len(runner_up_fid) >= 2
    p_value = welch_test(best_fid, runner_up_fid) if enough else None
    alpha = alpha_for(confidence)
    return {
        "best": best,
        "runner_up": runner_up,
        "difference": difference,
        "relative_difference": difference / abs(best_mean) if best_mean != 0 else None,
        "test": "welch_t" if enough else None,
        "enough_seeds": enough,
        "p_value": p_value,
        "alpha": alpha,
        "significant": None if p_value is None else bool(p_value < alpha),
    }


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values, in input order; None stays None and does not count towards m.

    The i-th smallest of the m defined p-values becomes max over j ≤ i of min(1, (m − j + 1) · p_(j)).
    """
    defined = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p_value, index) in enumerate(defined):
        running = max(running, min(1.0, (len(defined) - rank) * p_value))
        adjusted[index] = running
    return adjusted


PAIRWISE_METHOD = (
    "Welch's two-sided t-test on the FID of the ok seeds of each pair of ranked variants; p-values adjusted for "
    "multiple comparisons with the Holm-Bonferroni method over the pairs whose test is defined. Beside it: the "
    "probability of improvement P(FID_a < FID_b) over seed pairs with a percentile-bootstrap interval (seeds "
    "resampled within each variant; Agarwal et al. 2021) and Hedges' g (small-sample corrected standardised "
    "difference of the means)."
)


def probability_of_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """P(X < Y) for X a seed's FID of ``a`` and Y one of ``b`` (ties count half): the Mann-Whitney U / (n_a n_b)."""
    x, y = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    return float(((x < y) + 0.5 * (x == y)).mean())


def improvement_interval(a: Sequence[float], b: Sequence[float], *, confidence: float) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of :func:`probability_of_improvement`, seeds resampled within each variant;
    None with fewer than 2 seeds on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples with few seeds are expected
        result = stats.bootstrap((np.asarray(a, float), np.asarray(b, float)), probability_of_improvement,
                                 vectorized=False, paired=False, confidence_level=confidence, method="percentile",
                                 n_resamples=2000, rng=np.random.default_rng(0))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float | None:
    """(mean b − mean a) / pooled std, times the small-sample correction 1 − 3 / (4 (n_a + n_b) − 9); None when
    undefined (fewer than 2 seeds a side, or no spread)."""
    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return None
    pooled = math.sqrt(((n_a - 1) * np.var(a, ddof=1) + (n_b - 1) * np.var(b, ddof=1)) / (n_a + n_b - 2))
    if pooled == 0:
        return None
    return float((np.mean(b) - np.mean(a)) / pooled * (1 - 3 / (4 * (n_a + n_b) - 9)))


def _untested_reason(a: str, b: str, fid_a: Sequence[float], fid_b: Sequence[float]) -> str:
    few = [f"{name} has {len(values)} ok seed{'s' * (len(values) != 1)}"
           for name, values in ((a, fid_a), (b, fid_b)) if len(values) < 2]  # fmt: skip
    if few:
        return "; ".join(few) + "; the test needs at least 2 per variant"
    return "no spread across seeds, so the t statistic is undefined"


def pairwise(ranking: Sequence[str], fid: dict[str, Sequence[float]], *, confidence: float) -> list[dict[str, Any]]:
    """Welch's t-test between every unordered pair of ranked variants, Holm-adjusted.

    ``ranking`` is best first and ``fid`` maps each variant to its ok seeds' FIDs, so ``a`` is the better-ranked of
    each pair and ``mean_difference`` (b − a) is never negative. ``reason`` says why a test is undefined.
    """
    alpha = alpha_for(confidence)
    entries = []
    for i, a in enumerate(ranking):
        for b in ranking[i + 1 :]:
            p_value = welch_test(fid[a], fid[b])
            poi = improvement_interval(fid[a], fid[b], confidence=confidence)
            entries.append({
                "a": a, "b": b, "mean_difference": float(np.mean(fid[b]) - np.mean(fid[a])),
                "test": "welch_t" if min(len(fid[a]), len(fid[b])) >= 2 else None,
                "p_value": p_value, "alpha": alpha, "n_a": len(fid[a]), "n_b": len(fid[b]),
                "reason": None if p_value is not None else _untested_reason(a, b, fid[a], fid[b]),
                "prob_improvement": probability_of_improvement(fid[a], fid[b]),
                "prob_improvement_ci": list(poi) if poi is not None else None,
                "hedges_g": hedges_g(fid[a], fid[b]),
            })  # fmt: skip
    for entry, adjusted in zip(entries, holm([e["p_value"] for e in entries])):
        entry["p_adjusted"] = adjusted
        entry["significant"] = None if adjusted is None else bool(adjusted < alpha)
    return entries
