"""Array transforms applied to every source: subsampling, channel conversion, square resizing (uint8 NCHW)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import DataError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's convert("L")


def subsample(images: np.ndarray, labels: np.ndarray, limit: int | None, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` items, drawn without replacement with ``seed``, kept in their original order."""
    if limit is None or limit >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), size=limit, replace=False))
    return images[keep], labels[keep]


def convert_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Grey → RGB by repetition, RGB → grey by luminance; ``None`` or equal counts leave images as they are."""
    have = images.shape[1]
    if channels is None or channels == have:
        return images
    if (have, channels) == (1, 3):
        return np.repeat(images, 3, axis=1)
    if (have, channels) == (3, 1):
        grey = np.einsum("nchw,c->nhw", images.astype(np.float32), LUMA)[:, None]  # (N, 1, H, W)
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    raise DataError(f"cannot convert {have}-channel images to {channels} channels")


def resize_square(images: np.ndarray, resolution: int, *, chunk: int = 4096) -> np.ndarray:
    """Centre-crop to a square, then resize to ``resolution`` (bilinear, antialiased); uint8 in, uint8 out."""
    n, c, h, w = images.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[:, :, top : top + side, left : left + side]
    if side == resolution:
        return np.ascontiguousarray(images)
    out = np.empty((n, c, resolution, resolution), dtype=np.uint8)
    for start in range(0, n, chunk):
        batch = torch.from_numpy(images[start : start + chunk].astype(np.float32))  # a writable copy
        resized = F.interpolate(
            batch, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
        out[start : start + chunk] = resized.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out
