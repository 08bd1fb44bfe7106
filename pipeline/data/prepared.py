"""The prepared dataset on disk (``data/prepared/``): writing it atomically, loading and verifying it.

Files: ``{train,test}_images.npy`` (N, C, H, W) uint8, ``{train,test}_labels.npy`` (N,) int64, ``meta.json``.
``meta["fingerprint"]`` is the SHA-256 of the four files' SHA-256s; later stages key their caches with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pipeline import layout
from pipeline.config import DataConfig
from pipeline.data.sources import get_source
from pipeline.data.transforms import convert_channels, resize_square, subsample
from pipeline.errors import DataError
from pipeline.io import atomic_directory, atomic_write_json, read_json, sha256_file

FORMAT_VERSION = 1
META_FILE = "meta.json"
ARRAY_FILES = ("train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy")
META_KEYS = (
    "dataset", "resolution", "channels", "shape", "num_classes", "class_names", "counts", "sha256", "fingerprint",
)  # fmt: skip
RERUN_HINT = "run `python -m stages prepare` (or `dvc repro prepare`)"

Split = Literal["train", "test"]


def fingerprint(hashes: dict[str, str]) -> str:
    """SHA-256 over ``"<file name> <sha256>\\n"`` lines of the array files, in sorted name order."""
    lines = "".join(f"{name} {hashes[name]}\n" for name in sorted(hashes))
    return hashlib.sha256(lines.encode()).hexdigest()


def prepare_dataset(cfg: DataConfig, out_dir: Path = layout.PREPARED_DIR) -> dict[str, Any]:
    """Load ``cfg.dataset``, validate, subsample, convert and resize it, then replace ``out_dir`` whole.

    Nothing is written before every check has passed; on any failure ``out_dir`` keeps its previous content.
    Returns the meta dict written to ``meta.json``.
    """
    raw = get_source(cfg.dataset).load(cfg)
    raw.validate()
    train_images, train_labels = subsample(
        raw.train_images, raw.train_labels, cfg.max_train_samples, seed=cfg.split_seed
    )

    def finish(images: np.ndarray) -> np.ndarray:
        return resize_square(convert_channels(images, cfg.channels), cfg.resolution)

    arrays = {
        "train_images.npy": finish(train_images),
        "train_labels.npy": np.ascontiguousarray(train_labels),
        "test_images.npy": finish(raw.test_images),
        "test_labels.npy": np.ascontiguousarray(raw.test_labels),
    }
    shape = list(arrays["train_images.npy"].shape[1:])
    with atomic_directory(out_dir) as tmp:
        for name, array in arrays.items():
            np.save(tmp / name, array, allow_pickle=False)
        hashes = {name: sha256_file(tmp / name) for name in ARRAY_FILES}
        meta = {
            "format_version": FORMAT_VERSION,
            "dataset": cfg.dataset,
            "resolution": cfg.resolution,
            "channels": shape[0],
            "shape": shape,
            "num_classes": len(raw.class_names),
            "class_names": list(raw.class_names),
            "counts": {"train": len(train_labels), "test": len(raw.test_labels)},
            "split_seed": cfg.split_seed,
            "max_train_samples": cfg.max_train_samples,
            "sha256": hashes,
            "fingerprint": fingerprint(hashes),
        }
        atomic_write_json(tmp / META_FILE, meta)
    return meta


def load_meta(root: Path = layout.PREPARED_DIR) -> dict[str, Any]:
    """The prepared dataset's ``meta.json``; DataError if it is missing or malformed."""
    path = Path(root) / META_FILE
    meta = read_json(path, what="prepared dataset", hint=RERUN_HINT, error=DataError)
    missing = [key for key in META_KEYS if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; {RERUN_HINT}")
    return meta


def _load_array(path: Path, *, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: missing from the prepared dataset; {RERUN_HINT}") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable ({error}); {RERUN_HINT}") from None
    if array.dtype != dtype or array.shape != shape:
        raise DataError(
            f"{path}: holds {array.dtype} {array.shape}, meta.json expects {np.dtype(dtype)} {shape}; {RERUN_HINT}"
        )
    return array


def load_prepared(split: Split, root: Path = layout.PREPARED_DIR) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split, shapes checked against ``meta.json``."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split '{split}': choose train or test")
    root = Path(root)
    meta = load_meta(root)
    count = meta["counts"][split]
    images = _load_array(root / f"{split}_images.npy", dtype=np.uint8, shape=(count, *meta["shape"]))
    labels = _load_array(root / f"{split}_labels.npy", dtype=np.int64, shape=(count,))
    return torch.from_numpy(images), torch.from_numpy(labels)


def verify_prepared(root: Path = layout.PREPARED_DIR) -> dict[str, Any]:
    """Check every array file's SHA-256 and the fingerprint against ``meta.json``; returns the meta dict."""
    root = Path(root)
    meta = load_meta(root)
    for name in ARRAY_FILES:
        path = root / name
        if not path.is_file():
            raise DataError(f"{path}: missing from the prepared dataset; {RERUN_HINT}")
        if sha256_file(path) != meta["sha256"].get(name):
            raise DataError(f"{path}: SHA-256 differs from meta.json (file changed since prepare); {RERUN_HINT}")
    if fingerprint({name: meta["sha256"][name] for name in ARRAY_FILES}) != meta["fingerprint"]:
        raise DataError(f"{root / META_FILE}: fingerprint does not match the file hashes; {RERUN_HINT}")
    return meta
