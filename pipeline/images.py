"""Image grids as PNG files (written atomically)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from pipeline.io import atomic_write_bytes


def grid_image(images: torch.Tensor, *, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """uint8 (N, C, H, W) → one PIL image tiling them (``nrow`` per row, default square)."""
    nrow = nrow or max(1, math.isqrt(images.size(0)))
    grid = make_grid(images.float() / 255.0, nrow=nrow, padding=padding, pad_value=1.0)  # (3, H', W')
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def save_grid(images: torch.Tensor, path: str | Path, *, nrow: int | None = None) -> Path:
    """Write the grid of ``images`` as a PNG at ``path``."""
    buffer = io.BytesIO()
    grid_image(images, nrow=nrow).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
