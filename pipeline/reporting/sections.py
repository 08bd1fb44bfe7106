"""The report's analysis sections: pairwise significance, noise floor, other feature spaces, mode coverage and FID
over training, plus the notes on what older metrics files lack. Each returns document blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.reporting.document import Alert, Block, Heading, Image, Paragraph, Span, Table
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
from pipeline.reporting.summary import KL_THRESHOLD, class_shares, display_order

CLASS_FIGURE = "figures/class-coverage.png"
CURVE_FIGURE = "figures/fid-curves.png"
OPTIONAL_KEYS = {  # what the report says is missing -> the keys an ok cell needs for it
    "precision and recall": ("precision", "recall"),
    "bootstrap FID interval": ("fid_ci_low", "fid_ci_high"),
    "class-coverage diagnostics": ("num_classes", "classes_covered", "class_histogram"),
    "FID curve": ("fid_curve",),
    "per-feature-space results": ("feature_spaces",),
}


def _yes_no(entry: Mapping[str, Any]) -> str:
    if entry["significant"] is None:
        return f"{DASH} ({entry['reason']})"
    return "yes" if entry["significant"] else "no"


def significance(summary: Mapping[str, Any]) -> list[Block]:
    """Every pair of ranked variants: FID difference, Welch's p-value and its Holm-adjusted value."""
    blocks: list[Block] = [Heading("Is the difference real?")]
    pairs = summary["pairwise"]
    if not pairs:
        return [*blocks, Paragraph("Fewer than two variants have ok cells: there is nothing to compare.")]
    alpha = pairs[0]["alpha"]
    tested = [p for p in pairs if p["p_adjusted"] is not None]
    blocks.append(Paragraph(
        f"Each pair of ranked variants is compared with Welch's two-sided t-test over the FIDs "
        f"({feature_space(summary['feature_extractor'])}) of their ok seeds; the p-values are adjusted with the "
        f"Holm–Bonferroni correction over the {len(tested)} pair{'s' * (len(tested) != 1)} with a defined test, and "
        f"a difference is significant when the adjusted p < α = {alpha:g} (1 − report.confidence). "
        f"{sum(bool(p['significant']) for p in pairs)} of {len(pairs)} pairs differ significantly."
    ))  # fmt: skip
    rows = [
        [f"{p['a']} vs {p['b']}", f"{p['mean_difference']:+,.2f}", f"{p['n_a']} / {p['n_b']}", fmt_p(p["p_value"]),
         fmt_p(p["p_adjusted"]), _yes_no(p)]
        for p in pairs
    ]  # fmt: skip
    header = ["Pair (a vs b)", "Δ FID (b − a)", "Seeds (a / b)", "p (Welch)", "p (Holm-adjusted)", "Significant"]
    return [*blocks, Table(header, rows, align="lrrrrl")]


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


def mode_coverage(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[Block]:
    """The class-share figure and which variants look mode-collapsed."""
    blocks: list[Block] = [Heading("Mode coverage")]
    if class_shares(cells) is None:
        return [*blocks, Paragraph("No ok cell has class-coverage diagnostics (class_histogram), so mode coverage "
                                   "cannot be checked.")]  # fmt: skip
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
    """Which optional results some ok cells lack (metrics from an older evaluate stage), one note per set of cells."""
    lacking: dict[tuple[str, ...], list[str]] = {}  # cells -> what they lack
    for what, keys in OPTIONAL_KEYS.items():
        names = tuple(f"{c['variant']}-{c['seed']}" for c in cells
                      if c.get("status") == "ok" and any(c.get(k) is None for k in keys))  # fmt: skip
        if names:
            lacking.setdefault(names, []).append(what)
    return [
        f"No {_or(whats)} in the metrics of {', '.join(names)} (written by an older evaluate stage, or not "
        f"computable): shown as {DASH}."
        for names, whats in lacking.items()
    ]


def _or(items: Sequence[str]) -> str:
    """``a, b or c``."""
    return f"{', '.join(items[:-1])} or {items[-1]}" if len(items) > 1 else items[0]
