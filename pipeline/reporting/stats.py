"""Statistics over seeds: per-variant mean, std and t-based confidence interval, ranking, and Welch's t-test.

Only cells with status ``ok`` enter the statistics; diverged and failed cells are counted and listed with their
reasons. Undefined values (the std of one seed, the CI of one seed) are ``None`` so that JSON holds ``null``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

STATUSES = ("ok", "diverged", "failed")
SUMMARY_METRICS = ("fid", "isc_mean", "kid_mean", "train_seconds", "images_per_second")
FID = "fid"


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


def _ok_values(cells: Sequence[dict[str, Any]], metric: str) -> list[float]:
    return [v for cell in cells if cell.get("status") == "ok" and (v := finite(cell.get(metric))) is not None]


def compare(
    best: str, runner_up: str, best_fid: Sequence[float], runner_up_fid: Sequence[float], *, confidence: float
) -> dict[str, Any]:
    """How far the runner-up's mean FID is above the best's, and whether Welch's t-test separates them."""
    best_mean, runner_mean = float(np.mean(best_fid)), float(np.mean(runner_up_fid))
    difference = runner_mean - best_mean
    enough = len(best_fid) >= 2 and len(runner_up_fid) >= 2
    p_value = welch_test(best_fid, runner_up_fid) if enough else None
    alpha = round(1 - confidence, 12)
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


def summarize(cells: list[dict[str, Any]], *, confidence: float = 0.95) -> dict[str, Any]:
    """Aggregate per-cell results into per-variant statistics, a ranking by mean FID and the best-vs-runner-up test.

    ``cells`` are the metrics dicts of the grid (keys ``variant``, ``seed``, ``status``, ``fid``, ...). Variants keep
    their order of first appearance; the ranking sorts variants with at least one ok cell by mean FID (lower is
    better, ties keep that order). The result is the content of ``reports/metrics.json``.
    """
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        by_variant.setdefault(str(cell["variant"]), []).append(cell)

    variants: dict[str, Any] = {}
    for name, group in by_variant.items():
        entry: dict[str, Any] = {m: describe(_ok_values(group, m), confidence=confidence) for m in SUMMARY_METRICS}
        entry["cells"] = {status: sum(c.get("status") == status for c in group) for status in STATUSES}
        entry["excluded"] = {
            f"{name}-{c['seed']}": {"status": c.get("status"), "reason": c.get("reason") or "no reason recorded"}
            for c in group
            if c.get("status") != "ok"
        }
        variants[name] = entry

    order = list(by_variant)
    ranked = [name for name in order if variants[name][FID]["n"] > 0]
    ranking = sorted(ranked, key=lambda name: (variants[name][FID]["mean"], order.index(name)))
    comparison = None
    if len(ranking) >= 2:
        best, runner_up = ranking[:2]
        comparison = compare(
            best,
            runner_up,
            _ok_values(by_variant[best], FID),
            _ok_values(by_variant[runner_up], FID),
            confidence=confidence,
        )
    ok_cells = [c for c in cells if c.get("status") == "ok"]
    extractors = sorted({str(c["feature_extractor"]) for c in ok_cells if c.get("feature_extractor")})
    return {
        "confidence": confidence,
        "grid": {"variants": order, "seeds": sorted({int(c["seed"]) for c in cells})},
        "feature_extractor": extractors[0] if len(extractors) == 1 else ("mixed" if extractors else None),
        "feature_extractors": extractors,
        "best_variant": ranking[0] if ranking else None,
        "ranking": ranking,
        "comparison": comparison,
        "variants": variants,
    }
