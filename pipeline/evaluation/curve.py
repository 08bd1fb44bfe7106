"""FID over training: score each training snapshot with a cheap sample count, and how fast a cell converged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from pipeline.evaluation.features import Features
from pipeline.evaluation.uncertainty import FrechetToReference
from pipeline.generators import load_generator
from pipeline.layout import list_steps

TOLERANCE = 0.1  # "within 10% of the final FID"


def score_snapshots(
    folder: Path, features: Features, distance: FrechetToReference, *, num_samples: int, seed: int, batch_size: int,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """One point per snapshot in ``folder``: step, training wall time and FID of ``num_samples`` images.

    Every snapshot draws the same noise, so the curve shows the network changing, not the sample. FID is None
    where the snapshot's images are not finite (a diverging network). Snapshots sample on ``device``.
    """
    points = []
    for step, path in list_steps(folder):
        generator, info = load_generator(path, device=device, channels_last=True)
        images = generator.sample(num_samples, generator=torch.Generator().manual_seed(seed), batch_size=batch_size)
        feats = features(images)[features.layers["fid"]]
        fid = distance(feats) if bool(torch.isfinite(feats).all()) else None
        points.append({"step": step, "train_seconds": float(info.get("train_seconds", math.nan)),
                       "fid": fid if fid is not None and math.isfinite(fid) else None})
    return points


def time_to_within(points: list[dict[str, Any]], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Training time and step of the first point whose FID ≤ (1 + tolerance) × the last point's FID (None if none)."""
    finite = [p for p in points if p["fid"] is not None]
    if not finite or points[-1]["fid"] is None:
        return {"time_to_within_10pct": None, "steps_to_within_10pct": None}
    target = (1 + tolerance) * points[-1]["fid"]
    first = next(p for p in finite if p["fid"] <= target)
    return {"time_to_within_10pct": first["train_seconds"], "steps_to_within_10pct": first["step"]}
