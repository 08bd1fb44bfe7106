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
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.reporting.inputs import FidCurve, LossLog
from pipeline.reporting.summary import ClassShares

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


def to_png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def placeholder_png(text: str) -> bytes:
    """A small figure that says why there is nothing to plot."""
    figure = Figure(figsize=(6.0, 1.5), layout="constrained")
    axes = figure.add_subplot()
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()
    return to_png(figure)


def fid_png(summary: Mapping[str, Any], fid_values: Mapping[str, Sequence[float]], *, label: str) -> bytes:
    """Horizontal bars of mean FID per ranked variant (best on top), CI error bars and one dot per seed."""
    ranking = list(summary["ranking"])
    if not ranking:
        return placeholder_png("no variant has a successful cell")
    figure = Figure(figsize=(7.0, 1.4 + 0.5 * len(ranking)), layout="constrained")
    axes = figure.add_subplot()
    stats = [summary["variants"][name]["fid"] for name in ranking]
    means = np.array([s["mean"] for s in stats])
    # error-bar lengths; a log-t interval is around the geometric mean, so clamp in case it misses the arithmetic one
    low = np.array([max(0.0, s["mean"] - s["ci_low"]) if s["ci_low"] is not None else 0.0 for s in stats])
    high = np.array([max(0.0, s["ci_high"] - s["mean"]) if s["ci_high"] is not None else 0.0 for s in stats])
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
    return to_png(figure)


def class_coverage_png(shares: ClassShares | None, *, order: Sequence[str]) -> bytes:
    """Heatmap of predicted-class shares: one row per variant (in ``order``) and a last row for the real data."""
    if shares is None:
        return placeholder_png("no class histograms in the metrics")
    names = [v for v in order if v in shares.generated]
    rows = [shares.generated[v] for v in names]
    labels = list(names)
    if shares.real is not None:
        rows.append(shares.real)
        labels.append("real")
    table = np.vstack(rows)  # (V [+ 1], K)
    k = table.shape[1]
    figure = Figure(figsize=(min(max(6.5, 2.5 + 0.6 * k), 16.0), 1.6 + 0.45 * len(labels)), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(table, cmap="viridis", vmin=0.0, vmax=max(float(table.max()), 1e-9), aspect="auto")
    if k <= 20:
        for (row, col), value in np.ndenumerate(table):
            colour = "white" if value < 0.6 * table.max() else "black"
            axes.text(col, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=colour)
    if shares.real is not None:
        axes.axhline(len(names) - 0.5, color="white", linewidth=2)
    axes.set_xticks(np.arange(k), shares.names, rotation=45 if max(map(len, shares.names)) > 3 else 0, ha="right")
    axes.set_yticks(np.arange(len(labels)), labels)
    axes.set_xlabel("predicted class (domain classifier)")
    axes.set_title("Class share of generated samples (%, mean over ok seeds) vs real data")
    figure.colorbar(image, ax=axes, label="share")
    return to_png(figure)


def fid_curves_png(
    curves: Mapping[str, Mapping[int, FidCurve]], *, diverged: set[tuple[str, int]], label: str
) -> bytes:
    """FID against step and against training wall time; colour per variant, line style per seed."""
    if not curves:
        return placeholder_png("no FID curves in the metrics")
    figure = Figure(figsize=(12.0, 4.2), layout="constrained")
    by_step, by_time = figure.subplots(1, 2)
    values = np.concatenate([c.fid for seeds in curves.values() for c in seeds.values()])
    values = values[np.isfinite(values) & (values > 0)]
    for colour, (variant, seeds) in enumerate(curves.items()):
        for style, (seed, curve) in zip(LINESTYLES * 8, seeds.items()):
            tag = " (diverged)" if (variant, seed) in diverged else ""
            options = {"color": f"C{colour}", "linestyle": style, "marker": ".", "linewidth": 1.2}
            by_step.plot(curve.steps, curve.fid, label=f"{variant} seed {seed}{tag}", **options)
            timed = np.isfinite(curve.seconds)
            by_time.plot(curve.seconds[timed], curve.fid[timed], **options)
    for axes, xlabel in ((by_step, "step"), (by_time, "training wall time (s)")):
        if values.size and values.max() > 5 * values.min():
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(ticker.LogFormatter(labelOnlyBase=False))  # 20, 50 rather than 2×10¹
            axes.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False))
        axes.set_xlabel(xlabel)
        axes.set_ylabel(f"FID ({label})")
        axes.grid(alpha=0.3, which="both")
    figure.legend(loc="outside right upper", fontsize=7)
    figure.suptitle("FID of training snapshots (lower is better)")
    return to_png(figure)


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
    return to_png(figure)


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


def fid_curve_csv(curve: FidCurve) -> str:
    """One cell's FID curve as ``step,train_seconds,fid`` (DVC line plot data); undefined values are ``nan``."""
    rows = [[int(step), float(time), float(fid)] for step, time, fid in zip(curve.steps, curve.seconds, curve.fid)]
    return csv_text(["step", "train_seconds", "fid"], rows)


def feature_check_png(check: Mapping[str, Any] | None, *, labels: Mapping[str, str]) -> bytes:
    """One panel per disturbance: FID against its level, one line per feature space (``labels``: readable names),
    a red marker where FID fails to rise."""
    if check is None or not check.get("feature_spaces"):
        return placeholder_png("no feature-space check (metrics/feature-check.json)")
    spaces = check["feature_spaces"]
    names = list(next(iter(spaces.values()))["disturbances"])
    figure = Figure(figsize=(3.2 * len(names), 3.4), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(names)))
    for axes, name in zip(panels, names):
        for colour, (space, result) in enumerate(spaces.items()):
            entry = result["disturbances"][name]
            levels, fids = np.asarray(entry["levels"], float), np.asarray(entry["fid"], float)
            axes.plot(levels, fids, marker="o", color=f"C{colour}", label=labels.get(space, space))
            drops = np.flatnonzero(np.diff(fids) <= 0) + 1
            axes.scatter(levels[drops], fids[drops], color="red", marker="x", s=60, zorder=3)
        axes.set_title(name)
        axes.set_xlabel(entry["unit"])
        axes.set_ylabel("FID vs clean test split")
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=7)
    figure.suptitle("Feature-space check: FID must rise with every level (red ×: it does not)")
    return to_png(figure)


def pairwise_png(summary: Mapping[str, Any]) -> bytes:
    """Heatmap of P(FID of a row seed < FID of a column seed) for every ordered pair of ranked variants, best
    first; * marks pairs significant after Holm's correction."""
    ranking = list(summary["ranking"])
    if len(ranking) < 2:
        return placeholder_png("fewer than two ranked variants")
    index = {name: i for i, name in enumerate(ranking)}
    matrix = np.full((len(ranking), len(ranking)), np.nan)  # (V, V)
    marks = np.zeros_like(matrix, dtype=bool)
    for pair in summary["pairwise"]:
        i, j = index[pair["a"]], index[pair["b"]]
        matrix[i, j], matrix[j, i] = pair["prob_improvement"], 1 - pair["prob_improvement"]
        marks[i, j] = marks[j, i] = bool(pair["significant"])
    size = 1.6 + 0.6 * len(ranking)
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="RdBu", vmin=0.0, vmax=1.0)
    for (row, col), value in np.ndenumerate(matrix):
        if np.isfinite(value):
            axes.text(col, row, f"{value:.2f}{'*' if marks[row, col] else ''}", ha="center", va="center", fontsize=8,
                      color="white" if abs(value - 0.5) > 0.35 else "black")
    axes.set_xticks(np.arange(len(ranking)), ranking, rotation=45, ha="right")
    axes.set_yticks(np.arange(len(ranking)), ranking)
    axes.set_xlabel("column variant")
    axes.set_ylabel("row variant")
    axes.set_title("P(row FID < column FID) over seed pairs (* significant, Holm)")
    figure.colorbar(image, ax=axes, label="probability of improvement")
    return to_png(figure)


def equal_compute_png(data: Mapping[str, Any] | None) -> bytes:
    """Mean snapshot FID of each variant against the budget: training time (left) and generator steps (right)."""
    if not data:
        return placeholder_png("no FID curves in the metrics")
    axes_data = [(axis, data[axis]) for axis in ("seconds", "steps") if data.get(axis)]
    figure = Figure(figsize=(6.0 * len(axes_data), 3.8), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(axes_data)))
    for axes, (axis, entry) in zip(panels, axes_data):
        for colour, (variant, fids) in enumerate(entry["fid"].items()):
            values = np.array([np.nan if v is None else v for v in fids], dtype=float)
            axes.plot(entry["budgets"], values, marker="o", color=f"C{colour}", label=variant)
        axes.set_xlabel("training wall time (s)" if axis == "seconds" else "generator steps")
        axes.set_ylabel("mean snapshot FID")
        axes.grid(alpha=0.3)
    panels[-1].legend(fontsize=7, loc="upper right")
    figure.suptitle("FID at equal compute (lower is better)")
    return to_png(figure)
