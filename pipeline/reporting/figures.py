"""Report figures (matplotlib, object API with the Agg canvas: no pyplot state) and DVC plot data files.

Each ``*_png`` function returns PNG bytes, so the caller writes them atomically.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.reporting.inputs import LossLog

LINESTYLES = ("-", "--", ":", "-.")


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points that ignores NaN; output has ``len(values) - window + 1`` points."""
    window = max(1, min(int(window), len(values)))
    valid = ~np.isnan(values)
    kernel = np.ones(window)
    sums = np.convolve(np.where(valid, values, 0.0), kernel, mode="valid")
    counts = np.convolve(valid.astype(float), kernel, mode="valid")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def smoothing_window(length: int) -> int:
    """About 1/50 of the run, at least 1 and at most 100 steps."""
    return max(1, min(100, length // 50))


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def fid_png(summary: Mapping[str, Any], fid_values: Mapping[str, Sequence[float]], *, label: str) -> bytes:
    """Horizontal bars of mean FID per ranked variant (best on top), CI error bars and one dot per seed."""
    ranking = list(summary["ranking"])
    figure = Figure(figsize=(7.0, 1.4 + 0.5 * max(len(ranking), 1)), layout="constrained")
    axes = figure.add_subplot()
    if not ranking:
        axes.text(0.5, 0.5, "no variant has a successful cell", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return _png(figure)
    stats = [summary["variants"][name]["fid"] for name in ranking]
    means = np.array([s["mean"] for s in stats])
    low = np.array([s["mean"] - s["ci_low"] if s["ci_low"] is not None else 0.0 for s in stats])
    high = np.array([s["ci_high"] - s["mean"] if s["ci_high"] is not None else 0.0 for s in stats])
    positions = np.arange(len(ranking))
    axes.barh(positions, means, xerr=np.vstack([low, high]), color="#4c72b0", alpha=0.8, capsize=4, ecolor="#222")
    for position, name in zip(positions, ranking):
        seeds = list(fid_values.get(name, []))
        axes.scatter(seeds, [position] * len(seeds), color="#dd8452", zorder=3, s=14, label=None)
    axes.set_yticks(positions, ranking)
    axes.invert_yaxis()
    axes.set_xlabel(f"FID ({label}), lower is better")
    confidence = round(100 * float(summary["confidence"]))
    axes.set_title(f"Mean FID over seeds with {confidence}% CI (dots: seeds)")
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def _limits(curves: list[np.ndarray]) -> tuple[float, float] | None:
    """The range of the finite values, padded by 5%; None when there are none."""
    values = np.concatenate([c[np.isfinite(c)] for c in curves]) if curves else np.array([])
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) if high > low else max(abs(high), 1.0) * 0.1
    return low - pad, high + pad


def losses_png(logs: Mapping[str, Mapping[int, LossLog]], *, diverged: set[tuple[str, int]]) -> bytes:
    """One subplot per variant; each seed a colour, each loss a line style; curves smoothed by a moving average."""
    names = list(logs)
    cols = min(3, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / cols))
    figure = Figure(figsize=(4.6 * cols, 3.3 * rows), layout="constrained")
    grid = figure.subplots(rows, cols, squeeze=False)
    for axes in grid.flat[len(names) :]:
        axes.set_axis_off()
    if not names:
        grid[0, 0].text(0.5, 0.5, "no loss logs found", ha="center", va="center", transform=grid[0, 0].transAxes)
    for axes, variant in zip(grid.flat, names):
        curves: dict[bool, list[np.ndarray]] = {True: [], False: []}  # diverged? -> smoothed curves
        for colour, (seed, log) in enumerate(logs[variant].items()):
            window = smoothing_window(len(log.steps))
            for style, loss in zip(LINESTYLES * 4, log.loss_names()):
                curve = moving_average(log.columns[loss], window)
                curves[(variant, seed) in diverged].append(curve)
                tag = " (diverged)" if (variant, seed) in diverged else ""
                axes.plot(log.steps[window - 1 :], curve, color=f"C{colour}", linestyle=style, linewidth=1.2,
                          label=f"seed {seed} {loss}{tag}")
        # Scale to the healthy seeds: a diverged seed's exploding loss would flatten every other curve.
        limits = _limits(curves[False]) or _limits(curves[True])
        if limits is not None:
            axes.set_ylim(*limits)
        axes.set_title(variant)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle("Training losses (moving average)")
    return _png(figure)


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with ``\\n`` line ends; None becomes an empty field, floats keep full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def fid_plot_csv(summary: Mapping[str, Any]) -> str:
    """``variant,fid_mean,ci_low,ci_high,n`` for ranked variants, best first (DVC bar plot data)."""
    rows = []
    for name in summary["ranking"]:
        stat = summary["variants"][name]["fid"]
        # A single seed has no interval: repeat the mean so every field is numeric for Vega.
        low = stat["ci_low"] if stat["ci_low"] is not None else stat["mean"]
        high = stat["ci_high"] if stat["ci_high"] is not None else stat["mean"]
        rows.append([name, stat["mean"], low, high, stat["n"]])
    return csv_text(["variant", "fid_mean", "ci_low", "ci_high", "n"], rows)


def loss_plot_csv(log: LossLog) -> str:
    """One cell's losses as ``step,<loss>,...`` (DVC line plot data, x = step).

    Non-finite values are written as ``nan``, which Vega drops from a line (an empty field would read as 0).
    """
    names = log.loss_names()
    rows = [[int(step), *map(float, values)] for step, *values in zip(log.steps, *(log.columns[n] for n in names))]
    return csv_text(["step", *names], rows)
