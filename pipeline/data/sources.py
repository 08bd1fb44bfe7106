"""The dataset registry: one :class:`DatasetSource` per name in ``pipeline.config.DatasetName``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.data.base import RAW_DIR, DatasetSource, RawDataset, split_train_test
from pipeline.data.folder import load_folder
from pipeline.data.idx import idx_source
from pipeline.errors import DataError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_DIRNAME = "cifar-10-batches-py"

SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),  # Debian package dataset-fashion-mnist
    "mnist": (),
}
"""Local copies searched, in order, when ``data.root`` is not set (before ``data/raw`` and downloading)."""


def load_cifar10(cfg: DataConfig) -> RawDataset:
    """CIFAR-10 via torchvision from ``data.root`` (or ``data/raw``), downloading only if allowed."""
    import torchvision.datasets

    root = cfg.root if cfg.root is not None else RAW_DIR
    splits = []
    for train in (True, False):
        try:
            dataset = torchvision.datasets.CIFAR10(str(root), train=train, download=cfg.download)
        except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
            hint = "" if cfg.download else " and data.download is false"
            raise DataError(f"{root / CIFAR10_DIRNAME}: CIFAR-10 not found or corrupted{hint} ({error})") from None
        except OSError as error:
            raise DataError(f"{root / CIFAR10_DIRNAME}: cannot read or download CIFAR-10: {error}") from None
        images = np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2))  # (N, H, W, 3) -> (N, 3, H, W)
        splits += [images, np.asarray(dataset.targets, dtype=np.int64)]
        class_names = tuple(dataset.classes)
    return RawDataset(*splits, class_names=class_names, origin=str(root / CIFAR10_DIRNAME))


def load_digits(cfg: DataConfig) -> RawDataset:
    """scikit-learn's bundled 8×8 digits (offline), 0..16 scaled to 0..255, split by ``data.test_fraction``."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255 / 16)).clip(0, 255).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    return split_train_test(images, labels, DIGIT_CLASSES, cfg=cfg, origin="sklearn.datasets.load_digits")


DATASETS: dict[str, DatasetSource] = {
    "fashion-mnist": DatasetSource(
        idx_source(
            FASHION_MNIST_CLASSES, torchvision_class="FashionMNIST", system_dirs=lambda: SYSTEM_DIRS["fashion-mnist"]
        ),
        "Zalando Fashion-MNIST, 28×28 grey, 60k/10k: IDX files from data.root, the Debian copy, or a download.",
    ),
    "mnist": DatasetSource(
        idx_source(DIGIT_CLASSES, torchvision_class="MNIST", system_dirs=lambda: SYSTEM_DIRS["mnist"]),
        "MNIST digits, 28×28 grey, 60k/10k: IDX files from data.root or a download.",
    ),
    "cifar10": DatasetSource(load_cifar10, "CIFAR-10, 32×32 RGB, 50k/10k, torchvision layout or a download."),
    "digits": DatasetSource(load_digits, "scikit-learn's 8×8 digits (1797 images), offline; for quick tests."),
    "folder": DatasetSource(load_folder, "Your images in data.root: flat, or one sub-folder per class."),
}


def get_source(name: str) -> DatasetSource:
    """The registered source ``name``; DataError listing the valid names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset '{name}': choose one of {', '.join(sorted(DATASETS))}") from None
