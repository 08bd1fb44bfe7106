"""Statistics over seeds: mean, std and t-based confidence interval, Welch's t-test and Holm's correction.

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


def describe(values: Sequence[float], *, confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean, sample std (ddof=1), n and the two-sided t-interval of the mean at ``confidence``.

    With n = 1 the std and interval are None; with n = 0 everything but n is None.
    """
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    result: dict[str, float | int | None] = {"mean": None, "std": None, "n": n, "ci_low": None, "ci_high": None}
    if n == 0:
        return result
    mean = float(data.mean())
    result["mean"] = mean
    if n >= 2:
        std = float(data.std(ddof=1))
        half_width = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
        result.update(std=std, ci_low=mean - half_width, ci_high=mean + half_width)
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
    "multiple comparisons with the Holm-Bonferroni method over the pairs whose test is defined."
)


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
            entries.append({
                "a": a, "b": b, "mean_difference": float(np.mean(fid[b]) - np.mean(fid[a])),
                "test": "welch_t" if min(len(fid[a]), len(fid[b])) >= 2 else None,
                "p_value": p_value, "alpha": alpha, "n_a": len(fid[a]), "n_b": len(fid[b]),
                "reason": None if p_value is not None else _untested_reason(a, b, fid[a], fid[b]),
            })  # fmt: skip
    for entry, adjusted in zip(entries, holm([e["p_value"] for e in entries])):
        entry["p_adjusted"] = adjusted
        entry["significant"] = None if adjusted is None else bool(adjusted < alpha)
    return entries
