"""The raw dataset a source returns, the source record kept in the registry, and shared split helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.errors import DataError

RAW_DIR = Path("data/raw")
"""Where torchvision downloads go when ``data.root`` is not set (relative to the repository root)."""


@dataclass(frozen=True)
class RawDataset:
    """Images and labels of both splits as the source holds them (any square-or-not size, 1 or 3 channels)."""

    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    class_names: tuple[str, ...]
    origin: str  # where it was read from, for messages

    def validate(self) -> None:
        """Raise DataError unless both splits are non-empty uint8 NCHW images with int64 labels in range."""
        splits = {"train": (self.train_images, self.train_labels), "test": (self.test_images, self.test_labels)}
        for split, (images, labels) in splits.items():
            where = f"{self.origin} ({split} split)"
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
                raise DataError(f"{where}: expected uint8 images (N, 1|3, H, W), got {images.dtype} {images.shape}")
            if labels.dtype != np.int64 or labels.shape != (len(images),):
                raise DataError(f"{where}: {len(images)} images but labels {labels.dtype} {labels.shape}")
            if len(images) == 0:
                raise DataError(f"{where}: no images")
            check_label_range(labels, len(self.class_names), where)
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataError(
                f"{self.origin}: train images {self.train_images.shape[1:]} and test images "
                f"{self.test_images.shape[1:]} differ in shape"
            )


@dataclass(frozen=True)
class DatasetSource:
    """A registry entry: how to obtain a :class:`RawDataset` from the ``data`` section of params."""

    load: Callable[[DataConfig], RawDataset]
    description: str


def check_label_range(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Raise DataError naming ``where`` if any label lies outside ``[0, num_classes)``."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: {int(bad.sum())} label(s) outside 0..{num_classes - 1}, "
            f"first at index {first} (value {int(labels[first])})"
        )


def split_train_test(
    images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], *, cfg: DataConfig, origin: str
) -> RawDataset:
    """Split one pool of images by ``cfg.test_fraction`` with ``cfg.split_seed``, stratified when every class allows."""
    from sklearn.model_selection import train_test_split

    if len(images) < 2:
        raise DataError(f"{origin}: {len(images)} image(s); need at least 2 to make a train and a test split")
    index = np.arange(len(images))
    try:
        train_idx, test_idx = train_test_split(
            index, test_size=cfg.test_fraction, random_state=cfg.split_seed, stratify=labels
        )
    except ValueError:  # a class too small to appear in both splits: fall back to a plain random split
        try:
            train_idx, test_idx = train_test_split(index, test_size=cfg.test_fraction, random_state=cfg.split_seed)
        except ValueError as error:
            raise DataError(f"{origin}: cannot split {len(images)} images with data.test_fraction: {error}") from None
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return RawDataset(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], class_names, origin)
