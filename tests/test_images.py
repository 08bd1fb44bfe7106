"""Sample grids: the hand-written tiling matches torchvision's make_grid pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.utils import make_grid

from pipeline.images import grid_image, save_grid


@pytest.mark.parametrize(("count", "channels", "nrow"), [(16, 1, None), (10, 3, 4), (5, 1, 8), (3, 3, None)])
def test_grid_matches_torchvision(count: int, channels: int, nrow: int | None) -> None:
    images = torch.randint(0, 256, (count, channels, 6, 5), generator=torch.Generator().manual_seed(count),
                           dtype=torch.uint8)
    expected = make_grid(images.float() / 255, nrow=nrow or max(1, int(count**0.5)), padding=2, pad_value=1.0)
    expected = (expected * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(grid_image(images, nrow=nrow)), expected)


def test_save_grid_writes_a_png(tmp_path) -> None:
    path = save_grid(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
