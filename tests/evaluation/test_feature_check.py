"""The feature-space check's mode dropping: what counts as a mode, and a mode always remains."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.evaluation.feature_check import PIXEL_MODES, mode_dropped, pool_modes


def test_every_level_keeps_at_least_one_mode() -> None:
    modes = np.repeat([0, 1], 50)
    for share in (0.2, 0.6, 0.8, 1.0):
        picked = mode_dropped(modes, share, 30, np.random.default_rng(0))
        assert len(picked) == 30 and len(np.unique(modes[picked])) >= 1


def test_dropping_a_growing_share_of_ten_modes_removes_more_of_them() -> None:
    modes = np.repeat(np.arange(10), 20)
    left = [len(np.unique(modes[mode_dropped(modes, share, 100, np.random.default_rng(1))]))
            for share in (0.2, 0.4, 0.6, 0.8)]
    assert left == [8, 6, 4, 2]


def test_two_classes_are_too_few_modes_so_pixel_clusters_stand_in() -> None:
    """With 2 classes dropping 40% or 80% of them is the same set: the ladder uses pixel k-means clusters."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (200, 1, 4, 4), generator=g, dtype=torch.uint8)
    labels = torch.arange(200) % 2
    modes, what = pool_modes(images, labels, num_classes=2)
    assert what == f"{PIXEL_MODES} pixel k-means clusters" and len(np.unique(modes)) == PIXEL_MODES
    modes, what = pool_modes(images, torch.arange(200) % 5, num_classes=5)
    assert what == "classes" and len(np.unique(modes)) == 5
