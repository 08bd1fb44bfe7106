"""Ranking at equal compute (Lucic et al., NeurIPS 2018: compare GANs at equal computational budget).

Variants differ in cost per step (a gradient penalty costs a second backward pass), so the FID after the same number
of steps is not the FID after the same training time. From each ok cell's FID-over-training curve this reads the FID
of the last snapshot within a budget — of training wall-clock time (the cheapest variant's full training time, half
and a quarter of it) and of generator steps (the shortest run's steps, half and a quarter) — averages it over
seeds and ranks the variants at each budget. Curve FIDs use ``evaluate.curve_samples`` images, so compare them with
each other, not with the final FIDs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.reporting.inputs import FidCurve, fid_curve

FRACTIONS = (0.25, 0.5, 1.0)
AXES = {"seconds": "training wall time (s)", "steps": "generator steps"}


def fid_within(curve: FidCurve, axis: str, budget: float) -> float | None:
    """FID of the last snapshot with a finite FID whose time (or step) is within ``budget``; None if none is."""
    x = curve.seconds if axis == "seconds" else curve.steps
    inside = np.flatnonzero((x <= budget * (1 + 1e-9)) & np.isfinite(curve.fid))
    return float(curve.fid[inside[-1]]) if inside.size else None


def _ends(curves: Mapping[str, Sequence[FidCurve]], axis: str) -> dict[str, float]:
    """Per variant, the mean over its curves of the last snapshot's time (or step)."""
    return {v: float(np.mean([(c.seconds if axis == "seconds" else c.steps)[-1] for c in cs]))
            for v, cs in curves.items() if cs}


def _at_budgets(curves: Mapping[str, Sequence[FidCurve]], axis: str) -> dict[str, Any] | None:
    ends = _ends(curves, axis)
    if not ends or not all(np.isfinite(list(ends.values()))):
        return None
    full = min(ends.values())
    budgets = [full * f for f in FRACTIONS]
    fid: dict[str, list[float | None]] = {}
    for variant, cs in curves.items():
        row = []
        for budget in budgets:
            values = [v for c in cs if (v := fid_within(c, axis, budget)) is not None]
            row.append(float(np.mean(values)) if len(values) == len(cs) else None)  # every seed reached the budget
        fid[variant] = row
    rankings = [sorted((v for v in fid if fid[v][i] is not None), key=lambda v, i=i: fid[v][i])
                for i in range(len(budgets))]
    return {"budgets": budgets, "fractions": list(FRACTIONS), "cheapest": min(ends, key=ends.get), "fid": fid,
            "rankings": rankings}


def equal_compute(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Mean curve FID of every variant at equal time and at equal step budgets, with the ranking at each; None
    without curves."""
    curves: dict[str, list[FidCurve]] = {}
    for cell in cells:
        curve = fid_curve(cell) if cell.get("status") == "ok" else None
        if curve is not None and len(curve.steps):
            curves.setdefault(str(cell["variant"]), []).append(curve)
    if not curves:
        return None
    samples = sorted({int(n) for c in cells if isinstance(n := c.get("curve_num_samples"), int)})
    result = {axis: _at_budgets(curves, axis) for axis in AXES}
    return {**result, "curve_num_samples": samples} if any(result.values()) else None
