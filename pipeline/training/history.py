"""Per-step training outputs: buffered on device between flushes, checked for divergence, written as CSV."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch

from pipeline.io import atomic_write_text
from pipeline.training.distributed import World


class StepBuffer:
    """Detached step outputs kept on device until :meth:`drain` turns them into floats: one transfer (and under
    torchrun one all-reduce, averaging over ranks) per flush, never a device sync per step."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, dict[str, torch.Tensor]]] = []

    def add(self, step: int, values: dict[str, torch.Tensor]) -> None:
        self.pending.append((step, values))

    def __len__(self) -> int:
        return len(self.pending)

    def drain(self, world: World) -> list[dict[str, float]]:
        """The buffered steps as rows ``{"step": n, name: value, ...}``, values averaged over the ranks."""
        if not self.pending:
            return []
        flat = torch.stack([v.detach().float().reshape(()) for _, values in self.pending for v in values.values()])
        numbers = iter(world.mean(flat).tolist())
        rows = [{"step": step, **{name: next(numbers) for name in values}} for step, values in self.pending]
        self.pending = []
        return rows


def first_divergence(rows: list[dict[str, float]], max_abs: float | None) -> tuple[int, str] | None:
    """(step, reason) of the first row with a non-finite value or a logged quantity above ``max_abs`` in magnitude."""
    for row in rows:
        step = int(row["step"])
        values = {k: v for k, v in row.items() if k not in ("step", "images_per_second")}
        bad = [k for k, v in row.items() if not math.isfinite(v)]
        if bad:
            return step, f"non-finite {', '.join(bad)} at step {step}"
        exploded = [f"{k}={v:.3g}" for k, v in values.items() if max_abs is not None and abs(v) > max_abs]
        if exploded:
            return step, f"exploding {', '.join(exploded)} (|value| > train.max_abs_value {max_abs:g}) at step {step}"
    return None


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """``losses.csv``: one row per step, a column per logged quantity."""
    columns = ["step"] + sorted({key for row in history for key in row} - {"step"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())
