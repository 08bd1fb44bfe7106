"""Reading what the other stages wrote: per-cell metrics (required, typed records); loss logs, sample grids, FID
curves and the real-vs-real noise floor (optional)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Params
from pipeline.errors import InputError
from pipeline.layout import Cell
from pipeline.records import CellMetrics, NoiseFloor, read_record
from pipeline.reporting.stats import finite

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
    """One cell's metrics as a dict of every :class:`CellMetrics` field; InputError when the file is missing,
    unreadable, of another format or inconsistent with the grid."""
    hint = f"run `python -m stages evaluate --variant {variant} --seed {seed}` (or `dvc repro`) to create it"
    record = read_record(path, CellMetrics, hint=hint)
    problems = []
    if (record.variant, record.seed) != (variant, seed):
        problems.append(f"it describes variant {record.variant!r} seed {record.seed!r}")
    if record.status == "ok" and finite(record.fid) is None:
        problems.append(f"an ok cell needs a finite number for 'fid', got {record.fid!r}")
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems) + f"; {hint}")
    return record.model_dump()


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


def read_noise_floor(path: Path) -> dict[str, Any] | None:
    """The real-vs-real FID file as a dict, keeping the feature spaces with a finite ``fid_mean``; None when it is
    missing or has no such space (the report notes it); InputError when it is not a noise-floor file."""
    if not path.exists():
        return None
    record = read_record(path, NoiseFloor, hint="re-run `python -m stages noise-floor` (or `dvc repro`)")
    floor = record.model_dump()
    floor["feature_spaces"] = {name: entry for name, entry in floor["feature_spaces"].items()
                               if finite(entry["fid_mean"]) is not None}
    return floor if floor["feature_spaces"] else None


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
