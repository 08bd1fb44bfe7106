"""``summarize``: the grid's cells aggregated per variant, ranked and compared — the content of reports/metrics.json.

Only cells with status ``ok`` enter the statistics; diverged and failed cells are counted and listed with their
reasons. A metric may be null in a cell (not applicable, or not computed with its settings): it then does not enter
its variant's statistics, whose ``n`` says how many seeds did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.reporting.stats import PAIRWISE_METHOD, STATUSES, compare, describe, finite, pairwise

SUMMARY_METRICS = (
    "fid", "isc_mean", "kid_mean", "precision", "recall", "classes_covered", "class_kl", "ndb", "ndb_share", "ndb_js",
    "time_to_within_10pct", "steps_to_within_10pct", "train_seconds", "images_per_second",
)  # fmt: skip
SPACE_METRICS = ("fid", "isc_mean", "kid_mean", "precision", "recall")
SIGNED = frozenset({"kid_mean"})  # the unbiased KID estimate can be negative; every other metric cannot
SHARES = frozenset({"precision", "recall", "ndb_share"})  # bounded by 1 as well
FID = "fid"
KL_THRESHOLD = 0.1  # nats of KL(p_generated ‖ p_real) above which a variant is flagged as possibly mode-collapsed


def ok_values(cells: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    """The finite values of ``metric`` in the ok cells, in order."""
    return [v for cell in cells if cell.get("status") == "ok" and (v := finite(cell.get(metric))) is not None]


def spaces_of(cell: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The cell's ``feature_spaces`` entries that are objects (empty when it has none, as a diverged cell)."""
    spaces = cell.get("feature_spaces")
    return {str(k): v for k, v in spaces.items() if isinstance(v, Mapping)} if isinstance(spaces, Mapping) else {}


def _feature_spaces(group: Sequence[Mapping[str, Any]], *, confidence: float) -> dict[str, Any]:
    ok = [cell for cell in group if cell.get("status") == "ok"]
    names = list(dict.fromkeys(name for cell in ok for name in spaces_of(cell)))

    def values(name: str, metric: str) -> list[float]:
        return [v for c in ok if (v := finite(spaces_of(c).get(name, {}).get(metric))) is not None]

    return {name: {m: _describe(values(name, m), m, confidence) for m in SPACE_METRICS} for name in names}


def _describe(values: list[float], metric: str, confidence: float) -> dict[str, Any]:
    """:func:`describe` with the metric's range: KID's estimates may be negative (its interval is clamped at 0),
    shares stay in [0, 1], the rest is positive."""
    signed = metric in SIGNED
    return describe(values, confidence=confidence, nonnegative=not signed, estimates_nonnegative=signed,
                    share=metric in SHARES)


def _mode_collapse(entry: Mapping[str, Any]) -> bool | None:
    """Fewer classes covered than exist, or mean class KL above the threshold; None without the diagnostics."""
    covered, kl, classes = entry["classes_covered"]["mean"], entry["class_kl"]["mean"], entry["num_classes"]
    if (covered is None or classes is None) and kl is None:
        return None
    return bool((covered is not None and classes is not None and covered < classes) or (kl or 0.0) > KL_THRESHOLD)


def _variant(name: str, group: Sequence[Mapping[str, Any]], *, confidence: float) -> dict[str, Any]:
    entry: dict[str, Any] = {m: _describe(ok_values(group, m), m, confidence) for m in SUMMARY_METRICS}
    entry["seeds"] = [int(c["seed"]) for c in group if c.get("status") == "ok" and finite(c.get(FID)) is not None]
    entry["cells"] = {status: sum(c.get("status") == status for c in group) for status in STATUSES}
    entry["excluded"] = {
        f"{name}-{c['seed']}": {"status": c.get("status"), "reason": c.get("reason") or "no reason recorded"}
        for c in group
        if c.get("status") != "ok"
    }
    classes = ok_values(group, "num_classes")
    entry["num_classes"] = int(max(classes)) if classes else None
    bins = ok_values(group, "ndb_bins")
    entry["ndb_bins"] = int(max(bins)) if bins else None
    entry["possible_mode_collapse"] = _mode_collapse(entry)
    entry["feature_spaces"] = _feature_spaces(group, confidence=confidence)
    entry["not_applicable"] = not_applicable(group)
    return entry


def not_applicable(cells: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Metric -> why it does not apply, for the null metrics of the ok cells that carry a ``<metric>_reason``."""
    return {metric: str(cell[f"{metric}_reason"]) for cell in cells if cell.get("status") == "ok"
            for metric in SUMMARY_METRICS if cell.get(metric) is None and cell.get(f"{metric}_reason")}


def summarize(
    cells: list[dict[str, Any]], *, confidence: float = 0.95, noise_floor: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Aggregate per-cell results into per-variant statistics, a ranking by mean FID and significance tests.

    ``cells`` are the metrics dicts of the grid (keys ``variant``, ``seed``, ``status``, ``fid``, ...). Variants keep
    their order of first appearance; the ranking sorts variants with at least one ok cell by mean FID (lower is
    better, ties keep that order). ``comparison`` tests the best against the runner-up, ``pairwise`` every pair of
    ranked variants (Holm-adjusted). ``noise_floor`` (the real-vs-real FID per feature space) is passed through.
    """
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        by_variant.setdefault(str(cell["variant"]), []).append(cell)
    variants = {name: _variant(name, group, confidence=confidence) for name, group in by_variant.items()}

    order = list(by_variant)
    ranked = [name for name in order if variants[name][FID]["n"] > 0]
    ranking = sorted(ranked, key=lambda name: (variants[name][FID]["mean"], order.index(name)))
    fid = {name: ok_values(by_variant[name], FID) for name in ranking}
    comparison = None
    if len(ranking) >= 2:
        best, runner_up = ranking[:2]
        comparison = compare(best, runner_up, fid[best], fid[runner_up], confidence=confidence)
    pairs = pairwise(ranking, fid, confidence=confidence)
    if comparison is not None:
        comparison.update(corrected(comparison, pairs))
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
        "pairwise": pairs,
        "pairwise_method": PAIRWISE_METHOD,
        "noise_floor": dict(noise_floor) if noise_floor is not None else None,
        "variants": variants,
    }


def corrected(comparison: Mapping[str, Any], pairs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The best-vs-runner-up test after Holm's correction over every tested pair: its adjusted p-value, the number
    of pairs corrected over, and significance judged on the adjusted p-value."""
    (entry,) = [e for e in pairs if (e["a"], e["b"]) == (comparison["best"], comparison["runner_up"])]
    tested = sum(e["p_value"] is not None for e in pairs)
    return {"p_adjusted": entry["p_adjusted"], "corrected_over": tested, "significant": entry["significant"]}


def display_order(summary: Mapping[str, Any]) -> list[str]:
    """Ranked variants best first, then those without an ok cell in grid order."""
    ranking = list(summary["ranking"])
    return [*ranking, *(v for v in summary["variants"] if v not in ranking)]


def against_best(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The pairwise test of the best variant against each other ranked variant, by that variant's name (the best is
    always a pair's ``a``: pairs are formed in ranking order)."""
    best = summary["best_variant"]
    return {entry["b"]: entry for entry in summary["pairwise"] if entry["a"] == best}


@dataclass(frozen=True)
class ClassShares:
    """Predicted-class shares of the generated samples per variant (mean over ok seeds) and of the real data."""

    names: list[str]  # (K,)
    real: np.ndarray | None  # (K,), None when no cell recorded it
    generated: dict[str, np.ndarray]  # variant -> (K,)


def _histogram(cell: Mapping[str, Any]) -> np.ndarray | None:
    counts = cell.get("class_histogram")
    if not isinstance(counts, list) or not counts or any(finite(c) is None or c < 0 for c in counts):
        return None
    array = np.asarray(counts, dtype=float)
    return array / array.sum() if array.sum() > 0 else None


def class_shares(cells: Sequence[Mapping[str, Any]]) -> ClassShares | None:
    """Mean generated class share per variant over its ok cells; None when no ok cell has a class histogram.

    Cells whose histogram length differs from the first one's (a different class count) are left out.
    """
    ok = [(cell, share) for cell in cells if cell.get("status") == "ok" and (share := _histogram(cell)) is not None]
    if not ok:
        return None
    k = len(ok[0][1])
    per_variant: dict[str, list[np.ndarray]] = {}
    for cell, share in ok:
        if len(share) == k:
            per_variant.setdefault(str(cell["variant"]), []).append(share)
    names = next((c["class_names"] for c, _ in ok if _is_names(c.get("class_names"), k)), [str(i) for i in range(k)])
    real = next((np.asarray(s, float) for c, _ in ok if _is_shares(s := c.get("real_class_share"), k)), None)
    return ClassShares(list(map(str, names)), real, {v: np.mean(s, axis=0) for v, s in per_variant.items()})


def _is_names(value: Any, k: int) -> bool:
    return isinstance(value, list) and len(value) == k and all(isinstance(n, str) for n in value)


def _is_shares(value: Any, k: int) -> bool:
    return isinstance(value, list) and len(value) == k and all(finite(s) is not None for s in value)


def not_applicable_reasons(summary: Mapping[str, Any]) -> dict[str, str]:
    """Metric -> reason, over every variant: the metrics the report shows as n/a."""
    return {m: r for entry in summary["variants"].values() for m, r in entry.get("not_applicable", {}).items()}
