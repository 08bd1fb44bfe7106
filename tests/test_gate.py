"""The retraining quality gate on ``dvc metrics diff`` output: statuses, tolerance, the Markdown summary."""

from __future__ import annotations

import pytest

from pipeline.gate import fid_changes, summary_markdown

FILE = "reports/metrics.json"


def diff(**fids: tuple[float | None, float | None]) -> dict:
    entries = {f"variants.{name}.fid.mean": {"old": old, "new": new} for name, (old, new) in fids.items()}
    entries["variants.vae.isc_mean.mean"] = {"old": 4.0, "new": 1.0}  # other metrics are not gated
    return {FILE: entries}


def test_statuses_against_a_ten_percent_tolerance() -> None:
    changes = fid_changes(diff(dcgan=(50.0, 54.9), lsgan=(80.0, 90.0), vae=(100.0, 80.0), new=(None, 70.0),
                               boom=(60.0, None), dropped=(70.0, None)),
                          metrics_file=FILE, tolerance=0.1, grid=["dcgan", "lsgan", "vae", "new", "boom"])
    status = {c.variant: c.status for c in changes}
    assert status == {"dcgan": "unchanged", "lsgan": "regressed", "vae": "improved", "new": "new", "boom": "lost",
                      "dropped": "removed"}
    assert sorted(c.variant for c in changes if c.fails) == ["boom", "lsgan"]
    assert next(c for c in changes if c.variant == "lsgan").relative == pytest.approx(0.125)


def test_zero_tolerance_fails_any_rise_and_equal_values_pass() -> None:
    changes = fid_changes(diff(a=(50.0, 50.0), b=(50.0, 50.0001)), metrics_file=FILE, tolerance=0.0, grid=["a", "b"])
    assert [c.fails for c in changes] == [False, True]


def test_summary_lists_verdict_table_and_regressions() -> None:
    changes = fid_changes(diff(dcgan=(50.0, 51.0), lsgan=(80.0, 100.0), boom=(60.0, None)), metrics_file=FILE,
                          tolerance=0.1, grid=["dcgan", "lsgan", "boom"])
    text = summary_markdown(changes, rev="HEAD", tolerance=0.1, best_before="dcgan", best_after="dcgan")
    assert "**Quality gate failed**: 2 variants got worse than the 10% FID tolerance." in text
    assert "| lsgan | 80.00 | 100.00 | +20.00 (+25.0%) | **regressed** |" in text
    assert "| dcgan | 50.00 | 51.00 | +1.00 (+2.0%) | unchanged |" in text
    assert "- boom: FID 60.00 → no ok cell" in text and "Best variant: **dcgan** (was dcgan at `HEAD`)" in text
    passed = summary_markdown(changes[1:2], rev="HEAD", tolerance=0.1, best_before=None, best_after="dcgan")
    assert "**Quality gate passed**" in passed and "Regressions" not in passed


def test_a_diff_without_the_metrics_file_is_an_error() -> None:
    with pytest.raises(ValueError, match="no entry for reports/metrics.json"):
        fid_changes({}, metrics_file=FILE, tolerance=0.1, grid=[])
