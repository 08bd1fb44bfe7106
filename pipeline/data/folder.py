"""The ``folder`` source: your own images, flat (one class "all") or in one sub-folder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.config import DataConfig
from pipeline.data.base import RawDataset, split_train_test
from pipeline.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
FLAT_CLASS = "all"


def _inside(path: Path, root: Path) -> Path:
    """``path`` itself, after checking that it (or its symlink target) lies inside ``root``."""
    if not path.resolve().is_relative_to(root):
        raise DataError(f"{path}: symlink resolves to {path.resolve()}, outside the dataset root {root}")
    return path


def _images_in(folder: Path, root: Path) -> list[Path]:
    candidates = (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    return sorted(p for p in map(lambda p: _inside(p, root), candidates) if not p.is_dir())


def list_images(root: Path) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """``[(image path, class index)]`` and the class names (sorted sub-folder names, or ``("all",)``)."""
    if not root.is_dir():
        raise DataError(f"{root}: data.root is not a folder")
    resolved = root.resolve()
    class_dirs = sorted(_inside(p, resolved) for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    flat = _images_in(root, resolved)
    if not class_dirs:
        if not flat:
            raise DataError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
        return [(path, 0) for path in flat], (FLAT_CLASS,)
    if flat:
        raise DataError(f"{root}: holds both images ({flat[0].name}, ...) and class sub-folders; use one layout")
    items = []
    for index, class_dir in enumerate(class_dirs):
        images = _images_in(class_dir, resolved)
        if not images:
            raise DataError(f"{class_dir}: class folder holds no images")
        items += [(path, index) for path in images]
    return items, tuple(d.name for d in class_dirs)


def read_image(path: Path, resolution: int) -> np.ndarray:
    """One image as RGB uint8 (3, resolution, resolution): centre-cropped to a square, then resized."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: cannot read image: {error}") from None
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:  # Pillow's resize antialiases when shrinking
        image = image.resize((resolution, resolution), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def load_folder(cfg: DataConfig) -> RawDataset:
    """Read every image under ``data.root``; grey (1 channel) when all are grey, else RGB; then split."""
    if cfg.root is None:
        raise DataError("data.root: the 'folder' dataset needs data.root, the folder holding your images")
    items, class_names = list_images(cfg.root)
    images = np.stack([read_image(path, cfg.resolution) for path, _ in items])  # (N, 3, R, R)
    labels = np.array([label for _, label in items], dtype=np.int64)
    is_grey = (images[:, 0] == images[:, 1]).all() and (images[:, 0] == images[:, 2]).all()
    if is_grey:
        images = images[:, :1]
    return split_train_test(images, labels, class_names, cfg=cfg, origin=str(cfg.root))
