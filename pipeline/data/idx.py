"""IDX files (the MNIST family's format): a validating parser and the lookup of the four files of a dataset.

Format: big-endian ``uint32`` magic ``0x000008NN`` (``08`` = unsigned bytes, ``NN`` = number of dimensions),
``NN`` big-endian ``uint32`` sizes, then the bytes in C order. Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.data.base import RAW_DIR, RawDataset, check_label_range
from pipeline.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, H, W)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path}: corrupt or truncated gzip file ({error or type(error).__name__})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read file: {error}") from None


def read_idx(path: str | Path, *, magic: int) -> np.ndarray:
    """Parse an IDX file (optionally ``.gz``) whose magic must be ``magic``; raises DataError naming the file."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes, too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} (not this kind of IDX file)"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if (held := len(data) - header) != expected:
        shape = " x ".join(map(str, dims))
        raise DataError(f"{path}: header says {shape} = {expected} bytes of data, file holds {held}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (plain or ``.gz``); None if it holds none; DataError if only some."""
    found: dict[str, Path] = {}
    for key, stem in IDX_FILES.items():
        for name in (stem, f"{stem}.gz"):
            if (folder / name).is_file():
                found[key] = folder / name
                break
    if not found:
        return None
    missing = [f"{IDX_FILES[key]}[.gz]" for key in IDX_FILES if key not in found]
    if missing:
        raise DataError(f"{folder}: incomplete IDX dataset, missing {', '.join(missing)}")
    return found


def load_idx_dataset(files: dict[str, Path], class_names: Sequence[str]) -> RawDataset:
    """Read and cross-check the four IDX files: images (N, 1, H, W) uint8, labels int64 in range."""
    arrays = {}
    for split in ("train", "test"):
        images_path, labels_path = files[f"{split}_images"], files[f"{split}_labels"]
        images = read_idx(images_path, magic=IMAGES_MAGIC)
        labels = read_idx(labels_path, magic=LABELS_MAGIC).astype(np.int64)
        if len(images) != len(labels):
            raise DataError(f"{images_path}: {len(images)} images but {labels_path} holds {len(labels)} labels")
        check_label_range(labels, len(class_names), str(labels_path))
        arrays[split] = (images[:, None], labels)  # (N, H, W) -> (N, 1, H, W)
    origin = str(files["train_images"].parent)
    return RawDataset(*arrays["train"], *arrays["test"], class_names=tuple(class_names), origin=origin)


def idx_source(
    class_names: Sequence[str], *, torchvision_class: str, system_dirs: Callable[[], Sequence[Path]]
) -> Callable[[DataConfig], RawDataset]:
    """A loader that looks for the IDX files, then (if allowed) downloads them with torchvision.

    With ``data.root`` set it looks in ``root`` and torchvision's ``root/<Class>/raw``; otherwise in
    ``system_dirs()`` and ``data/raw/<Class>/raw``. Downloads go to ``root`` (or ``data/raw``).
    """

    def load(cfg: DataConfig) -> RawDataset:
        target = cfg.root if cfg.root is not None else RAW_DIR
        candidates = [cfg.root] if cfg.root is not None else list(system_dirs())
        candidates.append(target / torchvision_class / "raw")
        for folder in candidates:
            if (files := find_idx_files(folder)) is not None:
                return load_idx_dataset(files, class_names)
        looked = ", ".join(str(folder) for folder in candidates)
        if not cfg.download:
            raise DataError(
                f"no {torchvision_class} IDX files found (looked in {looked}) and data.download is false: "
                f"put the four files {', '.join(IDX_FILES.values())} (or .gz) in data.root, or allow downloads"
            )
        _download(torchvision_class, target)
        files = find_idx_files(target / torchvision_class / "raw")
        if files is None:
            raise DataError(f"{target / torchvision_class / 'raw'}: download finished but no IDX files are there")
        return load_idx_dataset(files, class_names)

    return load


def _download(torchvision_class: str, root: Path) -> None:
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, torchvision_class)
    try:
        dataset_class(str(root), train=True, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise DataError(f"{root}: downloading {torchvision_class} failed: {error}") from None
