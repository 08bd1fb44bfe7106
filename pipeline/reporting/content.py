"""What the report says: the headline, the tables and the warnings, as document blocks built from the summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.reporting import sections
from pipeline.reporting.document import Alert, Block, BulletList, Heading, Image, Inline, Paragraph, Span, Table
from pipeline.reporting.formatting import DASH, feature_space, fmt, fmt_seconds, fmt_stat, percent
from pipeline.reporting.stats import finite, half_width
from pipeline.reporting.summary import display_order

TITLE = "Generative model benchmark"


def _significance(summary: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    alpha, p_value = percent(comparison["alpha"]), comparison["p_value"]
    if not comparison["enough_seeds"]:
        n = {name: summary["variants"][name]["fid"]["n"] for name in (comparison["best"], comparison["runner_up"])}
        counts = ", ".join(f"{name} has {count}" for name, count in n.items())
        return f" Not enough seeds for a significance test (Welch's t-test needs ≥ 2 ok seeds each; {counts})."
    if p_value is None:
        return " Welch's t-test is undefined here (no spread across seeds)."
    if comparison["significant"]:
        return f" The difference is significant at the {alpha} level (Welch's t-test, p = {p_value:.3g})."
    return (
        f" The difference is not significant at the {alpha} level (Welch's t-test, p = {p_value:.3g}):"
        " more seeds are needed to separate them."
    )


def headline(summary: Mapping[str, Any]) -> list[Span | str]:
    """Which variant is best, by how much, with what confidence and at what cost."""
    variants, ranking = summary["variants"], summary["ranking"]
    if not ranking:
        return ["No variant has a successful cell, so there is nothing to rank: see the diverged and failed cells."]
    best = ranking[0]
    fid = variants[best]["fid"]
    space = feature_space(summary["feature_extractor"])
    if fid["n"] >= 2:
        ci = f" ± {fmt(half_width(fid))} ({percent(summary['confidence'])} CI over {fid['n']} seeds)"
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
    seconds, speed = variants[best]["train_seconds"]["mean"], variants[best]["images_per_second"]["mean"]
    if seconds is not None:
        throughput = f" at {fmt(speed, 0)} images/s" if speed is not None else ""
        runner_seconds = variants[comparison["runner_up"]]["train_seconds"]["mean"] if comparison else None
        versus = f" ({comparison['runner_up']}: {fmt_seconds(runner_seconds)})" if runner_seconds is not None else ""
        parts.append(f" Cost: {fmt_seconds(seconds)} of training per cell{throughput}{versus}.")
    return parts


def headline_text(summary: Mapping[str, Any]) -> str:
    """The headline as plain text (for the terminal)."""
    return "".join(p.text if isinstance(p, Span) else p for p in headline(summary))


def _coverage(covered: Any, classes: Any) -> str:
    return DASH if finite(covered) is None else f"{fmt(covered, 1)} / {fmt(classes, 0)}"


def _results_tables(summary: Mapping[str, Any]) -> list[Block]:
    """Quality per variant (best first), then its cost."""
    variants, ranking = summary["variants"], summary["ranking"]
    conf = percent(summary["confidence"])
    space = feature_space(summary["feature_extractor"])
    best_mean = variants[ranking[0]]["fid"]["mean"] if ranking else None
    names = display_order(summary)
    rows, cost = [], []
    for rank, name in enumerate(names, start=1):
        entry = variants[name]
        ranked = name in ranking
        cells = entry["cells"]
        delta = entry["fid"]["mean"] - best_mean if ranked and best_mean is not None else None
        rows.append([
            str(rank) if ranked else DASH, name, fmt_stat(entry["fid"]), DASH if delta is None else f"{delta:+,.2f}",
            fmt_stat(entry["isc_mean"]), fmt_stat(entry["kid_mean"], 4), fmt_stat(entry["precision"], 3),
            fmt_stat(entry["recall"], 3), _coverage(entry["classes_covered"]["mean"], entry["num_classes"]),
            fmt_stat(entry["class_kl"], 3), f"{cells['ok']}/{sum(cells.values())}",
        ])  # fmt: skip
        cost.append([name, fmt_seconds(entry["train_seconds"]["mean"]), fmt(entry["images_per_second"]["mean"], 0)])
    header = [
        "Rank", "Variant", f"FID ({space}), mean ± {conf} CI", "Δ FID vs best", f"IS ({space})", f"KID ({space})",
        f"Precision ({space})", f"Recall ({space})", "Classes covered", "Class KL (nats)", "Cells ok",
    ]  # fmt: skip
    return [
        Heading("Results"),
        Paragraph(f"Every quality column is the mean ± {conf} CI over the ok seeds. Classes covered is the mean "
                  "number of classes the generated samples cover out of all; class KL is defined under Mode coverage."),
        Table(header, rows, align="rlrrrrrrrrr"),
        Heading("Cost", 3),
        Table(["Variant", "Train time / cell", "Images/s"], cost, align="lrr"),
    ]  # fmt: skip


def _bootstrap_ci(cell: Mapping[str, Any]) -> str:
    low, high = finite(cell.get("fid_ci_low")), finite(cell.get("fid_ci_high"))
    return DASH if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def _pm(mean: Any, std: Any, digits: int) -> str:
    if finite(mean) is None:
        return DASH
    return fmt(mean, digits) + (f" ± {fmt(std, digits)}" if finite(std) is not None else "")


def _per_cell(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[Block]:
    """Every cell's quality (with its bootstrap FID interval), then its cost and MLflow run."""
    space = feature_space(summary["feature_extractor"])
    quality = [
        [f"{c['variant']}-{c['seed']}", str(c["variant"]), str(c["seed"]), str(c["status"]), fmt(c.get("fid")),
         _bootstrap_ci(c), _pm(c.get("isc_mean"), c.get("isc_std"), 2), _pm(c.get("kid_mean"), c.get("kid_std"), 4),
         fmt(c.get("precision"), 3), fmt(c.get("recall"), 3), _coverage(c.get("classes_covered"), c.get("num_classes")),
         fmt(c.get("class_kl"), 3)]
        for c in cells
    ]  # fmt: skip
    confidences = {percent(v) for c in cells if (v := finite(c.get("fid_ci_confidence"))) is not None}
    level = f"{confidences.pop()} " if len(confidences) == 1 else ""
    header = [
        "Cell", "Variant", "Seed", "Status", f"FID ({space})", f"FID {level}bootstrap CI", f"IS ({space})",
        f"KID ({space})", f"Precision ({space})", f"Recall ({space})", "Classes covered", "Class KL (nats)",
    ]  # fmt: skip
    methods = sorted({str(c["fid_ci_method"]) for c in cells if c.get("fid_ci_method")})
    cost = [
        [f"{c['variant']}-{c['seed']}", fmt_seconds(c.get("train_seconds")), fmt(c.get("images_per_second"), 0),
         fmt(c.get("steps"), 0), fmt(c.get("num_parameters"), 0), str(c.get("mlflow_run_id") or DASH)]
        for c in cells
    ]  # fmt: skip
    blocks: list[Block] = [Heading("Per-cell results"), Table(header, quality, align="llrlrrrrrrrr")]
    if methods:
        blocks.append(Paragraph(f"Bootstrap CI: {'; '.join(methods)}. It shows the sampling noise of one cell's "
                                "generated set, not the spread across seeds."))  # fmt: skip
    cost_header = ["Cell", "Train time", "Images/s", "Steps", "Parameters", "MLflow run"]
    return [*blocks, Heading("Per-cell cost", 3), Table(cost_header, cost, align="lrrrrl")]


def _evaluator_blocks(accuracy: float | None, *, min_accuracy: float, uses_domain: bool) -> list[Block]:
    if accuracy is None:
        return [
            Alert([
                "No evaluator test accuracy found (", Span("models/evaluator.json", "code"),
                " is missing or has no test_accuracy): the domain feature space cannot be vouched for.",
            ])
        ]  # fmt: skip
    text = f"Domain classifier test accuracy: {accuracy:.2%} (minimum {min_accuracy:.2%})."
    if accuracy < min_accuracy:
        consequence = " FID, IS and KID in its feature space are unreliable." if uses_domain else ""
        return [Alert(f"{text} The evaluator is below evaluator.min_accuracy.{consequence}")]
    return [Paragraph(text)]


def build_document(
    summary: Mapping[str, Any],
    cells: Sequence[Mapping[str, Any]],
    *,
    evaluator_accuracy: float | None,
    min_accuracy: float,
    sample_grids: Mapping[str, tuple[str, int]],
    noise_floor: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    extra: Sequence[Block] = (),
) -> list[Block]:
    """The whole report: headline, results, significance, noise floor, other feature spaces, evaluator check, mode
    coverage, FID over training, figures, samples, excluded cells, per-cell tables and notes.

    ``sample_grids`` maps a variant to its sample grid's path (relative to the report) and the seed it shows;
    ``noise_floor`` is the noise-floor file as :func:`~pipeline.reporting.inputs.read_noise_floor` returns it;
    ``extra`` (e.g. the pruning study) follows the FID-over-training section.
    """
    space = feature_space(summary["feature_extractor"])
    grid = summary["grid"]
    blocks: list[Block] = [
        Heading(TITLE, 1),
        Paragraph(headline(summary)),
        Paragraph(
            f"Grid: {len(grid['variants'])} variants × {len(grid['seeds'])} seeds "
            f"({', '.join(map(str, grid['seeds']))}). Means and {percent(summary['confidence'])} confidence intervals "
            "(Student's t) are over the seeds whose cell finished with status ok; "
            "lower FID, KID and class KL are better, higher IS, precision, recall and class coverage are."
        ),
    ]
    if summary["feature_extractor"] == "mixed":
        blocks.append(Alert(f"Cells used different feature spaces ({', '.join(summary['feature_extractors'])}): "
                            "their FIDs are not comparable."))  # fmt: skip
    blocks += _results_tables(summary)
    blocks += sections.significance(summary)
    blocks += sections.noise_floor(summary, cells, noise_floor)
    blocks += sections.other_spaces(summary)
    blocks.append(Heading("Evaluator"))
    uses_domain = "domain-classifier" in summary.get("feature_extractors", [])
    blocks += _evaluator_blocks(evaluator_accuracy, min_accuracy=min_accuracy, uses_domain=uses_domain)
    blocks += sections.mode_coverage(summary, cells)
    blocks += sections.fid_over_training(summary, cells)
    blocks += list(extra)
    blocks += [
        Heading("Figures"),
        Image("figures/fid.png", f"Mean FID ({space}) per variant", "Mean FID per variant with confidence intervals."),
        Image("figures/losses.png", "Training losses", "Training losses, smoothed by a moving average."),
        Heading("Samples"),
    ]
    for variant in grid["variants"]:
        if variant in sample_grids:
            path, seed = sample_grids[variant]
            blocks.append(Image(path, f"Samples of {variant}", f"{variant}: final samples of seed {seed}."))
    missing = [v for v in grid["variants"] if v not in sample_grids]
    if missing:
        blocks.append(Paragraph(f"No sample grid for: {', '.join(missing)} (no ok cell with a final.png)."))
    excluded = [(name, cell, info) for name, e in summary["variants"].items() for cell, info in e["excluded"].items()]
    blocks.append(Heading("Diverged and failed cells"))
    if excluded:
        blocks.append(Paragraph("These cells are excluded from the means and intervals above:"))
        items = [[Span(cell, "strong"), f" ({info['status']}): {info['reason']}"] for _, cell, info in excluded]
        blocks.append(BulletList(items))
    else:
        blocks.append(Paragraph("None: every cell finished with status ok."))
    blocks += _per_cell(summary, cells)
    all_notes: list[Inline] = [*notes, *sections.missing_notes(cells)]
    if all_notes:
        blocks += [Heading("Notes"), BulletList(all_notes)]
    return blocks
