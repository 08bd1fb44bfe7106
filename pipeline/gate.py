"""The retraining quality gate: per-variant FID of the new ``reports/metrics.json`` against the committed one.

A variant regresses only when it is worse beyond the seed noise of both runs: its mean FID rose by more than the
tolerance (the smallest change worth failing for) *and* a one-sided Welch t-test on the per-seed FIDs (the
committed run's seeds against the new ones) says the rise is not noise (p < ``retrain.alpha``). With a single seed
on a side the test is undefined and the tolerance alone decides (said so in the summary). A variant that lost every
ok cell fails too; one taken out of the grid is removed, a new one is new.
"""

from __future__ import annotations

import json
import math
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from pipeline.errors import InputError
from pipeline.reporting.formatting import fmt

STATUSES = ("regressed", "lost", "improved", "unchanged", "new", "removed")


def one_sided_p(before: list[float], after: list[float]) -> float | None:
    """p-value of Welch's test that ``after`` has a larger mean than ``before``; None with < 2 values a side.
    Without any spread on either side the data are exact: 0 when after's mean is larger, else 1."""
    if len(before) < 2 or len(after) < 2:
        return None
    if np.var(before) == 0 and np.var(after) == 0:
        return 0.0 if np.mean(after) > np.mean(before) else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = stats.ttest_ind(after, before, equal_var=False, alternative="greater").pvalue
    return float(p_value) if math.isfinite(p_value) else None


@dataclass(frozen=True)
class FidChange:
    """One variant's per-seed FIDs before (committed) and after (this run); empty where there are none."""

    variant: str
    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    tolerance: float = 0.1
    alpha: float = 0.05
    in_grid: bool = True

    @property
    def mean_before(self) -> float | None:
        return float(np.mean(self.before)) if self.before else None

    @property
    def mean_after(self) -> float | None:
        return float(np.mean(self.after)) if self.after else None

    @property
    def relative(self) -> float | None:
        """(mean after − mean before) / mean before."""
        if self.mean_before is None or self.mean_after is None or self.mean_before == 0:
            return None
        return (self.mean_after - self.mean_before) / self.mean_before

    @property
    def p_worse(self) -> float | None:
        """One-sided p-value that the new FIDs are higher than the committed ones."""
        return one_sided_p(self.before, self.after)

    @property
    def p_better(self) -> float | None:
        return one_sided_p(self.after, self.before)

    @property
    def tested(self) -> bool:
        return self.p_worse is not None

    @property
    def status(self) -> str:
        if not self.before:
            return "new" if self.after else "unchanged"
        if not self.after:  # scored before, nothing now: taken out of the grid, or every cell failed
            return "lost" if self.in_grid else "removed"
        change = self.relative or 0.0
        if change > self.tolerance and (not self.tested or self.p_worse < self.alpha):
            return "regressed"
        if change < -self.tolerance and (not self.tested or self.p_better < self.alpha):
            return "improved"
        return "unchanged"

    @property
    def fails(self) -> bool:
        return self.status in ("regressed", "lost")


def per_seed_fids(summary: dict[str, Any]) -> dict[str, list[float]]:
    """Variant -> its ok seeds' FIDs from a ``reports/metrics.json`` (the mean alone where no values are kept)."""
    result = {}
    for name, entry in (summary.get("variants") or {}).items():
        fid = entry.get("fid") or {}
        values = fid.get("values")
        if isinstance(values, list):
            result[name] = [float(v) for v in values]
        else:
            result[name] = [float(fid["mean"])] if isinstance(fid.get("mean"), (int, float)) else []
    return result


def fid_changes(baseline: dict[str, Any], current: dict[str, Any], *, tolerance: float, alpha: float,
                grid: list[str]) -> list[FidChange]:
    """Every variant's change between two ``reports/metrics.json`` summaries, by name."""
    before, after = per_seed_fids(baseline), per_seed_fids(current)
    return [FidChange(name, before.get(name, []), after.get(name, []), tolerance, alpha, name in grid)
            for name in sorted(set(before) | set(after))]


def committed_summary(rev: str, path: str) -> dict[str, Any] | None:
    """``path`` as committed at ``rev`` (None when it is not there); InputError for a revision git does not know."""
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], capture_output=True,
                           text=True)
    if known.returncode != 0:
        raise InputError(f"retrain.baseline / --rev: git knows no revision {rev!r}")
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    if shown.returncode != 0:
        return None
    try:
        return json.loads(shown.stdout)
    except json.JSONDecodeError:
        raise InputError(f"{path} at {rev}: not valid JSON") from None


def run_gate(*, metrics: Path, rev: str, tolerance: float, alpha: float, grid: list[str]) -> tuple[str, bool]:
    """Compare ``metrics`` with its committed version at ``rev``; returns the Markdown summary and whether it
    failed."""
    if not metrics.exists():
        raise InputError(f"{metrics}: missing; run `dvc repro` first")
    current = json.loads(metrics.read_text(encoding="utf-8"))
    baseline = committed_summary(rev, metrics.as_posix()) or {}
    changes = fid_changes(baseline, current, tolerance=tolerance, alpha=alpha, grid=grid)
    text = summary_markdown(changes, rev=rev, tolerance=tolerance, alpha=alpha,
                            best_before=baseline.get("best_variant"), best_after=current.get("best_variant"))
    return text, any(change.fails for change in changes)


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def summary_markdown(changes: list[FidChange], *, rev: str, tolerance: float, alpha: float, best_before: str | None,
                     best_after: str | None) -> str:
    """The job summary: verdict, best variant, a table of FID changes with the test, the regressions."""
    failed = [c for c in changes if c.fails]
    rule = f"a mean FID rise above the {tolerance:.0%} tolerance that a one-sided Welch test over seeds (p < {alpha:g}) " \
           "does not put down to seed noise"
    verdict = (f"**Quality gate failed**: {len(failed)} variant{'s' if len(failed) != 1 else ''} regressed "
               f"({rule}), or lost every ok cell." if failed else
               f"**Quality gate passed**: no variant shows {rule}.")
    lines = ["# Scheduled retraining", "", verdict, "",
             f"Best variant: **{best_after or 'none'}** (was {best_before or 'none'} at `{rev}`).", "",
             f"| Variant | FID at `{rev}` (seeds) | FID now (seeds) | Change | p (worse) | Status |",
             "| --- | --- | --- | --- | --- | --- |"]
    for change in changes:
        relative = "" if change.relative is None else f" ({change.relative:+.1%})"
        delta = ("—" if change.mean_before is None or change.mean_after is None
                 else f"{change.mean_after - change.mean_before:+.2f}{relative}")
        status = f"**{change.status}**" if change.fails else change.status
        lines.append(f"| {change.variant} | {fmt(change.mean_before)} ({len(change.before)}) | "
                     f"{fmt(change.mean_after)} ({len(change.after)}) | {delta} | {_p(change.p_worse)} | {status} |")
    untested = [c.variant for c in changes if c.before and c.after and not c.tested]
    if untested:
        lines += ["", f"Untested (a single seed on a side, so seed noise cannot be told apart; the tolerance alone "
                      f"decides): {', '.join(untested)}."]
    if failed:
        lines += ["", "Regressions:", ""]
        lines += [f"- {c.variant}: " + (f"FID {fmt(c.mean_before)} → {fmt(c.mean_after)} ({c.relative:+.1%}, "
                                        f"p = {_p(c.p_worse)})" if c.after else f"FID {fmt(c.mean_before)} → no ok cell")
                  for c in failed]
    return "\n".join(lines) + "\n"
