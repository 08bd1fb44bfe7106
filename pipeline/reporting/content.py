"""What the report says: the headline, the tables and the warnings, as document blocks built from the summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.reporting.document import Alert, Block, BulletList, Heading, Image, Inline, Paragraph, Span, Table
from pipeline.reporting.stats import finite, half_width

TITLE = "Generative model benchmark"
FEATURE_SPACES = {"domain-classifier": "domain classifier", "inception-v3-compat": "Inception-v3"}
DASH = "—"


def feature_space(extractor: str | None) -> str:
    """Readable name of the FID feature space: ``domain-classifier`` → ``domain classifier``."""
    if extractor is None:
        return "unknown features"
    return FEATURE_SPACES.get(extractor, extractor)


def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, thousands separated; a dash when missing or not finite."""
    number = finite(value)
    return DASH if number is None else f"{number:,.{digits}f}"


def fmt_seconds(value: Any) -> str:
    """A duration in s, min or h; a dash when missing."""
    seconds = finite(value)
    if seconds is None:
        return DASH
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_stat(stat: Mapping[str, Any], digits: int = 2) -> str:
    """``mean ± CI half-width``, or ``mean (n=1)`` when there is a single seed."""
    if stat["mean"] is None:
        return DASH
    hw = half_width(stat)
    mean = fmt(stat["mean"], digits)
    return f"{mean} ± {fmt(hw, digits)}" if hw is not None else f"{mean} (n=1)"


def _percent(confidence: float) -> str:
    return f"{100 * confidence:g}%"


def _significance(summary: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    alpha, p_value = _percent(comparison["alpha"]), comparison["p_value"]
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
        ci = f" ± {fmt(half_width(fid))} ({_percent(summary['confidence'])} CI over {fid['n']} seeds)"
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


def _results_table(summary: Mapping[str, Any]) -> Table:
    variants, ranking = summary["variants"], summary["ranking"]
    conf = _percent(summary["confidence"])
    best_mean = variants[ranking[0]]["fid"]["mean"] if ranking else None
    rows = []
    for rank, name in enumerate([*ranking, *(v for v in variants if v not in ranking)], start=1):
        entry = variants[name]
        ranked = name in ranking
        cells = entry["cells"]
        delta = entry["fid"]["mean"] - best_mean if ranked and best_mean is not None else None
        rows.append([
            str(rank) if ranked else DASH,
            name,
            fmt_stat(entry["fid"]),
            DASH if delta is None else f"{delta:+,.2f}",
            fmt_stat(entry["isc_mean"]),
            fmt_stat(entry["kid_mean"], 4),
            fmt_seconds(entry["train_seconds"]["mean"]),
            fmt(entry["images_per_second"]["mean"], 0),
            f"{cells['ok']}/{sum(cells.values())}",
        ])
    header = [
        "Rank", "Variant", f"FID ({feature_space(summary['feature_extractor'])}), mean ± {conf} CI", "Δ FID vs best",
        f"IS, mean ± {conf} CI", f"KID, mean ± {conf} CI", "Train time / cell", "Images/s", "Cells ok",
    ]  # fmt: skip
    return Table(header, rows, align="rlrrrrrrr")


def _cell_rows(cells: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    def pm(mean: Any, std: Any, digits: int) -> str:
        if finite(mean) is None:
            return DASH
        return fmt(mean, digits) + (f" ± {fmt(std, digits)}" if finite(std) is not None else "")

    return [
        [
            f"{c['variant']}-{c['seed']}", str(c["variant"]), str(c["seed"]), str(c["status"]),
            fmt(c.get("fid")), pm(c.get("isc_mean"), c.get("isc_std"), 2), pm(c.get("kid_mean"), c.get("kid_std"), 4),
            fmt_seconds(c.get("train_seconds")), fmt(c.get("images_per_second"), 0),
            fmt(c.get("num_parameters"), 0),
            str(c.get("mlflow_run_id") or DASH),
        ]  # fmt: skip
        for c in cells
    ]


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
    notes: Sequence[str] = (),
) -> list[Block]:
    """The whole report: headline, results, evaluator check, figures, samples, excluded cells, per-cell table.

    ``sample_grids`` maps a variant to its sample grid's path (relative to the report) and the seed it shows.
    """
    space = feature_space(summary["feature_extractor"])
    grid = summary["grid"]
    blocks: list[Block] = [
        Heading(TITLE, 1),
        Paragraph(headline(summary)),
        Paragraph(
            f"Grid: {len(grid['variants'])} variants × {len(grid['seeds'])} seeds "
            f"({', '.join(map(str, grid['seeds']))}). Means and {_percent(summary['confidence'])} confidence intervals "
            "(Student's t) are over the seeds whose cell finished with status ok; "
            "lower FID and KID are better, higher IS is."
        ),
    ]
    if summary["feature_extractor"] == "mixed":
        blocks.append(Alert(f"Cells used different feature spaces ({', '.join(summary['feature_extractors'])}): "
                            "their FIDs are not comparable."))  # fmt: skip
    blocks += [Heading("Results"), _results_table(summary), Heading("Evaluator")]
    uses_domain = "domain-classifier" in summary.get("feature_extractors", [])
    blocks += _evaluator_blocks(evaluator_accuracy, min_accuracy=min_accuracy, uses_domain=uses_domain)
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
    header = ["Cell", "Variant", "Seed", "Status", f"FID ({space})", "IS", "KID", "Train time", "Images/s",
              "Parameters", "MLflow run"]  # fmt: skip
    blocks += [Heading("Per-cell results"), Table(header, _cell_rows(cells), align="llrlrrrrrrl")]
    if notes:
        items: list[Inline] = list(notes)
        blocks += [Heading("Notes"), BulletList(items)]
    return blocks
