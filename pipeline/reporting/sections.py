"""The report's analysis sections: pairwise significance, noise floor, other feature spaces, mode coverage and FID
over training, plus the notes on what some cells' metrics lack. Each returns document blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.reporting.document import Alert, Block, Details, Heading, Image, Paragraph, Span, Table
from pipeline.reporting.formatting import (
    DASH,
    feature_space,
    fmt,
    fmt_p,
    fmt_seconds,
    fmt_seconds_stat,
    fmt_stat,
    percent,
)  # fmt: skip
from pipeline.reporting.inputs import fid_curve
from pipeline.reporting.stats import finite
from pipeline.reporting.summary import KL_THRESHOLD, class_shares, display_order, not_applicable_reasons

CLASS_FIGURE = "figures/class-coverage.png"
CURVE_FIGURE = "figures/fid-curves.png"
FEATURE_CHECK_FIGURE = "figures/feature-check.png"
PAIRWISE_FIGURE = "figures/pairwise.png"
EQUAL_COMPUTE_FIGURE = "figures/equal-compute.png"
OPTIONAL_KEYS = {  # what the report says is missing -> the keys an ok cell needs for it
    "precision and recall": ("precision", "recall"),
    "FID interval over noise draws": ("fid_ci_low", "fid_ci_high"),
    "class-coverage diagnostics": ("num_classes", "classes_covered", "class_histogram"),
    "FID curve": ("fid_curve",),
    "per-feature-space results": ("feature_spaces",),
}


def _yes_no(entry: Mapping[str, Any]) -> str:
    if entry["significant"] is None:
        return f"{DASH} ({entry['reason']})"
    return "yes" if entry["significant"] else "no"


def significance(summary: Mapping[str, Any]) -> list[Block]:
    """How many pairs differ, the matrix figure of the probability of improvement, the significant pairs and (collapsed)
    every pair."""
    blocks: list[Block] = [Heading("Is the difference real?")]
    pairs = summary["pairwise"]
    if not pairs:
        return [*blocks, Paragraph("Fewer than two variants have ok cells: there is nothing to compare.")]
    alpha = pairs[0]["alpha"]
    tested = [p for p in pairs if p["p_adjusted"] is not None]
    significant = [p for p in pairs if p["significant"]]
    blocks.append(Paragraph(
        f"Each pair of ranked variants is compared with Welch's two-sided t-test over the FIDs "
        f"({feature_space(summary['feature_extractor'])}) of their ok seeds; the p-values are adjusted with the "
        f"Holm–Bonferroni correction over the {len(tested)} pair{'s' * (len(tested) != 1)} with a defined test, and "
        f"a difference is significant when the adjusted p < α = {alpha:g} (1 − report.confidence). "
        f"{len(significant)} of {len(pairs)} pairs differ significantly. The figure shows, for each pair, the "
        "probability that a seed of the row variant scores a lower FID than a seed of the column variant (P of "
        "improvement; * marks a significant pair); every pair's numbers are in the collapsed table below and in "
        "reports/metrics.json (pairwise)."
    ))  # fmt: skip
    blocks.append(Image(PAIRWISE_FIGURE, "Probability of improvement between every pair of variants",
                        "P(FID of a row seed < FID of a column seed); * significant after Holm's correction."))
    if significant:
        rows = [[f"{p['a']} < {p['b']}", f"{p['mean_difference']:+,.2f}", _poi(p), fmt(p["hedges_g"]),
                 fmt_p(p["p_adjusted"])] for p in significant]
        header = ["Significant pair (better < worse)", "Δ FID", "P of improvement [CI]", "Hedges' g", "p (Holm)"]
        what = f"The {len(significant)} significant pair{'s' * (len(significant) != 1)}"
        blocks.append(Details(what, [Table(header, rows, align="lrrrr")], id="significant-pairs"))
    return [*blocks, _every_pair(pairs)]


def _poi(entry: Mapping[str, Any]) -> str:
    ci = entry.get("prob_improvement_ci")
    interval = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""
    return f"{fmt(entry['prob_improvement'])}{interval}"


def _every_pair(pairs: Sequence[Mapping[str, Any]]) -> Details:
    """The table of every pair, collapsed: difference, seeds, P of improvement, Hedges' g, Welch's and Holm's p."""
    rows = [
        [f"{p['a']} vs {p['b']}", f"{p['mean_difference']:+,.2f}", f"{p['n_a']} / {p['n_b']}", _poi(p),
         fmt(p["hedges_g"]), fmt_p(p["p_value"]), fmt_p(p["p_adjusted"]), _yes_no(p)]
        for p in pairs
    ]  # fmt: skip
    header = ["Pair (a vs b)", "Δ FID (b − a)", "Seeds (a / b)", "P(FID a < FID b) [CI]", "Hedges' g", "p (Welch)",
              "p (Holm-adjusted)", "Significant"]
    table = Table(header, rows, align="lrrrrrrl")
    return Details(f"Every pair of variants ({len(pairs)} pair{'s' * (len(pairs) != 1)})", [table], id="pairwise")


def space_fid(summary: Mapping[str, Any], variant: str, extractor: str) -> Mapping[str, Any] | None:
    """A variant's FID statistics in a feature space: the headline ``fid`` for the headline space."""
    entry = summary["variants"][variant]
    if extractor == summary["feature_extractor"]:
        return entry["fid"]
    return entry["feature_spaces"].get(extractor, {}).get("fid")


def _times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:,.0f}×"


def noise_floor(
    summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], data: Mapping[str, Any] | None
) -> list[Block]:
    """Real-vs-real FID per feature space and how far the best variant is above it."""
    blocks: list[Block] = [Heading("Noise floor")]
    if data is None:
        return [*blocks, Paragraph([
            "No noise floor: ", Span("metrics/noise-floor.json", "code"),
            " is missing or unreadable (", Span("dvc repro", "code"), " creates it), so the report cannot say how far "
            "the FIDs are from the FID of real data against real data.",
        ])]  # fmt: skip
    blocks.append(Paragraph(
        f"FID of the {data.get('reference') or '?'} split against {data.get('repeats') or '?'} "
        f"{'disjoint ' if data.get('disjoint_subsets') else 'random '}subsets of "
        f"the {data.get('subset_split') or '?'} split, {fmt(data.get('num_samples'), 0)} real images each: what a "
        "generator indistinguishable from the data would score with this sample size."
    ))
    rows, sentences = [], []
    for extractor, floor in data["feature_spaces"].items():
        fids = [(v, s) for v in summary["ranking"] if (s := space_fid(summary, v, extractor)) and s["mean"] is not None]
        best, stat = min(fids, key=lambda item: item[1]["mean"]) if fids else (None, None)
        ratio = stat["mean"] / floor["fid_mean"] if stat and floor["fid_mean"] > 0 else None
        n = len(floor["fid_values"]) or data.get("repeats")
        rows.append([feature_space(extractor), f"{fmt(floor['fid_mean'])} ± {fmt(floor['fid_std'])}", str(n or DASH),
                     best or DASH, fmt_stat(stat) if stat else DASH, _times(ratio) if ratio is not None else DASH])
        if stat is not None and ratio is not None:
            near = stat["mean"] <= floor["fid_mean"] + 2 * (floor["fid_std"] or 0.0)
            verdict = " — within two standard deviations of it: indistinguishable from real data" if near else ""
            sentences.append(f"In the {feature_space(extractor)} space the best FID ({best}) is {_times(ratio)} the "
                             f"noise floor{verdict}.")  # fmt: skip
    header = ["Feature space", "Real-vs-real FID (mean ± std)", "Repeats", "Best variant", "Its FID", "× noise floor"]
    blocks += [Table(header, rows, align="lrrlrr"), *(Paragraph(s) for s in sentences)]
    sizes = sorted({int(s) for c in cells if c.get("status") == "ok" and isinstance(s := c.get("num_samples"), int)})
    if data.get("num_samples") is not None and sizes and sizes != [data["num_samples"]]:
        blocks.append(Alert(f"The noise floor uses {fmt(data['num_samples'], 0)} images, the cells "
                            f"{', '.join(f'{s:,}' for s in sizes)}: FID is biased by sample size, so the ratio is "
                            "approximate."))  # fmt: skip
    return blocks


def other_spaces(summary: Mapping[str, Any]) -> list[Block]:
    """One table per feature space other than the headline one (empty when the cells have a single space)."""
    variants, ranking = summary["variants"], summary["ranking"]
    spaces = [s for s in dict.fromkeys(s for e in variants.values() for s in e["feature_spaces"])
              if s != summary["feature_extractor"]]  # fmt: skip
    if not spaces:
        return []
    conf = percent(summary["confidence"])
    blocks: list[Block] = [
        Heading("Other feature spaces"),
        Paragraph(f"The same generated samples scored in the other feature spaces (mean ± {conf} CI over ok seeds)."),
    ]
    for extractor in spaces:
        label = feature_space(extractor)
        rows = []
        for name in display_order(summary):
            space = variants[name]["feature_spaces"].get(extractor)
            if space is not None:
                rows.append([name, fmt_stat(space["fid"]), fmt_stat(space["isc_mean"]), fmt_stat(space["kid_mean"], 4),
                             fmt_stat(space["precision"], 3), fmt_stat(space["recall"], 3)])  # fmt: skip
        order = sorted((n for n in ranking if (s := space_fid(summary, n, extractor)) and s["mean"] is not None),
                       key=lambda n: space_fid(summary, n, extractor)["mean"])  # fmt: skip
        agree = "the same as" if order == [n for n in ranking if n in order] else "different from"
        header = ["Variant", *(f"{m} ({label})" for m in ("FID", "IS", "KID", "Precision", "Recall"))]
        blocks += [
            Heading(label, 3),
            Table(header, rows, align="lrrrrr"),
            Paragraph(f"Ranking by FID ({label}): {', '.join(order) or DASH} — {agree} the headline ranking."),
        ]
    return blocks


def _ndb_blocks(summary: Mapping[str, Any]) -> list[Block]:
    """NDB per variant: label-free mode coverage, for every evaluator."""
    rows = [[name, fmt_stat(entry["ndb"], 1), fmt(entry["ndb_bins"], 0), fmt_stat(entry["ndb_share"], 3),
             fmt_stat(entry["ndb_js"], 4)]
            for name in display_order(summary) if finite((entry := summary["variants"][name])["ndb"]["mean"]) is not None]
    if not rows:
        return [Paragraph("No ok cell has NDB (ndb), so label-free mode coverage cannot be shown.")]
    return [
        Paragraph("NDB (Richardson & Weiss 2018): the reference features are clustered into K k-means bins; a bin "
                  "differs when a two-proportion z-test at α = 0.05 rejects equal generated and real shares. A "
                  "generator that drops modes empties their bins, so NDB grows with the modes dropped; real data "
                  "against real data leaves about α × K bins differing by chance. JS: Jensen–Shannon divergence of "
                  "the two bin histograms (nats)."),
        Table(["Variant", "NDB (bins differing)", "Bins K", "NDB / K", "JS (nats)"], rows, align="lrrrr"),
    ]


def mode_coverage(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[Block]:
    """The class-share figure, which variants look mode-collapsed, and NDB."""
    blocks: list[Block] = [Heading("Mode coverage")]
    if class_shares(cells) is None:
        reasons = not_applicable_reasons(summary)
        why = "; ".join(sorted({r for m, r in reasons.items() if m in ("classes_covered", "class_kl")}))
        blocks.append(Paragraph(f"Class coverage is not applicable: {why}." if why else "No ok cell has class-coverage "
                                "diagnostics (class_histogram), so class coverage cannot be checked."))
        return [*blocks, *_ndb_blocks(summary)]
    blocks += [
        Paragraph(
            "The domain classifier labels every generated image. Classes covered: classes the evaluate stage found "
            "generated in a fair share of their real frequency; class KL: KL(p_generated ‖ p_real) over the "
            "predicted classes in nats (0 for the real mix; a generator stuck on one of ten balanced classes scores "
            "about 2.3)."
        ),
        Image(CLASS_FIGURE, "Generated class share per variant against the real share",
              "Share of each predicted class in the generated samples (mean over ok seeds) and in the real data."),
    ]  # fmt: skip
    flagged = []
    for name, entry in summary["variants"].items():
        if entry["possible_mode_collapse"]:
            covered = f"covers {fmt(entry['classes_covered']['mean'], 1)} of {entry['num_classes'] or DASH} classes"
            flagged.append(f"{name} ({covered}, class KL {fmt(entry['class_kl']['mean'], 2)} nats)")
    if flagged:
        blocks.append(Alert(f"Possible mode collapse (fewer than all classes covered, or class KL > {KL_THRESHOLD:g} "
                            f"nats): {'; '.join(flagged)}."))  # fmt: skip
    else:
        blocks.append(Paragraph(f"No variant shows signs of mode collapse: each covers every class and has class KL "
                                f"≤ {KL_THRESHOLD:g} nats."))  # fmt: skip
    return [*blocks, *_ndb_blocks(summary)]


def feature_check(check: Mapping[str, Any] | None) -> list[Block]:
    """The sanity ladder: FID of disturbed real images per level, and an alert for every non-monotone disturbance."""
    blocks: list[Block] = [Heading("Feature-space check", 3)]
    if check is None:
        return [*blocks, Paragraph(["No feature-space check (", Span("metrics/feature-check.json", "code"), "): run ",
                                    Span("python -m stages feature-check", "code"), " to see whether FID in this space "
                                    "rises with noise, blur, salt-and-pepper and dropped modes."])]
    blocks += [
        Paragraph(f"FID of {fmt(check.get('num_samples'), 0)} real training images against the test split, disturbed "
                  "at growing levels (level 0: undisturbed); modes for mode dropping are "
                  f"{check.get('modes', 'the classes')}. A feature space that ranks models by a defect must give a "
                  "higher FID at every higher level of it (Heusel et al. 2017, Fig. 2)."),
        Image(FEATURE_CHECK_FIGURE, "FID against disturbance level per feature space",
              "FID of disturbed real images against the clean test split: one panel per disturbance."),
    ]
    failed = [f"{feature_space(space)}: {name} (FID {', '.join(fmt(v) for v in entry['fid'])})"
              for space, result in check["feature_spaces"].items()
              for name, entry in result["disturbances"].items() if not entry["monotone"]]
    if failed:
        blocks.append(Alert(f"FID is not monotone in the disturbance level — this feature space cannot rank models "
                            f"by that defect: {'; '.join(failed)}."))
    else:
        blocks.append(Paragraph("FID rises with every level of every disturbance in every feature space."))
    return blocks


def _joined(cells: Sequence[Mapping[str, Any]], key: str, render: Any) -> str:
    values = dict.fromkeys(render(c[key]) for c in cells if c.get(key) is not None)
    return " / ".join(values) or "?"


def curve_space(cells: Sequence[Mapping[str, Any]]) -> str:
    """Readable name of the feature space(s) the FID curves were computed in."""
    return _joined(cells, "curve_feature_extractor", feature_space)


def fid_over_training(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[Block]:
    """The FID-curve figure and how long each variant took to get within 10% of its final FID."""
    blocks: list[Block] = [Heading("FID over training")]
    with_curve = [c for c in cells if fid_curve(c) is not None]
    if not with_curve:
        return [*blocks, Paragraph("No cell has an FID curve (fid_curve): convergence speed cannot be shown.")]
    space = curve_space(with_curve)
    samples = _joined(with_curve, "curve_num_samples", lambda n: fmt(n, 0))
    curve_sizes = [n for c in with_curve if (n := finite(c.get("curve_num_samples"))) is not None]
    final_sizes = [n for c in cells if (n := finite(c.get("num_samples"))) is not None]
    smaller = ""
    if curve_sizes and final_sizes and max(curve_sizes) < min(final_sizes):
        smaller = (f", fewer than the final evaluation's {fmt(min(final_sizes), 0)}: FID is biased upwards at small "
                   "sample sizes, so compare the curves' shapes, not their levels with the results above")  # fmt: skip
    blocks += [
        Paragraph(
            f"FID ({space}) of each training snapshot from {samples} samples drawn with the same noise every time"
            f"{smaller}. "
            "Time to within 10%: training wall time until the first snapshot whose FID is at most 1.1 × the cell's "
            f"last snapshot FID (mean ± {percent(summary['confidence'])} CI over ok seeds)."
        ),
        Image(CURVE_FIGURE, "FID over training steps and training time",
              "FID of the training snapshots: one line per cell, colour per variant, line style per seed."),
    ]  # fmt: skip
    rows = []
    for name in display_order(summary):
        entry = summary["variants"][name]
        rows.append([name, fmt_seconds_stat(entry["time_to_within_10pct"]), fmt_stat(entry["steps_to_within_10pct"], 0),
                     fmt_seconds(entry["train_seconds"]["mean"]), str(entry["time_to_within_10pct"]["n"])])  # fmt: skip
    header = ["Variant", "Time to within 10% of final FID", "Steps to within 10%", "Train time / cell", "Seeds"]
    return [*blocks, Table(header, rows, align="lrrrr")]


def missing_notes(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """Which optional results some ok cells lack (not computed with their settings: one noise draw has no interval,
    an evaluator without classes no coverage), one note per set of cells."""
    lacking: dict[tuple[str, ...], list[str]] = {}  # cells -> what they lack
    for what, keys in OPTIONAL_KEYS.items():
        names = tuple(f"{c['variant']}-{c['seed']}" for c in cells
                      if c.get("status") == "ok" and any(c.get(k) is None for k in keys))  # fmt: skip
        if names:
            lacking.setdefault(names, []).append(what)
    return [
        f"No {_or(whats)} in the metrics of {', '.join(names)} (not computed with their settings): shown as "
        f"{DASH}."
        for names, whats in lacking.items()
    ]


def _or(items: Sequence[str]) -> str:
    """``a, b or c``."""
    return f"{', '.join(items[:-1])} or {items[-1]}" if len(items) > 1 else items[0]


def equal_compute(summary: Mapping[str, Any]) -> list[Block]:
    """FID at equal training time and at equal generator steps, and whether the ranking changes with the budget."""
    data = summary.get("equal_compute")
    blocks: list[Block] = [Heading("Ranking at equal compute", 3)]
    if not data:
        return [*blocks, Paragraph("No FID curves, so the variants cannot be compared at equal budgets.")]
    samples = "/".join(str(n) for n in data["curve_num_samples"]) or "?"
    blocks.append(Paragraph(
        "Variants cost different time per step, so the ranking after the same number of steps need not be the "
        "ranking after the same training time (Lucic et al. 2018). Mean FID over seeds of the last training "
        f"snapshot within each budget ({samples} samples per snapshot, so compare these with each other, not with "
        "the final FIDs above); — where a seed has no snapshot within the budget."))
    blocks.append(Image(EQUAL_COMPUTE_FIGURE, "FID at equal training time and at equal generator steps",
                        "Mean snapshot FID within each budget: training wall time (left), generator steps (right)."))
    for axis, label, render in (("seconds", "training time", fmt_seconds), ("steps", "generator steps",
                                                                             lambda v: fmt(v, 0))):
        entry = data.get(axis)
        if not entry:
            continue
        header = ["Variant", *(f"FID at {render(b)}" for b in entry["budgets"])]
        rows = [[v, *(fmt(x) for x in entry["fid"][v])] for v in display_order(summary) if v in entry["fid"]]
        rows.append(["Ranking", *(", ".join(r) or DASH for r in entry["rankings"])])
        blocks += [Paragraph(f"At equal {label} (budgets: a quarter, half and all of the "
                             f"{'cheapest variant, ' + entry['cheapest'] + ', ' if axis == 'seconds' else 'shortest run'}"
                             f"{'s training time' if axis == 'seconds' else ''}):"),
                   Table(header, rows, align="l" + "r" * len(entry["budgets"]))]
    return blocks
