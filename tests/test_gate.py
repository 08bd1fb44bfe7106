"""The retraining gate's logic: a rise fails only beyond the seed noise of both runs and the tolerance; lost,
removed, new and untested variants; the summary text."""

from __future__ import annotations

from typing import Any

import pytest
from scipy import stats

from pipeline.gate import FidChange, fid_changes, one_sided_p, summary_markdown


def summary(**variants: list[float]) -> dict[str, Any]:
    """A reports/metrics.json holding each variant's per-seed FIDs (an empty list: no ok cell)."""
    return {"variants": {name: {"fid": {"values": values, "mean": sum(values) / len(values) if values else None}}
                         for name, values in variants.items()}}


def test_seed_noise_of_35_percent_is_not_a_regression() -> None:
    # lsgan's seeds scored 75.5 and 102.2; a re-run on another core count gives other seeds' worth of noise
    change = FidChange("lsgan", before=[75.5, 102.2, 80.1], after=[101.0, 84.0, 99.5], tolerance=0.1)
    assert change.relative > 0.1 and change.p_worse > 0.05 and change.status == "unchanged" and not change.fails


def test_a_rise_beyond_the_noise_and_the_tolerance_fails() -> None:
    before, after = [45.0, 54.0, 49.0], [120.0, 131.0, 118.0]  # the learning rate x50
    change = FidChange("wgan-gp", before=before, after=after, tolerance=0.1)
    expected = stats.ttest_ind(after, before, equal_var=False, alternative="greater").pvalue
    assert change.p_worse == pytest.approx(expected) and expected < 0.01
    assert change.status == "regressed" and change.fails


def test_a_significant_but_small_rise_stays_within_the_tolerance() -> None:
    change = FidChange("dcgan", before=[50.0, 50.1, 49.9], after=[52.0, 52.1, 51.9], tolerance=0.1)
    assert change.p_worse < 0.001 and change.status == "unchanged"  # +4%: real, but smaller than worth failing for


def test_bit_identical_reruns_and_exact_shifts() -> None:
    assert one_sided_p([50.0, 52.0], [50.0, 52.0]) == pytest.approx(0.5)
    assert one_sided_p([50.0, 50.0], [60.0, 60.0]) == 0.0 and one_sided_p([60.0, 60.0], [50.0, 50.0]) == 1.0
    assert one_sided_p([50.0], [60.0, 61.0]) is None


def test_lost_removed_new_improved_and_untested() -> None:
    changes = {c.variant: c for c in fid_changes(
        summary(boom=[60.0, 61.0], gone=[70.0], one=[50.0], better=[80.0, 82.0, 81.0]),
        summary(boom=[], fresh=[40.0], one=[60.0], better=[60.0, 61.0, 59.0]),
        tolerance=0.1, alpha=0.05, grid=["boom", "fresh", "one", "better"])}
    assert changes["boom"].status == "lost" and changes["boom"].fails
    assert changes["gone"].status == "removed" and not changes["gone"].fails
    assert changes["fresh"].status == "new" and not changes["fresh"].fails
    assert changes["one"].status == "regressed" and not changes["one"].tested  # one seed: the tolerance decides
    assert changes["better"].status == "improved"


def test_a_baseline_without_per_seed_values_falls_back_to_its_mean() -> None:
    old = {"variants": {"vae": {"fid": {"mean": 100.0, "std": 3.0, "n": 2}}}}
    [change] = fid_changes(old, summary(vae=[104.0, 106.0]), tolerance=0.1, alpha=0.05, grid=["vae"])
    assert change.before == [100.0] and not change.tested and change.status == "unchanged"


def test_summary_names_the_regressions_and_the_rule() -> None:
    changes = fid_changes(summary(dcgan=[50.0, 52.0, 51.0], lsgan=[80.0, 81.0, 79.0], one=[30.0]),
                          summary(dcgan=[51.0, 50.0, 52.0], lsgan=[120.0, 125.0, 118.0], one=[31.0]),
                          tolerance=0.1, alpha=0.05, grid=["dcgan", "lsgan", "one"])
    text = summary_markdown(changes, rev="HEAD", tolerance=0.1, alpha=0.05, best_before="dcgan", best_after="dcgan")
    assert "**Quality gate failed**: 1 variant regressed" in text and "one-sided Welch test over seeds" in text
    assert "| lsgan | 80.00 (3) | 121.00 (3) | +41.00 (+51.2%) |" in text and "**regressed**" in text
    assert "- lsgan: FID 80.00 → 121.00 (+51.2%, p = " in text
    assert "Untested (a single seed on a side" in text and ": one." in text
    passed = summary_markdown(changes[:1], rev="HEAD", tolerance=0.1, alpha=0.05, best_before=None, best_after="dcgan")
    assert "**Quality gate passed**" in passed and "was none at `HEAD`" in passed
