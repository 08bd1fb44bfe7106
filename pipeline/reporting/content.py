"""What the report says: the headline, the tables and the warnings, as document blocks built from the summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.reporting import sections
from pipeline.reporting.document import (
    Alert,
    Block,
    BulletList,
    Details,
    Gallery,
    Heading,
    Image,
    Inline,
    Paragraph,
    Span,
    Table,
)  # fmt: skip
from pipeline.reporting.formatting import DASH, feature_space, fmt, fmt_seconds, fmt_stat, percent
from pipeline.reporting.stats import INTERVAL_METHODS, SMALL_N, finite
from pipeline.reporting.summary import against_best, display_order, not_applicable_reasons

TITLE = "Generative model benchmark"


def _significance(summary: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    alpha, p_value = percent(comparison["alpha"]), comparison["p_value"]
    if not comparison["enough_seeds"]:
        n = {name: summary["variants"][name]["fid"]["n"] for name in (comparison["best"], comparison["runner_up"])}
        counts = ", ".join(f"{name} has {count}" for name, count in n.items())
        return f" Not enough seeds for a significance test (Welch's t-test needs ≥ 2 ok seeds each; {counts})."
    if p_value is None:
        return " Welch's t-test is undefined here (no spread across seeds)."
    test = f"Welch's t-test, p = {p_value:.3g}"
    if comparison["corrected_over"] > 1:
        test += f"; {comparison['p_adjusted']:.3g} after Holm's correction over {comparison['corrected_over']} pairs"
    if comparison["significant"]:
        return f" The difference is significant at the {alpha} level ({test})."
    return f" The difference is not significant at the {alpha} level ({test}): more seeds are needed to separate them."


def _against_the_rest(summary: Mapping[str, Any]) -> str:
    """The best variant against each variant ranked below the runner-up, Holm-adjusted like the pairwise matrix."""
    entries = against_best(summary)
    parts = []
    for name in summary["ranking"][2:]:
        entry = entries[name]
        verdict = ("untested" if entry["p_adjusted"] is None else
                   f"adjusted p = {entry['p_adjusted']:.3g}, {'' if entry['significant'] else 'not '}significant")
        parts.append(f"{name} is {fmt(entry['mean_difference'])} higher ({verdict})")
    return f" Against the others: {'; '.join(parts)}." if parts else ""


def headline(summary: Mapping[str, Any]) -> list[Span | str]:
    """Which variant is best, by how much, with what confidence and at what cost."""
    variants, ranking = summary["variants"], summary["ranking"]
    if not ranking:
        return ["No variant has a successful cell, so there is nothing to rank: see the diverged and failed cells."]
    best = ranking[0]
    fid = variants[best]["fid"]
    space = feature_space(summary["feature_extractor"])
    if fid["n"] >= 2:
        small = "; wide because n is small" if fid["n"] <= SMALL_N else ""
        ci = f" [{fmt(fid['ci_low'])}, {fmt(fid['ci_high'])}] ({percent(summary['confidence'])} CI over {fid['n']} seeds{small})"
    else:
        ci = " (a single seed: no interval)"
    parts: list[Span | str] = [Span(best, "strong"), f" has the lowest FID ({space}): {fmt(fid['mean'])}{ci}."]
    comparison = summary.get("comparison")
    if comparison is None:
        parts.append(" It is the only variant with successful cells, so there is nothing to compare it with.")
    else:
        runner, relative = comparison["runner_up"], comparison["relative_difference"]
        rel = f" ({relative:+.1%})" if relative is not None else ""
        parts += [" The runner-up, ", Span(runner, "strong"), f", is {fmt(comparison['difference'])} higher{rel}."]
        parts.append(_significance(summary, comparison))
        parts.append(_against_the_rest(summary))
    seconds, speed = variants[best]["train_seconds"]["mean"], variants[best]["images_per_second"]["mean"]
    if seconds is not None:
        throughput = f" at {fmt(speed, 0)} images/s" if speed is not None else ""
        runner_seconds = variants[comparison["runner_up"]]["train_seconds"]["mean"] if comparison else None
        versus = f" ({comparison['runner_up']}: {fmt_seconds(runner_seconds)})" if runner_seconds is not None else ""
        parts.append(f" Cost: {fmt_seconds(seconds)} of training per cell{throughput}{versus}.")
    return parts


def _interval_note(summary: Mapping[str, Any]) -> str:
    """How the intervals over seeds were made, and a plain warning when they rest on few seeds."""
    methods = sorted({stat["ci_method"] for entry in summary["variants"].values() for stat in entry.values()
                      if isinstance(stat, Mapping) and stat.get("ci_method")})
    text = "; ".join(f"{INTERVAL_METHODS[m]}" for m in methods) + "." if methods else "no interval (one seed each)."
    seeds = [entry["fid"]["n"] for entry in summary["variants"].values() if entry["fid"]["n"] >= 2]
    if seeds and min(seeds) <= SMALL_N:
        text += (f" With {min(seeds)} seeds an interval is wide because n is small (Student's t with "
                 f"{min(seeds) - 1} degree{'s' * (min(seeds) != 2)} of freedom): add seeds to narrow it.")
    return text


def headline_text(summary: Mapping[str, Any]) -> str:
    """The headline as plain text (for the terminal)."""
    return "".join(p.text if isinstance(p, Span) else p for p in headline(summary))


def _coverage(covered: Any, classes: Any) -> str:
    return DASH if finite(covered) is None else f"{fmt(covered, 1)} / {fmt(classes, 0)}"


NA = "n/a¹"


def _stat_or_na(entry: Mapping[str, Any], metric: str, digits: int = 2) -> str:
    return NA if metric in entry.get("not_applicable", {}) else fmt_stat(entry[metric], digits)


def _ndb(entry: Mapping[str, Any]) -> str:
    bins = entry.get("ndb_bins")
    return fmt_stat(entry["ndb"], 1) + (f" / {bins}" if bins else "") if finite(entry["ndb"]["mean"]) is not None else DASH


def _covered(entry: Mapping[str, Any]) -> str:
    if "classes_covered" in entry["not_applicable"]:
        return NA
    return _coverage(entry["classes_covered"]["mean"], entry["num_classes"])


def _ranking(summary: Mapping[str, Any]) -> list[Block]:
    """The compact table at the top: rank, FID with its interval, precision, recall, class coverage and cost."""
    variants, ranking = summary["variants"], summary["ranking"]
    space = feature_space(summary["feature_extractor"])
    rows = [
        [str(rank) if name in ranking else DASH, name, fmt_stat(variants[name]["fid"]),
         fmt(variants[name]["precision"]["mean"], 3), fmt(variants[name]["recall"]["mean"], 3),
         _covered(variants[name]), fmt_seconds(variants[name]["train_seconds"]["mean"])]
        for rank, name in enumerate(display_order(summary), start=1)
    ]  # fmt: skip
    header = ["Rank", "Variant", f"FID ({space}), mean [{percent(summary['confidence'])} CI]",
              f"Precision ({space})", f"Recall ({space})", "Classes covered", "Train time / cell"]  # fmt: skip
    reasons = not_applicable_reasons(summary)
    footnote = [Paragraph(f"¹ Not applicable: {'; '.join(sorted(set(reasons.values())))}.")] if reasons else []
    return [Table(header, rows, align="rlrrrrr", id="ranking"), *footnote]


def _full_results(summary: Mapping[str, Any]) -> Details:
    """Every quality metric per variant with its interval (best first), then the cost, in a collapsed section."""
    variants, ranking = summary["variants"], summary["ranking"]
    conf = percent(summary["confidence"])
    space = feature_space(summary["feature_extractor"])
    best_mean = variants[ranking[0]]["fid"]["mean"] if ranking else None
    rows, cost = [], []
    for rank, name in enumerate(display_order(summary), start=1):
        entry = variants[name]
        ranked = name in ranking
        cells = entry["cells"]
        delta = entry["fid"]["mean"] - best_mean if ranked and best_mean is not None else None
        rows.append([
            str(rank) if ranked else DASH, name, fmt_stat(entry["fid"]), DASH if delta is None else f"{delta:+,.2f}",
            _stat_or_na(entry, "isc_mean"), fmt_stat(entry["kid_mean"], 4), fmt_stat(entry["precision"], 3),
            fmt_stat(entry["recall"], 3), _covered(entry), _stat_or_na(entry, "class_kl", 3), _ndb(entry),
            f"{cells['ok']}/{sum(cells.values())}",
        ])  # fmt: skip
        cost.append([name, fmt_seconds(entry["train_seconds"]["mean"]), fmt(entry["images_per_second"]["mean"], 0)])
    header = [
        "Rank", "Variant", f"FID ({space}), mean [{conf} CI]", "Δ FID vs best", f"IS ({space})", f"KID ({space})",
        f"Precision ({space})", f"Recall ({space})", "Classes covered", "Class KL (nats)", "NDB (bins differing)",
        "Cells ok",
    ]  # fmt: skip
    return Details("Every metric per variant with its interval, and the cost", [
        Paragraph(f"Every quality column is the mean [{conf} CI] over the ok seeds. Classes covered is the mean "
                  "number of classes the generated samples cover out of all; class KL and NDB are defined under Mode "
                  "coverage."),
        Table(header, rows, align="rlrrrrrrrrrr"),
        Heading("Cost", 3),
        Table(["Variant", "Train time / cell", "Images/s"], cost, align="lrr"),
    ], id="all-metrics")  # fmt: skip


def _draws_ci(cell: Mapping[str, Any]) -> str:
    low, high = finite(cell.get("fid_ci_low")), finite(cell.get("fid_ci_high"))
    return DASH if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def _pm(mean: Any, std: Any, digits: int) -> str:
    if finite(mean) is None:
        return DASH
    return fmt(mean, digits) + (f" ± {fmt(std, digits)}" if finite(std) is not None else "")


def _per_cell(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[Block]:
    """Every cell's quality (with its FID interval over noise draws and FID∞), then its cost and MLflow run."""
    space = feature_space(summary["feature_extractor"])
    quality = [
        [f"{c['variant']}-{c['seed']}", str(c["variant"]), str(c["seed"]), str(c["status"]), fmt(c.get("fid")),
         _draws_ci(c), fmt(c.get("fid_infinity")), _pm(c.get("isc_mean"), c.get("isc_std"), 2),
         _pm(c.get("kid_mean"), c.get("kid_std"), 4),
         fmt(c.get("precision"), 3), fmt(c.get("recall"), 3), _coverage(c.get("classes_covered"), c.get("num_classes")),
         fmt(c.get("class_kl"), 3)]
        for c in cells
    ]  # fmt: skip
    confidences = {percent(v) for c in cells if (v := finite(c.get("fid_ci_confidence"))) is not None}
    level = f"{confidences.pop()} " if len(confidences) == 1 else ""
    header = [
        "Cell", "Variant", "Seed", "Status", f"FID ({space})", f"FID {level}CI", "FID∞", f"IS ({space})",
        f"KID ({space})", f"Precision ({space})", f"Recall ({space})", "Classes covered", "Class KL (nats)",
    ]  # fmt: skip
    methods = sorted({str(c["fid_ci_method"]) for c in cells if c.get("fid_ci_method")})
    cost = [
        [f"{c['variant']}-{c['seed']}", fmt_seconds(c.get("train_seconds")), fmt(c.get("images_per_second"), 0),
         fmt(c.get("steps"), 0), fmt(c.get("num_parameters"), 0), str(c.get("mlflow_run_id") or DASH)]
        for c in cells
    ]  # fmt: skip
    blocks: list[Block] = [Table(header, quality, align="llrlrrrrrrrrr")]
    if methods:
        blocks.append(Paragraph(f"FID and its CI: {'; '.join(methods)}. The CI shows the sampling noise of one "
                                "cell's generated set, not the spread across seeds. FID∞: each draw's FID "
                                "extrapolated to infinitely many samples (Chong & Forsyth, 2020), as FID is biased "
                                "upwards in the sample count."))  # fmt: skip
    cost_header = ["Cell", "Train time", "Images/s", "Steps", "Parameters", "MLflow run"]
    blocks += [Heading("Per-cell cost", 3), Table(cost_header, cost, align="lrrrrl")]
    summary_line = f"Every cell's quality, FID interval over noise draws, cost and MLflow run ({len(cells)} cells)"
    return [Heading("Per-cell results"), Details(summary_line, blocks, id="per-cell")]


EVALUATOR_NAMES = {"classifier": "a domain classifier", "contrastive": "a contrastive (SimCLR) encoder"}
QUALITY_NAMES = {"test_accuracy": "test accuracy",
                 "view_retrieval": "view retrieval (share of test images whose nearest other-view embedding is their "
                                   "own second view)"}


def _evaluator_blocks(evaluator: Mapping[str, Any] | None) -> list[Block]:
    """Which evaluator scored the grid, why, its quality figure against chance, and an alert when it is weak."""
    if evaluator is None:
        return [Alert(["No evaluator description found (", Span("models/evaluator.json", "code"),
                       " is missing or unreadable): the domain feature space cannot be vouched for."])]
    kind, metric = str(evaluator["kind"]), str(evaluator["quality_metric"])
    text = (f"The grid was scored in the features of {EVALUATOR_NAMES.get(kind, kind)} fitted on the training split "
            f"({evaluator['kind_reason']}). Quality: {QUALITY_NAMES.get(metric, metric)} {fmt(evaluator['quality'], 3)} "
            f"(chance {fmt(evaluator['quality_chance'], 3)}")
    if finite(evaluator.get("quality_at_init")) is not None:
        text += f"; the same network at its random initialisation: {fmt(evaluator['quality_at_init'], 3)}"
    text += ")."
    if finite(evaluator.get("knn_accuracy")) is not None:
        text += (f" With the dataset's labels, a 20-NN classifier on its features reaches "
                 f"{fmt(evaluator['knn_accuracy'], 3)} test accuracy (chance {fmt(evaluator['knn_chance'], 3)}, "
                 f"random initialisation {fmt(evaluator['knn_accuracy_at_init'], 3)}).")
    if evaluator["weak"]:
        return [Alert(f"{text} Weak evaluator: {evaluator['weak_reason']}. FID, KID, precision/recall and NDB in "
                      "its feature space are unreliable.")]
    return [Paragraph(text)]


def _sample_blocks(variants: Sequence[str], sample_grids: Mapping[str, tuple[str, int]]) -> list[Block]:
    """Every variant's sample grid side by side (path relative to the report, seed it shows), and which have none."""
    images = [Image(sample_grids[v][0], f"Samples of {v}", f"{v}: final samples of seed {sample_grids[v][1]}.")
              for v in variants if v in sample_grids]  # fmt: skip
    blocks: list[Block] = [Heading("Samples"), *([Gallery(images)] if images else [])]
    missing = [v for v in variants if v not in sample_grids]
    if missing:
        blocks.append(Paragraph(f"No sample grid for: {', '.join(missing)} (no ok cell with a final.png)."))
    return blocks


def _excluded_blocks(summary: Mapping[str, Any]) -> list[Block]:
    """The cells left out of the statistics (diverged, failed) with their reasons."""
    excluded = [(cell, info) for e in summary["variants"].values() for cell, info in e["excluded"].items()]
    blocks: list[Block] = [Heading("Diverged and failed cells")]
    if not excluded:
        return [*blocks, Paragraph("None: every cell finished with status ok.")]
    items = [[Span(cell, "strong"), f" ({info['status']}): {info['reason']}"] for cell, info in excluded]
    return [*blocks, Paragraph("These cells are excluded from the means and intervals above:"), BulletList(items)]


def _grid_note(summary: Mapping[str, Any]) -> Paragraph:
    grid = summary["grid"]
    return Paragraph(
        f"Grid: {len(grid['variants'])} variants × {len(grid['seeds'])} seeds ({', '.join(map(str, grid['seeds']))}). "
        f"Means and {percent(summary['confidence'])} confidence intervals [low, high] are over the seeds whose cell "
        f"finished with status ok: {_interval_note(summary)} Lower FID, KID, class KL and NDB are better, higher IS, "
        "precision, recall and class coverage are."
    )


def _top(summary: Mapping[str, Any], sample_grids: Mapping[str, tuple[str, int]]) -> list[Block]:
    """What a reader looks at first: the headline, the FID chart, every variant's samples and the compact ranking."""
    space = feature_space(summary["feature_extractor"])
    blocks: list[Block] = [Heading(TITLE, 1), Paragraph(headline(summary), id="headline")]
    if summary["feature_extractor"] == "mixed":
        blocks.append(Alert(f"Cells used different feature spaces ({', '.join(summary['feature_extractors'])}): "
                            "their FIDs are not comparable."))  # fmt: skip
    blocks.append(Image("figures/fid.png", f"Mean FID ({space}) per variant",
                        "Mean FID per variant with confidence intervals (dots: seeds)."))
    blocks += _sample_blocks(summary["grid"]["variants"], sample_grids)
    return [*blocks, Heading("Results"), *_ranking(summary), _grid_note(summary), _full_results(summary)]


def build_document(
    summary: Mapping[str, Any],
    cells: Sequence[Mapping[str, Any]],
    *,
    evaluator: Mapping[str, Any] | None,
    sample_grids: Mapping[str, tuple[str, int]],
    noise_floor: Mapping[str, Any] | None = None,
    feature_check: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    extra: Sequence[Block] = (),
) -> list[Block]:
    """The whole report, what a reader looks at first on top: the headline, the FID chart, the samples of every
    variant side by side and the compact ranking (every metric in a collapsed section below it); then the excluded
    cells, significance (every pair collapsed), noise floor, other feature spaces, evaluator check, mode coverage,
    FID over training, training losses, the per-cell tables (collapsed) and notes.

    ``sample_grids`` maps a variant to its sample grid's path (relative to the report) and the seed it shows;
    ``noise_floor`` is the noise-floor file as :func:`~pipeline.reporting.inputs.read_noise_floor` returns it,
    ``feature_check`` the feature-space check file, ``evaluator`` what models/evaluator.json says;
    ``extra`` (e.g. the pruning study) follows the FID-over-training section.
    """
    blocks = _top(summary, sample_grids)
    blocks += _excluded_blocks(summary)
    blocks += sections.significance(summary)
    blocks += sections.noise_floor(summary, cells, noise_floor)
    blocks += sections.other_spaces(summary)
    blocks.append(Heading("Evaluator"))
    blocks += _evaluator_blocks(evaluator)
    blocks += sections.feature_check(feature_check)
    blocks += sections.mode_coverage(summary, cells)
    blocks += sections.fid_over_training(summary, cells)
    blocks += sections.equal_compute(summary)
    blocks += list(extra)
    blocks += [Heading("Training losses"),
               Image("figures/losses.png", "Training losses", "Training losses, smoothed by a moving average.")]
    blocks += _per_cell(summary, cells)
    all_notes: list[Inline] = [*notes, *sections.missing_notes(cells)]
    return [*blocks, *([Heading("Notes"), BulletList(all_notes)] if all_notes else [])]
