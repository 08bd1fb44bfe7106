"""Reading what the other stages wrote: per-cell metrics (required); loss logs, sample grids, FID curves and the
real-vs-real noise floor (optional)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.layout import Cell
from pipeline.config import Params
from pipeline.errors import InputError
from pipeline.io import read_json
from pipeline.reporting.stats import STATUSES, finite

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class LossLog:
    """One cell's training log: the step column and one array per other column."""

    steps: np.ndarray  # (T,)
    columns: dict[str, np.ndarray]  # name -> (T,), NaN where unparsable or non-finite

    def loss_names(self) -> list[str]:
        """Columns that are losses (``loss`` or ``loss_*``); all numeric columns but throughput when none is."""
        names = [n for n in self.columns if n == "loss" or n.startswith("loss_")]
        return names or [n for n in self.columns if n != "images_per_second"]


@dataclass(frozen=True)
class FidCurve:
    """One cell's FID over training: the snapshots' steps, training wall times and FIDs (NaN where undefined)."""

    steps: np.ndarray  # (P,)
    seconds: np.ndarray  # (P,)
    fid: np.ndarray  # (P,)


def read_cell(path: Path, variant: str, seed: int) -> dict[str, Any]:
    """One cell's metrics; raises InputError when the file is missing, unreadable or inconsistent with the grid."""
    hint = f"run `python -m stages evaluate --variant {variant} --seed {seed}` (or `dvc repro`) to create it"
    cell = read_json(path, what=f"metrics file of grid cell {variant}-{seed}", hint=hint)
    if not isinstance(cell, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(cell).__name__}; {hint}")
    problems = []
    if cell.get("variant") != variant or cell.get("seed") != seed:
        problems.append(f"it describes variant {cell.get('variant')!r} seed {cell.get('seed')!r}")
    if cell.get("status") not in STATUSES:
        problems.append(f"status must be one of {', '.join(STATUSES)}, got {cell.get('status')!r}")
    elif cell["status"] == "ok" and finite(cell.get("fid")) is None:
        problems.append(f"an ok cell needs a finite number for 'fid', got {cell.get('fid')!r}")
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems) + f"; {hint}")
    return cell


def read_cells(params: Params, *, root: Path) -> list[dict[str, Any]]:
    """The metrics of every grid cell, variants then seeds in params order."""
    return [
        read_cell(root / Cell(variant, seed).metrics, variant, seed)
        for variant in params.grid.variants
        for seed in params.grid.seeds
    ]


def _to_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def read_losses(path: Path) -> LossLog | None:
    """Parse ``losses.csv`` (header ``step,<metric>,...``); None when missing, empty or without a step column."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if len(rows) < 2 or "step" not in rows[0]:
        return None
    header = [name.strip() for name in rows[0]]
    table = np.array([[_to_float(v) for v in row] for row in rows[1:] if len(row) == len(header)], dtype=float)
    if table.size == 0:
        return None
    step_index = header.index("step")
    keep = ~np.isnan(table[:, step_index])
    table = table[keep]
    columns = {name: table[:, i] for i, name in enumerate(header) if i != step_index}
    return LossLog(steps=table[:, step_index], columns=columns)


EVALUATOR_KEYS = ("kind", "kind_reason", "quality_metric", "quality", "quality_chance", "quality_at_init", "weak",
                  "weak_reason", "test_accuracy", "min_accuracy", "knn_accuracy", "knn_chance", "knn_accuracy_at_init")


def read_evaluator(path: Path) -> dict[str, Any] | None:
    """What ``models/evaluator.json`` says of the evaluator (kind, why, quality figure, weak or not); None when the
    file is missing, unreadable or does not name its kind."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("kind") is None:
        return None
    return {key: data.get(key) for key in EVALUATOR_KEYS}


def is_png(path: Path) -> bool:
    """Whether ``path`` exists and starts with the PNG signature."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def fid_curve(cell: Mapping[str, Any]) -> FidCurve | None:
    """The cell's ``fid_curve`` sorted by step; None when absent or without a point that has a step."""
    points = cell.get("fid_curve")
    if not isinstance(points, list):
        return None
    rows = [
        [step, finite(p.get("train_seconds")), finite(p.get("fid"))]
        for p in points
        if isinstance(p, dict) and (step := finite(p.get("step"))) is not None
    ]
    if not rows:
        return None
    table = np.array(rows, dtype=float)  # (P, 3): step, train_seconds, fid; None becomes NaN
    table = table[np.argsort(table[:, 0], kind="stable")]
    return FidCurve(steps=table[:, 0], seconds=table[:, 1], fid=table[:, 2])


def _noise_space(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, dict) or finite(entry.get("fid_mean")) is None:
        return None
    values = entry.get("fid_values")
    return {
        "fid_mean": finite(entry["fid_mean"]),
        "fid_std": finite(entry.get("fid_std")),
        "fid_values": [v for x in values if (v := finite(x)) is not None] if isinstance(values, list) else [],
    }


def read_noise_floor(path: Path) -> dict[str, Any] | None:
    """The real-vs-real FID file, keeping the feature spaces with a finite ``fid_mean``; None when missing,
    unreadable or without any such space."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    spaces = data.get("feature_spaces") if isinstance(data, dict) else None
    if not isinstance(spaces, dict):
        return None
    kept = {str(name): clean for name, entry in spaces.items() if (clean := _noise_space(entry)) is not None}
    if not kept:
        return None
    meta = {key: data.get(key) for key in ("reference", "subset_split", "num_samples", "repeats")}
    return {**meta, "feature_spaces": kept}


def read_feature_check(path: Path) -> dict[str, Any] | None:
    """``metrics/feature-check.json`` (FID per disturbance level per feature space); None when missing or
    unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("feature_spaces"), dict):
        return None
    return data
