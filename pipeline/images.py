"""Image grids as PNG files (written atomically).

Tiled by hand rather than with ``torchvision.utils.make_grid``: importing torchvision pulls in ``torch._dynamo``
(~4 s of every train stage's start-up on 2 cores); a test checks the tiles against make_grid's.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image

from pipeline.io import atomic_write_bytes


def grid_image(images: torch.Tensor, *, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """uint8 (N, C, H, W) → one RGB PIL image tiling them (``nrow`` per row, default square) on white padding."""
    n, channels, height, width = images.shape
    columns = min(nrow or max(1, math.isqrt(n)), n)
    rows = math.ceil(n / columns)
    grid = torch.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), 255,
                      dtype=torch.uint8)  # (H', W', 3)
    tiles = images.expand(-1, 3, -1, -1) if channels == 1 else images
    for index, tile in enumerate(tiles):
        top, left = (padding + k * (size + padding) for k, size in zip(divmod(index, columns), (height, width)))
        grid[top:top + height, left:left + width] = tile.permute(1, 2, 0)
    return Image.fromarray(grid.numpy())


def save_grid(images: torch.Tensor, path: str | Path, *, nrow: int | None = None) -> Path:
    """Write the grid of ``images`` as a PNG at ``path``."""
    buffer = io.BytesIO()
    grid_image(images, nrow=nrow).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
