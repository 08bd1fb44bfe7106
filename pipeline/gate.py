"""The retraining quality gate: per-variant FID of the new ``reports/metrics.json`` against the committed one.

Input is ``dvc metrics diff --all --json <rev>`` (``{file: {"variants.<v>.fid.mean": {"old", "new", "diff"}}}``),
so the comparison is exactly what ``dvc metrics diff`` shows; a variant fails the gate when its mean FID rose by
more than ``tolerance`` (relative) or it lost every ok cell.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pipeline.reporting.formatting import fmt

FID_KEY = re.compile(r"^variants\.(?P<variant>.+)\.fid\.mean$")
STATUSES = ("regressed", "lost", "improved", "unchanged", "new", "removed")


@dataclass(frozen=True)
class FidChange:
    """One variant's mean FID before (committed) and after (this run); None where there is none."""

    variant: str
    before: float | None
    after: float | None
    tolerance: float
    in_grid: bool = True

    @property
    def relative(self) -> float | None:
        """(after − before) / before."""
        if self.before is None or self.after is None or self.before == 0:
            return None
        return (self.after - self.before) / self.before

    @property
    def status(self) -> str:
        if self.before is None:
            return "new" if self.after is not None else "unchanged"
        if self.after is None:  # scored before, nothing now: taken out of the grid, or every cell failed
            return "lost" if self.in_grid else "removed"
        change = self.relative or 0.0
        if change > self.tolerance:
            return "regressed"
        return "improved" if change < -self.tolerance else "unchanged"

    @property
    def fails(self) -> bool:
        return self.status in ("regressed", "lost")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def fid_changes(diff: dict[str, Any], *, metrics_file: str, tolerance: float, grid: list[str]) -> list[FidChange]:
    """Every variant's FID change in ``metrics_file`` of a ``dvc metrics diff --all --json`` result, by name;
    ``grid``: the variants of the current grid (one missing from it is removed, not lost)."""
    entries = diff.get(metrics_file)
    if entries is None:
        raise ValueError(f"dvc metrics diff has no entry for {metrics_file}: is it a metrics file of dvc.yaml?")
    changes = []
    for key, values in entries.items():
        match = FID_KEY.match(key)
        if match:
            changes.append(FidChange(match["variant"], _number(values.get("old")), _number(values.get("new")),
                                     tolerance, match["variant"] in grid))
    return sorted(changes, key=lambda c: c.variant)


def summary_markdown(changes: list[FidChange], *, rev: str, tolerance: float, best_before: str | None,
                     best_after: str | None) -> str:
    """The job summary: verdict, best variant, a table of FID changes, the regressions."""
    failed = [c for c in changes if c.fails]
    verdict = (f"**Quality gate failed**: {len(failed)} variant{'s' if len(failed) != 1 else ''} got worse than the "
               f"{tolerance:.0%} FID tolerance." if failed else
               f"**Quality gate passed**: no variant's mean FID rose by more than {tolerance:.0%}.")
    lines = ["# Scheduled retraining", "", verdict, "",
             f"Best variant: **{best_after or 'none'}** (was {best_before or 'none'} at `{rev}`).", "",
             f"| Variant | FID at `{rev}` | FID now | Change | Status |", "| --- | --- | --- | --- | --- |"]
    for change in changes:
        relative = "" if change.relative is None else f" ({change.relative:+.1%})"
        delta = ("—" if change.before is None or change.after is None
                 else f"{change.after - change.before:+.2f}{relative}")
        status = f"**{change.status}**" if change.fails else change.status
        lines.append(f"| {change.variant} | {fmt(change.before)} | {fmt(change.after)} | {delta} | {status} |")
    if failed:
        lines += ["", "Regressions:", ""]
        lines += [f"- {c.variant}: " + (f"FID {fmt(c.before)} → {fmt(c.after)} ({c.relative:+.1%})" if c.after is not None
                                        else f"FID {fmt(c.before)} → no ok cell") for c in failed]
    return "\n".join(lines) + "\n"
