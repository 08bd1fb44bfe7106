"""The newer per-cell metrics in the report: precision/recall, feature spaces, class coverage, FID curves and the
noise floor — with them, without them (not computable), from an older metrics format (rejected) and when the
noise-floor file is missing."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import layout
from pipeline.errors import InputError
from pipeline.reporting import SUMMARY_METRICS, summarize, write_report
from pipeline.reporting.inputs import fid_curve
from pipeline.reporting.summary import class_shares
from tests.test_report import CLASS_NAMES, NEW_KEYS, cell, fabricate, grid_cells, make_params

PNG = b"\x89PNG\r\n\x1a\n"
NOISE_FLOOR = {
    "format_version": 1, "reference": "test", "subset_split": "train", "num_samples": 100, "repeats": 3,
    "disjoint_subsets": True, "data_fingerprint": "abc123",
    "feature_spaces": {
        "domain-classifier": {"fid_mean": 0.8, "fid_std": 0.1, "fid_values": [0.7, 0.8, 0.9]},
        "inception-v3-compat": {"fid_mean": 2.0, "fid_std": 0.2, "fid_values": [1.8, 2.0, 2.2]},
    },
}  # fmt: skip


def write_noise_floor(root: Path, data: Any) -> None:
    path = root / layout.NOISE_FLOOR_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


# --- summary ------------------------------------------------------------------------------------------------------


def test_summary_describes_the_newer_metrics_over_ok_seeds() -> None:
    cells = [cell("a", 0, 10.0), cell("a", 1, 12.0), cell("a", 2, None, status="failed", reason="x")]
    entry = summarize(cells)["variants"]["a"]
    assert entry["precision"]["mean"] == pytest.approx(0.605) and entry["precision"]["n"] == 2
    assert entry["classes_covered"]["mean"] == 4 and entry["num_classes"] == 4
    assert entry["class_kl"]["mean"] == pytest.approx(0.01)
    assert entry["time_to_within_10pct"]["mean"] == pytest.approx(20.5)  # seeds 0 and 1: 20 s and 21 s
    assert entry["steps_to_within_10pct"]["mean"] == 20
    assert entry["possible_mode_collapse"] is False
    assert list(entry["feature_spaces"]) == ["domain-classifier", "inception-v3-compat"]
    inception = entry["feature_spaces"]["inception-v3-compat"]
    assert set(inception) == {"fid", "isc_mean", "kid_mean", "precision", "recall"}
    assert inception["fid"]["mean"] == pytest.approx(33.0) and inception["fid"]["n"] == 2
    assert inception["precision"]["mean"] == pytest.approx(0.405)


def test_cells_without_the_optional_results_still_summarize_with_every_key() -> None:
    bare = [cell("a", 0, 10.0, **dict.fromkeys(NEW_KEYS)), cell("a", 1, 12.0, **dict.fromkeys(NEW_KEYS)),
            cell("b", 0, 20.0, **dict.fromkeys(NEW_KEYS))]  # fmt: skip
    old, new = summarize(bare), summarize([cell("a", 0, 10.0), cell("a", 1, 12.0), cell("b", 0, 20.0)])
    assert set(old) == set(new) and set(old["variants"]["a"]) == set(new["variants"]["a"])
    entry = old["variants"]["a"]
    assert entry["fid"]["mean"] == pytest.approx(11.0)
    for metric in set(SUMMARY_METRICS) - {"fid", "isc_mean", "kid_mean", "train_seconds", "images_per_second"}:
        assert entry[metric] == {"mean": None, "std": None, "n": 0, "ci_low": None, "ci_high": None,
                                 "ci_method": None, "values": []}, metric
    assert entry["feature_spaces"] == {} and entry["num_classes"] is None and entry["possible_mode_collapse"] is None
    assert old["noise_floor"] is None and len(old["pairwise"]) == 1
    json.dumps(old, allow_nan=False)


def test_a_metrics_file_of_an_older_format_is_rejected_naming_the_file_and_field(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    path = tmp_path / "metrics/vae-1.json"
    older = json.loads(path.read_text())
    del older["format_version"], older["ndb"]
    path.write_text(json.dumps({**older, "fid_samples": 100}))  # a renamed field, as an older evaluate stage wrote
    with pytest.raises(InputError) as caught:
        write_report(make_params(), root=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a cell metrics file of format version 1")
    assert "format_version: Field required" in message and "ndb: Field required" in message
    assert "fid_samples: Extra inputs are not permitted" in message
    assert "python -m stages evaluate --variant vae --seed 1" in message
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("overrides", "flagged"),
    [
        ({}, False),
        ({"classes_covered": 1, "class_kl": 1.386, "class_histogram": [100, 0, 0, 0]}, True),  # collapsed onto one
        ({"classes_covered": 3}, True),  # one class missing, KL still small
        ({"class_kl": 0.2}, True),  # every class present but far from the real mix
        ({"class_kl": 0.1}, False),  # the threshold itself is not flagged
        ({"classes_covered": None, "num_classes": None, "class_kl": None}, None),  # no diagnostics: unknown
    ],
)
def test_mode_collapse_flag(overrides: dict[str, Any], flagged: bool | None) -> None:
    summary = summarize([cell("a", 0, 10.0, **overrides), cell("b", 0, 12.0)])
    assert summary["variants"]["a"]["possible_mode_collapse"] is flagged
    assert summary["variants"]["b"]["possible_mode_collapse"] is False


def test_class_shares_average_the_ok_seeds() -> None:
    shares = class_shares([
        cell("a", 0, 10.0, class_histogram=[100, 0, 0, 0]), cell("a", 1, 11.0, class_histogram=[0, 50, 0, 0]),
        cell("a", 2, None, status="diverged", reason="nan", class_histogram=[0, 0, 0, 9]),
        cell("b", 0, 12.0, class_histogram=[1, 2]),  # a different class count: left out
    ])  # fmt: skip
    assert shares is not None and shares.names == CLASS_NAMES and list(shares.generated) == ["a"]
    np.testing.assert_allclose(shares.generated["a"], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(shares.real, [0.25] * 4)
    assert class_shares([cell("a", 0, 10.0, **dict.fromkeys(NEW_KEYS))]) is None


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (None, None),
        ([], None),
        ([{"train_seconds": 1.0, "fid": 3.0}], None),  # no step: not a point
        ([{"step": 20, "train_seconds": 2.0, "fid": None}, {"step": 10, "train_seconds": 1.0, "fid": 9.0},
          "junk", {"step": 30, "fid": 4.0}],
         [[10, 1.0, 9.0], [20, 2.0, np.nan], [30, np.nan, 4.0]]),  # sorted by step; missing values are NaN
    ],
)  # fmt: skip
def test_fid_curve_parsing(points: Any, expected: list[list[float]] | None) -> None:
    curve = fid_curve({"fid_curve": points})
    if expected is None:
        assert curve is None
    else:
        assert curve is not None
        np.testing.assert_array_equal(np.column_stack([curve.steps, curve.seconds, curve.fid]), expected)


# --- write_report -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """A report over cells with every newer key, a collapsed variant and a noise floor."""
    root = tmp_path_factory.mktemp("full")
    collapsed = {"classes_covered": 1, "class_kl": 1.386, "class_histogram": [97, 1, 1, 1]}
    cells = grid_cells() + [cell("hinge", 0, 30.0, **collapsed), cell("hinge", 1, 31.0, **collapsed)]
    cells[2]["fid_curve"][1]["fid"] = None  # vae-0: a snapshot with non-finite images
    fabricate(root, cells)
    write_noise_floor(root, NOISE_FLOOR)
    summary = write_report(make_params(("gan", "vae", "hinge")), root=root)
    return root, summary, (root / "reports/report.md").read_text()


def test_metrics_json_holds_the_new_keys(full: tuple[Path, dict[str, Any], str]) -> None:
    root, summary, _ = full
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert metrics["noise_floor"] == NOISE_FLOOR["feature_spaces"]
    assert [(p["a"], p["b"]) for p in metrics["pairwise"]] == [("gan", "hinge"), ("gan", "vae"), ("hinge", "vae")]
    assert metrics["pairwise"][0]["significant"] is None and "gan has 1 ok seed" in metrics["pairwise"][0]["reason"]
    assert metrics["comparison"]["best"] == "gan" and metrics["comparison"]["runner_up"] == "hinge"
    assert metrics["variants"]["hinge"]["possible_mode_collapse"] is True
    assert set(metrics["variants"]["vae"]["feature_spaces"]) == {"domain-classifier", "inception-v3-compat"}


def test_report_has_the_new_sections_and_figures(full: tuple[Path, dict[str, Any], str]) -> None:
    root, _, md = full
    headings = [line for line in md.splitlines() if line.startswith("#")]
    for heading in ["## Results", "### Cost", "## Is the difference real?", "## Noise floor", "## Other feature spaces",
                    "### Inception-v3", "## Mode coverage", "## FID over training", "## Per-cell results"]:  # fmt: skip
        assert heading in headings, heading
    html = (root / "reports/report.html").read_text()
    for name in ["class-coverage.png", "fid-curves.png"]:
        figure = (root / "reports/figures" / name).read_bytes()
        assert figure[:8] == PNG, name
        # linked from the Markdown, embedded (the same bytes) in the one-file HTML
        assert f"(figures/{name})" in md and f"data:image/png;base64,{base64.b64encode(figure).decode()}" in html
    for header in ["FID (domain classifier), mean \\[95% CI\\]", "Precision (domain classifier)", "Classes covered",
                   "Recall (domain classifier)", "KID (domain classifier)", "IS (domain classifier)", "Class KL (nats)",
                   "FID (Inception-v3)", "Precision (Inception-v3)", "FID 95% CI"]:  # fmt: skip
        assert f"| {header} |" in md, header
    assert "Welch's two-sided t-test" in md and "Holm–Bonferroni" in md and "α = 0.05" in md
    assert "| hinge vs vae | +11.50 | 2 / 2 |" in md
    assert "| vae-1 | vae | 1 | ok | 44.00 | \\[43.00, 45.00\\] |" in md  # per-cell interval over draws
    # vae's FIDs 40 and 44: a t-interval on the logs, exp(mean log ± t(0.975, 1) sd(log) / √2) = [22.90, 76.86]
    assert "| 3 | vae | 42.00 \\[22.90, 76.86\\] |" in md
    assert "| 4.0 / 4 | 0.010 \\[0.010, 0.010\\] | 3.5 \\[0.6, 21.5\\] / 50 | 2/2 |" in md
    assert "| domain classifier | 0.80 ± 0.10 | 3 | gan | 20.00 (n=1) | 25× |" in md
    assert "the best FID (gan) is 25× the noise floor" in md
    assert "| vae | 20 s \\[15 s, 28 s\\] | 20 \\[20, 20\\] | 60 s | 2 |" in md  # time/steps to within 10% of final
    assert "The grid was scored in the features of a domain classifier" in md  # the evaluator check is still there


def test_collapsed_class_histogram_is_flagged(full: tuple[Path, dict[str, Any], str]) -> None:
    md = full[2]
    alert = next(line for line in md.splitlines() if "Possible mode collapse" in line)
    assert alert.startswith("> **⚠ Warning:**")
    assert "hinge (covers 1.0 of 4 classes, class KL 1.39 nats)" in alert
    assert "gan" not in alert and "vae" not in alert


def test_fid_curve_plot_data_per_cell(full: tuple[Path, dict[str, Any], str]) -> None:
    folder = full[0] / "reports/plots/fid_curve"
    # gan-1 diverged but still has its curve; every cell of the grid has one
    assert sorted(p.name for p in folder.iterdir()) == [f"{c}.csv" for c in
                                                        ["gan-0", "gan-1", "hinge-0", "hinge-1", "vae-0", "vae-1"]]
    with open(folder / "vae-0.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["step", "train_seconds", "fid"], ["10", "10.0", "160.0"], ["20", "20.0", "nan"],
                    ["30", "30.0", "40.0"]]  # fmt: skip


def test_cells_without_the_optional_results_give_a_report_that_says_what_is_missing(tmp_path: Path) -> None:
    fabricate(tmp_path, [cell(c["variant"], c["seed"], c["fid"], c["status"], reason=c["reason"],
                              **dict.fromkeys(NEW_KEYS)) for c in grid_cells()])  # fmt: skip
    summary = write_report(make_params(), root=tmp_path)
    md = (tmp_path / "reports/report.md").read_text()
    assert summary["noise_floor"] is None and summary["variants"]["vae"]["feature_spaces"] == {}
    assert ("No precision and recall, FID interval over noise draws, class-coverage diagnostics, FID curve or "
            "per-feature-space results in the metrics of gan-0, vae-0, vae-1") in md  # fmt: skip
    assert "No ok cell has class-coverage diagnostics" in md and "No cell has an FID curve" in md
    assert "## Other feature spaces" not in md
    assert "No noise floor: `metrics/noise-floor.json` is missing" in md
    for name in ["class-coverage.png", "fid-curves.png"]:  # placeholders keep DVC's outputs stable
        assert (tmp_path / "reports/figures" / name).read_bytes()[:8] == PNG
    assert not (tmp_path / "reports/plots/fid_curve").exists()


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "noise-floor file unreadable"),
    ({**NOISE_FLOOR, "feature_spaces": {"domain-classifier": {"fid_mean": None}}},
     "feature_spaces.domain-classifier.fid_mean: Input should be a valid number"),
    ([], "not a noise-floor file of format version 1"),
])  # fmt: skip
def test_an_unreadable_noise_floor_is_bad_input_naming_the_file(tmp_path: Path, content: Any, problem: str) -> None:
    fabricate(tmp_path, grid_cells())
    write_noise_floor(tmp_path, content)
    with pytest.raises(InputError, match="noise-floor") as caught:
        write_report(make_params(), root=tmp_path)
    assert str(caught.value).startswith(str(tmp_path / layout.NOISE_FLOOR_PATH)) and problem in str(caught.value)
    assert not (tmp_path / "reports").exists()


def test_a_noise_floor_without_a_finite_space_counts_as_missing(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    write_noise_floor(tmp_path, {**NOISE_FLOOR, "feature_spaces": {"domain-classifier": {
        "fid_mean": float("nan"), "fid_std": None, "fid_values": [float("nan")]}}})
    assert write_report(make_params(), root=tmp_path)["noise_floor"] is None
    assert "No noise floor" in (tmp_path / "reports/report.md").read_text()


def test_noise_floor_from_a_different_sample_size_is_flagged(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    write_noise_floor(tmp_path, {**NOISE_FLOOR, "num_samples": 10000})
    write_report(make_params(), root=tmp_path)
    md = (tmp_path / "reports/report.md").read_text()
    assert "The noise floor uses 10,000 images, the cells 100" in md


def test_stale_fid_curve_files_are_removed(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells() + [cell("hinge", 0, 30.0), cell("hinge", 1, 31.0)])
    write_report(make_params(("gan", "vae", "hinge")), root=tmp_path)
    assert (tmp_path / "reports/plots/fid_curve/hinge-1.csv").exists()
    write_report(make_params(("gan", "vae"), seeds=(0,)), root=tmp_path)
    assert sorted(p.name for p in (tmp_path / "reports/plots/fid_curve").iterdir()) == ["gan-0.csv", "vae-0.csv"]
