"""The answer in two small forms: ``reports/headline.json``, the grid's only DVC metric (what ``dvc exp show`` and
``dvc exp diff`` compare across experiments), and the ranking as a terminal table for the report stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from pipeline.reporting.formatting import feature_space, fmt, fmt_p, fmt_stat, percent
from pipeline.reporting.summary import against_best

HEADLINE_STATS = ("mean", "ci_low", "ci_high", "n")


def headline_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Flat enough for ``dvc exp show``: per variant the mean FID over ok seeds with its interval and n (headline
    feature space), the best variant and whether its lead over the runner-up is significant (Holm-adjusted), the
    evaluator's quality, and per other feature space each variant's mean FID."""
    comparison = summary.get("comparison") or {}
    evaluator = summary.get("evaluator") or {}
    result: dict[str, Any] = {
        "best": summary["best_variant"],
        "lead_significant": comparison.get("significant"),
        "lead_p": comparison.get("p_adjusted"),
        "feature_space": summary["feature_extractor"],
        "evaluator_quality": evaluator.get("quality"),
        "fid": {name: {stat: entry["fid"][stat] for stat in HEADLINE_STATS}
                for name, entry in summary["variants"].items()},
    }
    spaces = {name: entry.get("feature_spaces") or {} for name, entry in summary["variants"].items()}
    others = sorted({x for found in spaces.values() for x in found} - {summary["feature_extractor"]})
    for extractor in others:
        result[f"fid@{extractor}"] = {name: found[extractor]["fid"]["mean"] if extractor in found else None
                                      for name, found in spaces.items()}
    return result


def ranking_table(summary: Mapping[str, Any]) -> Table:
    """Rank, variant, mean FID with its interval, the difference to the best and whether that difference is
    significant (Holm-adjusted Welch's t-test); unranked variants (no ok cell) last."""
    label = feature_space(summary["feature_extractor"])
    table = Table(title=f"FID over seeds ({label}; {percent(summary['confidence'])} interval)")
    for column, justify in (("#", "right"), ("variant", "left"), ("FID", "right"), ("Δ to best", "right"),
                            ("significant?", "left"), ("seeds", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    best = summary["variants"][summary["best_variant"]]["fid"]["mean"] if summary["best_variant"] else None
    tests = against_best(summary)
    for rank, name in enumerate(summary["ranking"], start=1):
        fid = summary["variants"][name]["fid"]
        test = tests.get(name)
        verdict = "best" if test is None else (f"{'yes' if test['significant'] else 'no'} (p={fmt_p(test['p_adjusted'])})"
                                               if test["p_adjusted"] is not None else "too few seeds")
        delta = "" if rank == 1 else f"+{fmt(fid['mean'] - best)}"
        table.add_row(*map(escape, (str(rank), name, fmt_stat(fid), delta, verdict, str(fid["n"]))))
    for name in [v for v in summary["variants"] if v not in summary["ranking"]]:
        table.add_row("–", escape(name), "no ok cell", "", "", "0")
    return table
