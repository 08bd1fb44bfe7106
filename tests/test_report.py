"""The report: statistics against hand-computed values, ranking and Welch's test, and the files write_report makes."""

from __future__ import annotations

import base64
import csv
import json
import re
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imsave
from scipy import stats

from pipeline import layout
from pipeline.config import Params, parse_params
from pipeline.errors import InputError
from pipeline.layout import Cell
from pipeline.records import CellMetrics
from pipeline.reporting import describe, headline_text, sections, summarize, welch_test, write_report
from pipeline.reporting.document import (
    Alert,
    Details,
    Gallery,
    Heading,
    Image,
    Paragraph,
    Span,
    Table,
    render_html,
    render_markdown,
)  # fmt: skip
from pipeline.reporting.figures import moving_average

T_975_2 = 4.302652729911275  # scipy.stats.t.ppf(0.975, 2), i.e. Student's t table, 2 degrees of freedom


CLASS_NAMES = ["zero", "one", "two", "three"]
NEW_KEYS = (  # results a cell may lack (one noise draw, no snapshots, no classes): null in its metrics
    "precision", "recall", "f_score", "fid_ci_low", "fid_ci_high", "fid_draws_std", "fid_ci_confidence",
    "fid_ci_method", "num_classes", "classes_covered", "class_kl", "class_histogram", "real_class_share", "class_names",
    "feature_spaces", "fid_curve", "curve_feature_extractor", "curve_num_samples", "time_to_within_10pct",
    "steps_to_within_10pct", "ndb", "ndb_share", "ndb_js", "ndb_bins", "ndb_alpha",
)  # fmt: skip


def newer_keys(seed: int, fid: float | None, status: str) -> dict[str, Any]:
    """The newer keys: four balanced classes all covered, two feature spaces, a three-point FID curve."""
    curve = [{"step": s, "train_seconds": s + seed, "fid": None if fid is None else fid * k}
             for s, k in ((10, 4.0), (20, 1.05), (30, 1.0))]  # fmt: skip
    base = {"curve_feature_extractor": "domain-classifier", "curve_num_samples": 50, "fid_curve": curve}
    if status != "ok" or fid is None:
        return {**dict.fromkeys(NEW_KEYS), **base, "fid_curve": curve if status == "diverged" else None}
    spaces = {
        "domain-classifier": {"fid": fid, "isc_mean": 3.0 + seed, "isc_std": 0.1, "kid_mean": 0.01, "kid_std": 0.001,
                              "precision": 0.6, "recall": 0.5, "f_score": 0.55, "fid_ci_low": fid - 1,
                              "fid_ci_high": fid + 1},
        "inception-v3-compat": {"fid": 3 * fid, "isc_mean": 2.0, "isc_std": 0.1, "kid_mean": 0.05, "kid_std": 0.01,
                                "precision": 0.4 + 0.01 * seed, "recall": 0.3, "f_score": 0.35,
                                "fid_ci_low": 3 * fid - 2, "fid_ci_high": 3 * fid + 2},
    }  # fmt: skip
    return {
        **base, "precision": 0.6 + 0.01 * seed, "recall": 0.5, "f_score": 0.55, "fid_ci_low": fid - 1,
        "fid_ci_high": fid + 1, "fid_draws_std": 0.5, "fid_ci_confidence": 0.95,
        "fid_ci_method": "t-interval over 4 independent noise draws of 10000 samples", "num_classes": 4,
        "classes_covered": 4, "class_kl": 0.01, "class_histogram": [25, 25, 26, 24],
        "real_class_share": [0.25] * 4, "class_names": CLASS_NAMES, "feature_spaces": spaces,
        "time_to_within_10pct": 20.0 + seed, "steps_to_within_10pct": 20,
        "ndb": 3 + seed, "ndb_share": (3 + seed) / 50, "ndb_js": 0.002, "ndb_bins": 50, "ndb_alpha": 0.05,
    }  # fmt: skip


def cell(variant: str, seed: int, fid: float | None, status: str = "ok", **extra: Any) -> dict[str, Any]:
    """A metrics dict as the evaluate stage writes it: every :class:`CellMetrics` field, validated."""
    values = {
        "variant": variant, "seed": seed, "status": status, "fid": fid,
        "isc_mean": 3.0 + seed, "isc_std": 0.1, "kid_mean": 0.01 * (seed + 1), "kid_std": 0.001,
        "feature_extractor": "domain-classifier", "num_samples": 100, "train_seconds": 60.0 + seed,
        "images_per_second": 1000.0, "mlflow_run_id": f"run-{variant}-{seed}", "num_parameters": 12345, "steps": 10,
        **newer_keys(seed, fid, status), **extra,
    }  # fmt: skip
    unset = dict.fromkeys(name for name in CellMetrics.model_fields if name != "format_version")
    return CellMetrics.model_validate({**unset, **values}).model_dump()


# --- statistics -------------------------------------------------------------------------------------------------


def test_describe_matches_hand_computed_t_interval() -> None:
    result = describe([1.0, 2.0, 3.0], nonnegative=False)
    half = T_975_2 * 1.0 / math.sqrt(3)  # = 2.4841
    assert result["n"] == 3 and result["ci_method"] == "t" and result["values"] == [1.0, 2.0, 3.0]
    assert result["mean"] == pytest.approx(2.0)
    assert result["std"] == pytest.approx(1.0)  # ddof=1
    assert half == pytest.approx(2.4841, abs=1e-4)
    assert result["ci_low"] == pytest.approx(2.0 - half)
    assert result["ci_high"] == pytest.approx(2.0 + half)


def test_a_positive_metric_gets_a_t_interval_on_its_logs() -> None:
    result = describe([1.0, 2.0, 3.0])
    logs = np.log([1.0, 2.0, 3.0])
    half = T_975_2 * logs.std(ddof=1) / math.sqrt(3)
    assert result["ci_method"] == "log-t" and result["mean"] == pytest.approx(2.0)
    assert result["ci_low"] == pytest.approx(math.exp(logs.mean() - half))  # 0.457, where the t-interval says -0.48
    assert result["ci_high"] == pytest.approx(math.exp(logs.mean() + half))


def test_two_seeds_never_give_a_negative_bound() -> None:
    lsgan = describe([75.5, 102.2])  # the README's lsgan: the t-interval was 88.8 ± 169.6
    assert 0 < lsgan["ci_low"] < 75.5 and lsgan["ci_high"] > 102.2
    recall = describe([0.0, 0.02])  # a zero rules out logs: percentile bootstrap of the mean, inside the seeds' range
    assert recall["ci_method"] == "bootstrap" and 0.0 <= recall["ci_low"] <= recall["ci_high"] <= 0.02
    kid = describe([-0.001, 0.004], nonnegative=False)  # an unbiased estimate may be negative: the plain t-interval
    assert kid["ci_method"] == "t" and kid["ci_low"] < -0.001
    kid = describe([-0.001, 0.004], nonnegative=False, estimates_nonnegative=True)  # ... of a distance: not below 0
    assert kid["ci_method"] == "t-clamped" and kid["ci_low"] == 0.0 < kid["ci_high"] and kid["mean"] == 0.0015


def test_describe_uses_the_requested_confidence() -> None:
    result = describe([1.0, 2.0, 3.0], confidence=0.90, nonnegative=False)
    assert result["ci_high"] - result["mean"] == pytest.approx(2.919985580355516 / math.sqrt(3))


def test_describe_single_seed_has_null_std_and_interval() -> None:
    empty = {"std": None, "ci_low": None, "ci_high": None, "ci_method": None}
    assert describe([5.0]) == {"mean": 5.0, "n": 1, "values": [5.0], **empty}
    assert describe([]) == {"mean": None, "n": 0, "values": [], **empty}


def test_summarize_excludes_diverged_and_failed_cells_and_lists_reasons() -> None:
    cells = [
        cell("gan", 0, 10.0),
        cell("gan", 1, float("nan"), status="diverged", reason="loss_d is NaN at step 40"),
        cell("gan", 2, None, status="failed", reason="CUDA out of memory"),
        cell("gan", 3, 14.0),
    ]
    entry = summarize(cells)["variants"]["gan"]
    assert entry["fid"]["n"] == 2
    assert entry["fid"]["mean"] == pytest.approx(12.0)
    assert entry["fid"]["std"] == pytest.approx(math.sqrt(8.0))
    assert entry["train_seconds"]["mean"] == pytest.approx((60.0 + 63.0) / 2)  # seeds 0 and 3 only
    assert entry["cells"] == {"ok": 2, "diverged": 1, "failed": 1}
    assert entry["excluded"] == {
        "gan-1": {"status": "diverged", "reason": "loss_d is NaN at step 40"},
        "gan-2": {"status": "failed", "reason": "CUDA out of memory"},
    }


def test_summarize_ranks_by_mean_fid_and_names_the_best() -> None:
    cells = [
        cell("slow", 0, 30.0), cell("slow", 1, 32.0),
        cell("best", 0, 10.0), cell("best", 1, 12.0),
        cell("mid", 0, 20.0), cell("mid", 1, 21.0),
        cell("broken", 0, None, status="failed", reason="x"), cell("broken", 1, None, status="failed", reason="y"),
    ]  # fmt: skip
    summary = summarize(cells)
    assert summary["ranking"] == ["best", "mid", "slow"]  # 'broken' has no ok cell: unranked
    assert summary["best_variant"] == "best"
    assert summary["grid"] == {"variants": ["slow", "best", "mid", "broken"], "seeds": [0, 1]}
    assert summary["variants"]["broken"]["fid"]["mean"] is None
    json.dumps(summary, allow_nan=False)  # valid JSON: undefined values are null, never NaN


def test_welch_test_compares_best_with_runner_up() -> None:
    a, b = [10.0, 11.0, 12.0], [14.0, 16.0, 15.5]
    summary = summarize([cell("a", i, v) for i, v in enumerate(a)] + [cell("b", i, v) for i, v in enumerate(b)])
    comparison = summary["comparison"]
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert comparison["test"] == "welch_t"
    assert comparison["p_value"] == pytest.approx(expected)
    assert expected < 0.05 and comparison["significant"] is True
    assert comparison["difference"] == pytest.approx(np.mean(b) - np.mean(a))
    assert comparison["relative_difference"] == pytest.approx((np.mean(b) - np.mean(a)) / np.mean(a))
    text = headline_text(summary)
    logs = np.log(a)
    half = T_975_2 * logs.std(ddof=1) / math.sqrt(3)
    low, high = math.exp(logs.mean() - half), math.exp(logs.mean() + half)
    assert text.startswith(f"a has the lowest FID (domain classifier): 11.00 [{low:.2f}, {high:.2f}] (95% CI over 3 "
                           "seeds; wide because n is small).")
    assert "runner-up, b, is 4.17 higher (+37.9%)" in text
    assert f"Welch's t-test, p = {expected:.3g}" in text


def test_headline_judges_every_comparison_of_the_best_after_holm() -> None:
    fids = {"a": [10.0, 11.0, 12.0], "b": [14.0, 16.0, 15.5], "c": [30.0, 31.0, 29.5]}
    summary = summarize([cell(name, i, v) for name, values in fids.items() for i, v in enumerate(values)])
    raw = {b: stats.ttest_ind(fids["a"], fids[b], equal_var=False).pvalue for b in ("b", "c")}
    raw_bc = stats.ttest_ind(fids["b"], fids["c"], equal_var=False).pvalue
    ordered = sorted([raw["b"], raw["c"], raw_bc])
    holm = {p: max(min(1.0, (3 - i) * q) for i, q in enumerate(ordered[: ordered.index(p) + 1])) for p in ordered}
    comparison = summary["comparison"]
    assert comparison["p_adjusted"] == pytest.approx(holm[raw["b"]]) and comparison["corrected_over"] == 3
    assert comparison["significant"] is bool(holm[raw["b"]] < 0.05)
    text = headline_text(summary)
    assert f"p = {raw['b']:.3g}; {holm[raw['b']]:.3g} after Holm's correction over 3 pairs" in text
    assert (f"Against the others: c is {np.mean(fids['c']) - np.mean(fids['a']):.2f} higher (adjusted p = "
            f"{holm[raw['c']]:.3g}, significant)") in text


def test_not_significant_difference_says_so() -> None:
    summary = summarize([cell("a", 0, 10.0), cell("a", 1, 14.0), cell("b", 0, 11.0), cell("b", 1, 15.0)])
    assert summary["comparison"]["significant"] is False
    assert "not significant at the 5% level" in headline_text(summary)


def test_single_seed_is_not_enough_for_a_test() -> None:
    summary = summarize([cell("a", 0, 10.0), cell("b", 0, 12.0), cell("b", 1, 13.0)])
    assert summary["comparison"]["p_value"] is None
    assert summary["comparison"]["test"] is None
    assert "Not enough seeds" in headline_text(summary)
    assert welch_test([1.0], [2.0, 3.0]) is None


def test_headline_without_successful_cells() -> None:
    summary = summarize([cell("a", 0, None, status="failed", reason="boom")])
    assert summary["best_variant"] is None and summary["ranking"] == []
    assert "No variant has a successful cell" in headline_text(summary)


def test_moving_average_ignores_nan() -> None:
    out = moving_average(np.array([1.0, np.nan, 3.0, 5.0]), 2)
    np.testing.assert_allclose(out, [1.0, 3.0, 4.0])


def test_document_escapes_inputs_in_html_and_markdown() -> None:
    blocks = [Paragraph([Span("<b>x</b>", "strong"), " & | *y*"]), Table(["a|b"], [["<i>"]]), Alert("1 < 2")]
    page = render_html(blocks, title="T <1>")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "&amp; | *y*" in page
    assert "<title>T &lt;1&gt;</title>" in page and "⚠" in page
    md = render_markdown(blocks)
    assert r"**\<b\>x\</b\>** \& \| \*y\*" in md and r"| a\|b |" in md and "> **⚠ Warning:** 1 \\< 2" in md


def test_details_collapse_in_html_and_are_raw_details_in_markdown() -> None:
    blocks = [Details("Every <pair>", [Heading("Inner", 3), Table(["a"], [["1"]], id="t")], id="pairs")]
    page = render_html(blocks, title="T")
    assert '<details id="pairs"><summary>Every &lt;pair&gt;</summary>' in page and "</details>" in page
    assert page.index("<summary>") < page.index("<h3>Inner</h3>") < page.index('<table id="t">')
    md = render_markdown(blocks)  # GitHub folds raw <details>; the Markdown inside needs blank lines around it
    inner = "### Inner\n\n| a |\n| --- |\n| 1 |"
    assert md == f"<details>\n<summary>Every &lt;pair&gt;</summary>\n\n{inner}\n\n</details>\n"


def test_the_pairwise_tables_are_collapsed_under_the_significance_figure() -> None:
    fids = {"a": [10.0, 11.0, 12.0], "b": [14.0, 16.0, 15.5], "c": [30.0, 31.0, 29.5]}
    summary = summarize([cell(name, i, v) for name, values in fids.items() for i, v in enumerate(values)])
    blocks = sections.significance(summary)
    assert [type(b).__name__ for b in blocks] == ["Heading", "Paragraph", "Image", "Details", "Details"]
    significant, every = blocks[3], blocks[4]
    assert significant.id == "significant-pairs" and significant.summary.endswith("significant pairs")
    assert every.id == "pairwise" and every.summary == "Every pair of variants (3 pairs)"
    assert [row[0] for row in every.blocks[0].rows] == ["a vs b", "a vs c", "b vs c"]


def test_html_embeds_the_images_it_is_given_and_links_the_rest() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    blocks = [Gallery([Image("figures/a.png", "A", "a: seed 0."), Image("figures/b.png", "B|b", "")])]
    page = render_html(blocks, title="T", images={"figures/a.png": png})
    assert f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="A">' in page
    assert '<img src="figures/b.png" alt="B|b">' in page and '<div class="gallery">' in page
    assert "<figcaption>a: seed 0.</figcaption>" in page
    md = render_markdown(blocks)  # side by side: one table row, the captions (or alt texts) as its header
    assert md == "| a: seed 0. | B\\|b |\n| --- | --- |\n| ![A](figures/a.png) | ![B\\|b](figures/b.png) |\n"


# --- write_report -------------------------------------------------------------------------------------------------


def make_params(variants: tuple[str, ...] = ("gan", "vae"), seeds: tuple[int, ...] = (0, 1)) -> Params:
    sections = {"gan": {"kind": "gan", "loss": "ns"}, "vae": {"kind": "vae"}, "hinge": {"kind": "gan", "loss": "hinge"}}
    return parse_params({
        "grid": {"variants": list(variants), "seeds": list(seeds)},
        "variants": {name: sections[name] for name in variants},
        "evaluator": {"min_accuracy": 0.9},
    })  # fmt: skip


def fabricate(root: Path, cells: list[dict[str, Any]], *, accuracy: float | None = 0.95) -> None:
    """Write what prepare/train/evaluate would have: metrics, loss logs, final sample grids, evaluator metrics."""
    rng = np.random.default_rng(0)
    for c in cells:
        path = root / Cell(c["variant"], c["seed"]).metrics
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(c))
        run = root / Cell(c["variant"], c["seed"]).run_dir
        (run / "samples").mkdir(parents=True, exist_ok=True)
        steps = np.arange(1, 31)
        with open(run / "losses.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            if c["variant"] == "vae":
                writer.writerow(["step", "loss", "recon", "kl", "images_per_second"])
                writer.writerows([s, 100 / s, 90 / s, 10.0, 500.0] for s in steps)
            else:
                writer.writerow(["step", "loss_d", "loss_g", "d_real", "d_fake", "images_per_second"])
                loss_d = ["nan" if c["status"] == "diverged" and s > 20 else 1.0 / s for s in steps]
                writer.writerows([s, d, 2.0 + 1 / s, 0.6, 0.4, 900.0] for s, d in zip(steps, loss_d))
        imsave(run / "samples" / "final.png", rng.random((16, 16, 3)))
    if accuracy is not None:
        path = root / layout.EVALUATOR_METRICS_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        weak = accuracy < 0.9
        path.write_text(json.dumps({
            "kind": "classifier", "kind_reason": "auto: 10 classes, the smallest with 100 training images",
            "quality_metric": "test_accuracy", "quality": accuracy, "quality_chance": 0.1, "test_accuracy": accuracy,
            "min_accuracy": 0.9, "weak": weak,
            "weak_reason": f"test accuracy {accuracy:.3f} is below evaluator.min_accuracy 0.9" if weak else None,
        }))


def grid_cells(extractor: str = "domain-classifier") -> list[dict[str, Any]]:
    return [
        cell("gan", 0, 20.0, feature_extractor=extractor),
        cell("gan", 1, float("nan"), status="diverged", reason="<script>alert(1)</script> & loss_d is NaN",
             feature_extractor=extractor),
        cell("vae", 0, 40.0, feature_extractor=extractor),
        cell("vae", 1, 44.0, feature_extractor=extractor),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One report over the default fabricated grid, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("report")
    fabricate(root, grid_cells())
    return root, write_report(make_params(), root=root)


def test_write_report_writes_every_output(report: tuple[Path, dict[str, Any]]) -> None:
    tmp_path, summary = report
    reports = tmp_path / "reports"
    for name in ["report.md", "report.html", "metrics.json", "plots/fid.csv", "plots/losses/gan-0.csv",
                 "plots/losses/gan-1.csv", "plots/losses/vae-0.csv", "plots/losses/vae-1.csv"]:  # fmt: skip
        assert (reports / name).is_file(), name
    for name in ["fid.png", "losses.png", "samples-gan.png", "samples-vae.png", "class-coverage.png", "fid-curves.png"]:
        assert (reports / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    final = (tmp_path / "runs/gan-0/samples/final.png").read_bytes()  # gan-1 diverged: gan-0 is the first ok seed
    assert (reports / "figures/samples-gan.png").read_bytes() == final
    assert not list(reports.rglob("*.tmp")), "temp files left behind"

    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(summary))
    assert metrics["best_variant"] == "gan" and metrics["ranking"] == ["gan", "vae"]
    assert metrics["variants"]["gan"]["fid"] == {"mean": 20.0, "std": None, "n": 1, "ci_low": None, "ci_high": None,
                                                 "ci_method": None, "values": [20.0]}
    assert metrics["variants"]["vae"]["fid"]["values"] == [40.0, 44.0] and metrics["variants"]["vae"]["seeds"] == [0, 1]
    assert metrics["variants"]["gan"]["cells"] == {"ok": 1, "diverged": 1, "failed": 0}
    assert metrics["evaluator"]["kind"] == "classifier" and metrics["evaluator"]["quality"] == 0.95
    assert metrics["evaluator"]["weak"] is False

    with open(reports / "plots/fid.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["variant"] for r in rows] == ["gan", "vae"]
    vae_half = describe([40.0, 44.0])["ci_high"] - 42.0
    assert float(rows[1]["fid_mean"]) == 42.0 and float(rows[1]["ci_high"]) == pytest.approx(42.0 + vae_half)
    assert float(rows[0]["ci_low"]) == float(rows[0]["ci_high"]) == 20.0  # one seed: the interval collapses
    gan_log = (reports / "plots/losses/gan-1.csv").read_text().splitlines()
    assert gan_log[0] == "step,loss_d,loss_g" and gan_log[-1].startswith("30,nan,")
    assert (reports / "plots/losses/vae-0.csv").read_text().splitlines()[0] == "step,loss"

    md = (reports / "report.md").read_text()
    assert md.startswith("# Generative model benchmark")
    assert "**gan** has the lowest FID (domain classifier): 20.00 (a single seed: no interval)." in md
    assert "Not enough seeds" in md
    assert md.index("| 1 | gan |") < md.index("| 2 | vae |")  # results table sorted by FID
    assert "| vae-1 | vae | 1 | ok | 44.00 |" in md  # per-cell table
    assert "**gan-1** (diverged): \\<script\\>alert(1)\\</script\\> \\& loss\\_d is NaN" in md
    for link in ["(figures/fid.png)", "(figures/losses.png)", "(figures/samples-gan.png)", "(figures/samples-vae.png)"]:
        assert link in md
    assert "scored in the features of a domain classifier fitted on the training split (auto: 10 classes" in md
    assert "Quality: test accuracy 0.950 (chance 0.100)." in md and "⚠" not in md


def test_html_report_has_the_same_content_and_escapes_inputs(report: tuple[Path, dict[str, Any]]) -> None:
    page = (report[0] / "reports/report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; loss_d is NaN" in page
    assert "<strong>gan</strong> has the lowest FID (domain classifier)" in page
    assert "<th class=\"num\">FID (domain classifier), mean [95% CI]</th>" in page


def test_html_report_is_one_file_with_every_image_embedded(report: tuple[Path, dict[str, Any]]) -> None:
    reports = report[0] / "reports"
    sources = re.findall(r'<img src="([^"]*)"', (reports / "report.html").read_text())
    assert len(sources) == (reports / "report.md").read_text().count("](figures/") == 8  # the same images as the .md
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in sources}
    for name in ["fid.png", "samples-gan.png", "samples-vae.png", "losses.png", "pairwise.png", "fid-curves.png"]:
        assert (reports / "figures" / name).read_bytes() in embedded, name


def test_the_report_shows_the_chart_samples_and_ranking_first(report: tuple[Path, dict[str, Any]]) -> None:
    md = (report[0] / "reports/report.md").read_text()
    order = ["# Generative model benchmark", "**gan** has the lowest FID", "(figures/fid.png)", "## Samples",
             "| gan: final samples of seed 0. | vae: final samples of seed 0. |", "## Results",
             "| Rank | Variant | FID (domain classifier), mean \\[95% CI\\] | Precision (domain classifier) | Recall "
             "(domain classifier) | Classes covered | Train time / cell |",
             "| 1 | gan | 20.00 (n=1) | 0.600 | 0.500 | 4.0 / 4 | 60 s |",
             "<summary>Every metric per variant with its interval, and the cost</summary>",
             "## Diverged and failed cells", "## Is the difference real?", "<summary>Every pair of variants (1 pair)",
             "## Training losses", "## Per-cell results", "<summary>Every cell's quality"]  # fmt: skip
    positions = [md.index(text) for text in order]
    assert positions == sorted(positions)
    page = (report[0] / "reports/report.html").read_text()
    marks = ['<p id="headline">', 'alt="Mean FID', '<div class="gallery">', '<table id="ranking">',
             '<details id="all-metrics">', '<details id="pairwise">', '<details id="per-cell">']  # fmt: skip
    positions = [page.index(mark) for mark in marks]
    assert positions == sorted(positions)
    assert page.count("<details") == 3 and page.count("<table") == page.count('<div class="scroll"><table')
    per_cell = page[page.index('<details id="per-cell">'):]
    assert "<td>vae-1</td>" in per_cell and "<td>run-vae-1</td>" in per_cell


def test_fid_header_names_the_feature_space(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    domain = (report[0] / "reports/report.md").read_text()
    assert "| FID (domain classifier), mean \\[95% CI\\] |" in domain and "| FID (domain classifier) |" in domain
    fabricate(tmp_path, grid_cells("inception-v3-compat"))
    write_report(make_params(), root=tmp_path)
    inception = (tmp_path / "reports/report.md").read_text()
    assert "| FID (Inception-v3), mean \\[95% CI\\] |" in inception  # results table
    assert "| FID (Inception-v3) |" in inception  # per-cell table
    assert "lowest FID (Inception-v3)" in inception


def test_low_evaluator_accuracy_is_a_visible_warning(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells(), accuracy=0.62)
    write_report(make_params(), root=tmp_path)
    md = (tmp_path / "reports/report.md").read_text()
    assert "> **⚠ Warning:** The grid was scored in the features of a domain classifier" in md
    assert "Weak evaluator: test accuracy 0.620 is below evaluator.min\\_accuracy 0.9." in md
    assert "unreliable" in md
    assert 'class="warning"' in (tmp_path / "reports/report.html").read_text()


def test_missing_evaluator_metrics_are_reported(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells(), accuracy=None)
    summary = write_report(make_params(), root=tmp_path)
    assert summary["evaluator"] is None
    md = (tmp_path / "reports/report.md").read_text()
    assert "⚠ Warning:** No evaluator description found" in md and "models/evaluator.json" in md


def test_missing_metrics_file_raises_input_error_naming_it(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    (tmp_path / "metrics/vae-1.json").unlink()
    with pytest.raises(InputError, match=r"metrics/vae-1\.json.*not found.*stages evaluate --variant vae --seed 1"):
        write_report(make_params(), root=tmp_path)
    assert not (tmp_path / "reports").exists()


def test_inconsistent_metrics_file_is_rejected(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    (tmp_path / "metrics/vae-1.json").write_text(json.dumps({**cell("vae", 0, float("nan"))}))
    with pytest.raises(InputError, match=r"vae-1\.json: it describes variant 'vae' seed 0; an ok cell needs a finite "
                                         r"number for 'fid', got nan; run `python -m stages evaluate --variant vae"):
        write_report(make_params(), root=tmp_path)


def test_an_unknown_status_is_rejected_naming_the_field(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    (tmp_path / "metrics/vae-1.json").write_text(json.dumps({**cell("vae", 1, 1.0), "status": "done"}))
    with pytest.raises(InputError, match=r"vae-1\.json: not a cell metrics file of format version 1 \(status: Input "
                                         r"should be 'ok', 'diverged' or 'failed' \(got 'done'\)\)"):
        write_report(make_params(), root=tmp_path)


def test_rerun_with_a_smaller_grid_removes_stale_files(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells() + [cell("hinge", 0, 30.0), cell("hinge", 1, 31.0)])
    write_report(make_params(("gan", "vae", "hinge")), root=tmp_path)
    assert (tmp_path / "reports/figures/samples-hinge.png").exists()
    (tmp_path / "reports/.gitignore").write_text("/figures\n")  # DVC's, beside its outputs: must survive
    summary = write_report(make_params(("gan", "vae"), seeds=(0,)), root=tmp_path)
    assert summary["grid"] == {"variants": ["gan", "vae"], "seeds": [0]}
    assert not (tmp_path / "reports/figures/samples-hinge.png").exists()
    assert sorted(p.name for p in (tmp_path / "reports/plots/losses").iterdir()) == ["gan-0.csv", "vae-0.csv"]
    assert (tmp_path / "reports/.gitignore").read_text() == "/figures\n"
