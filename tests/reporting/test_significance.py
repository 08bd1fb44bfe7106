"""Pairwise significance: Holm's correction against hand-computed values and Welch's test between every pair."""

from __future__ import annotations

import pytest
from scipy import stats

from pipeline.reporting import holm, summarize
from pipeline.reporting.stats import pairwise
from tests.test_report import cell


@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        # m = 4: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.04, 0.01], [0.04, 0.02]),  # 0.01·2 = 0.02; 0.04·1 = 0.04
        ([0.02, 0.02], [0.04, 0.04]),  # ties: the second keeps the running max
        ([0.5, 0.6], [1.0, 1.0]),  # 0.5·2 caps at 1, and the larger p cannot come out smaller
        ([0.01, None, 0.04], [0.02, None, 0.04]),  # undefined tests do not count towards m = 2
        ([0.03], [0.03]),
        ([None], [None]),
        ([], []),
    ],
)
def test_holm_matches_hand_computed_values(p_values: list[float | None], expected: list[float | None]) -> None:
    assert holm(p_values) == pytest.approx(expected)


def test_pairwise_tests_every_ranked_pair_and_adjusts_with_holm() -> None:
    fids = {"b": [12.5, 13.0, 14.0], "a": [10.0, 11.0, 12.0], "c": [13.0, 14.0, 15.0]}
    cells = [cell(name, seed, fid) for name, values in fids.items() for seed, fid in enumerate(values)]
    summary = summarize(cells)
    pairs = summary["pairwise"]
    assert [(p["a"], p["b"]) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]  # ranking order, best first
    raw = [stats.ttest_ind(fids[p["a"]], fids[p["b"]], equal_var=False).pvalue for p in pairs]
    assert [p["p_value"] for p in pairs] == pytest.approx(raw)
    # raw ≈ 0.0442, 0.0213, 0.319: Holm multiplies the smallest by 3, the next by 2, the largest by 1
    assert [p["p_adjusted"] for p in pairs] == pytest.approx([2 * raw[0], 3 * raw[1], raw[2]])
    assert raw[1] < 0.05 and [p["significant"] for p in pairs] == [False, False, False]  # corrected away
    assert all(p["test"] == "welch_t" and p["reason"] is None and p["alpha"] == 0.05 for p in pairs)
    assert [(p["n_a"], p["n_b"]) for p in pairs] == [(3, 3)] * 3
    assert [p["mean_difference"] for p in pairs] == pytest.approx([2.167, 3.0, 0.833], abs=1e-3)
    assert summary["pairwise_method"].startswith("Welch's two-sided t-test")
    assert summary["comparison"]["best"] == "a" and summary["comparison"]["runner_up"] == "b"  # kept as it was


def test_significant_after_correction() -> None:
    fids = {"a": [10.0, 11.0, 12.0], "b": [14.0, 16.0, 15.5], "c": [30.0, 31.0, 29.0]}
    cells = [cell(name, seed, fid) for name, values in fids.items() for seed, fid in enumerate(values)]
    pairs = summarize(cells, confidence=0.99)["pairwise"]
    assert all(p["alpha"] == 0.01 and p["p_adjusted"] < 0.01 and p["significant"] is True for p in pairs)


@pytest.mark.parametrize(
    ("fid_a", "fid_b", "reason"),
    [
        ([10.0], [12.0, 13.0], "a has 1 ok seed; the test needs at least 2 per variant"),
        ([10.0], [12.0], "a has 1 ok seed; b has 1 ok seed; the test needs at least 2 per variant"),
        ([10.0, 10.0], [10.0, 10.0], "no spread across seeds, so the t statistic is undefined"),
    ],
)
def test_undefined_tests_are_null_with_a_reason(fid_a: list[float], fid_b: list[float], reason: str) -> None:
    (pair,) = pairwise(["a", "b"], {"a": fid_a, "b": fid_b}, confidence=0.95)
    assert pair["p_value"] is None and pair["p_adjusted"] is None and pair["significant"] is None
    assert pair["reason"] == reason
    assert pair["test"] == ("welch_t" if min(len(fid_a), len(fid_b)) >= 2 else None)


def test_undefined_tests_do_not_inflate_the_holm_factor() -> None:
    cells = [cell("a", 0, 10.0), cell("a", 1, 11.0), cell("b", 0, 20.0), cell("b", 1, 21.5), cell("c", 0, 40.0)]
    pairs = {(p["a"], p["b"]): p for p in summarize(cells)["pairwise"]}
    assert pairs[("a", "b")]["p_adjusted"] == pytest.approx(pairs[("a", "b")]["p_value"])  # the only defined test
    assert pairs[("a", "c")]["significant"] is None and pairs[("b", "c")]["significant"] is None


def test_fewer_than_two_ranked_variants_have_no_pairs() -> None:
    summary = summarize([cell("a", 0, 10.0), cell("b", 0, None, status="failed", reason="boom")])
    assert summary["pairwise"] == []
