"""Dataset layer: IDX parsing and validation, sources, transforms, prepared files and their hashes."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pipeline.config
import pipeline.data.idx
import pipeline.data.sources
from pipeline.config import DataConfig
from pipeline.data import (
    DATASETS,
    FASHION_MNIST_CLASSES,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    SYSTEM_DIRS,
    convert_channels,
    fingerprint,
    load_meta,
    load_prepared,
    prepare_dataset,
    read_idx,
    resize_square,
    verify_prepared,
)
from pipeline.errors import DataError

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = (0x0800 | array.ndim) if magic is None else magic
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def make_idx_dataset(folder: Path, *, gz: bool = True, n_train: int = 12, n_test: int = 6) -> dict[str, np.ndarray]:
    """Four small IDX files of 28x28 images with labels 0..9; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) + 3) % 10,
    }
    for key, array in arrays.items():
        write_idx(folder / (IDX_NAMES[key] + (".gz" if gz else "")), array)
    return arrays


@pytest.fixture
def idx_root(tmp_path: Path) -> Path:
    make_idx_dataset(tmp_path / "fmnist")
    return tmp_path / "fmnist"


@pytest.fixture
def good_prepared(tmp_path: Path) -> tuple[Path, dict]:
    """A previously prepared output that failing runs must leave intact."""
    out = tmp_path / "prepared"
    return out, prepare_dataset(DataConfig(dataset="digits", resolution=8), out)


def fashion(root: Path, **overrides) -> DataConfig:
    return DataConfig(dataset="fashion-mnist", root=root, download=False, **overrides)


# --- registry -------------------------------------------------------------------------------------------


def test_registry_has_exactly_the_config_names() -> None:
    assert set(DATASETS) == set(typing.get_args(pipeline.config.DatasetName))


# --- IDX parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / f"x{suffix}", images)
    np.testing.assert_array_equal(read_idx(path, magic=IMAGES_MAGIC), images)
    labels = np.array([1, 0, 9], dtype=np.uint8)
    path = write_idx(tmp_path / f"y{suffix}", labels)
    np.testing.assert_array_equal(read_idx(path, magic=LABELS_MAGIC), labels)


def test_read_idx_rejects_wrong_magic_and_short_data(tmp_path: Path) -> None:
    labels_file = write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"wrong magic number 0x00000801, expected 0x00000803") as info:
        read_idx(labels_file, magic=IMAGES_MAGIC)
    assert str(labels_file) in str(info.value)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 4, 4), np.uint8))[:-5])
    with pytest.raises(DataError, match=r"header says 2 x 4 x 4 = 32 bytes of data, file holds 27"):
        read_idx(short, magic=IMAGES_MAGIC)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Debian dataset-fashion-mnist not installed"
)
def test_debian_fashion_mnist_files_parse() -> None:
    folder = Path("/usr/share/datasets/fashion-mnist")
    files = pipeline.data.idx.find_idx_files(folder)
    assert files is not None
    assert read_idx(files["train_images"], magic=IMAGES_MAGIC).shape == (60000, 28, 28)
    assert read_idx(files["test_images"], magic=IMAGES_MAGIC).shape == (10000, 28, 28)
    train_labels = read_idx(files["train_labels"], magic=LABELS_MAGIC)
    assert train_labels.shape == (60000,)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert read_idx(files["test_labels"], magic=LABELS_MAGIC).shape == (10000,)


# --- prepare from IDX -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_prepare_fashion_mnist_from_root(tmp_path: Path, gz: bool) -> None:
    arrays = make_idx_dataset(tmp_path / "src", gz=gz)
    out = tmp_path / "out"
    meta = prepare_dataset(fashion(tmp_path / "src", resolution=32), out)

    assert meta["dataset"] == "fashion-mnist"
    assert (meta["resolution"], meta["channels"], meta["shape"]) == (32, 1, [1, 32, 32])
    assert meta["num_classes"] == 10 and meta["class_names"] == list(FASHION_MNIST_CLASSES)
    assert meta["counts"] == {"train": 12, "test": 6}
    assert json.loads((out / "meta.json").read_text()) == meta
    for name in ("train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy"):
        assert meta["sha256"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    expected_fp = hashlib.sha256(
        "".join(f"{name} {meta['sha256'][name]}\n" for name in sorted(meta["sha256"])).encode()
    ).hexdigest()
    assert meta["fingerprint"] == expected_fp

    images, labels = load_prepared("train", out)
    assert images.dtype == torch.uint8 and images.shape == (12, 1, 32, 32)
    assert labels.dtype == torch.int64 and labels.tolist() == arrays["train_labels"].tolist()
    _, test_labels = load_prepared("test", out)
    assert test_labels.tolist() == arrays["test_labels"].tolist()
    assert verify_prepared(out) == meta == load_meta(out)


def test_prepare_at_source_resolution_keeps_pixels(tmp_path: Path) -> None:
    arrays = make_idx_dataset(tmp_path / "src")
    cfg = DataConfig(dataset="mnist", root=tmp_path / "src", download=False, resolution=28)
    meta = prepare_dataset(cfg, tmp_path / "out")
    assert meta["class_names"] == [str(d) for d in range(10)]
    images, _ = load_prepared("test", tmp_path / "out")
    np.testing.assert_array_equal(images[:, 0].numpy(), arrays["test_images"])


def test_fingerprint_is_stable_and_tracks_content(tmp_path: Path, idx_root: Path) -> None:
    first = prepare_dataset(fashion(idx_root), tmp_path / "a")
    second = prepare_dataset(fashion(idx_root), tmp_path / "b")
    assert first["fingerprint"] == second["fingerprint"] and first["sha256"] == second["sha256"]
    smaller = prepare_dataset(fashion(idx_root, resolution=16), tmp_path / "c")
    assert smaller["fingerprint"] != first["fingerprint"]
    assert fingerprint(first["sha256"]) == first["fingerprint"]


def test_max_train_samples_is_a_deterministic_subset(tmp_path: Path, idx_root: Path) -> None:
    meta = prepare_dataset(fashion(idx_root, max_train_samples=5, split_seed=3), tmp_path / "a")
    again = prepare_dataset(fashion(idx_root, max_train_samples=5, split_seed=3), tmp_path / "b")
    other = prepare_dataset(fashion(idx_root, max_train_samples=5, split_seed=4), tmp_path / "c")
    assert meta["counts"] == {"train": 5, "test": 6}
    assert meta["fingerprint"] == again["fingerprint"] != other["fingerprint"]


def test_default_locations_then_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_idx_dataset(tmp_path / "system")
    monkeypatch.setitem(SYSTEM_DIRS, "fashion-mnist", (tmp_path / "nowhere", tmp_path / "system"))
    meta = prepare_dataset(DataConfig(dataset="fashion-mnist", download=False), tmp_path / "a")
    assert meta["counts"] == {"train": 12, "test": 6}

    monkeypatch.setitem(SYSTEM_DIRS, "fashion-mnist", (tmp_path / "nowhere",))
    with pytest.raises(DataError, match="data.download is false") as info:
        prepare_dataset(DataConfig(dataset="fashion-mnist", download=False), tmp_path / "b")
    assert str(tmp_path / "nowhere") in str(info.value) and "data/raw/FashionMNIST/raw" in str(info.value)

    calls = []

    def fake_download(torchvision_class: str, root: Path) -> None:  # what torchvision leaves behind
        calls.append((torchvision_class, root))
        make_idx_dataset(root / torchvision_class / "raw", gz=False, n_train=4, n_test=2)

    monkeypatch.setattr(pipeline.data.idx, "_download", fake_download)
    meta = prepare_dataset(DataConfig(dataset="fashion-mnist", download=True), tmp_path / "c")
    assert calls == [("FashionMNIST", Path("data/raw"))] and meta["counts"] == {"train": 4, "test": 2}
    # the downloaded copy is found on the next run, without downloading again
    prepare_dataset(DataConfig(dataset="fashion-mnist", download=True), tmp_path / "d")
    assert len(calls) == 1


# --- corrupt sources: DataError naming the file; no output; previous output intact -------------------


def _truncate_gz(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    return path


def _wrong_magic(folder: Path) -> Path:
    path = folder / "t10k-images-idx3-ubyte.gz"
    return write_idx(path, np.zeros((6, 28, 28), np.uint8), magic=0x00000802)


def _count_mismatch(folder: Path) -> Path:
    return write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))


def _label_out_of_range(folder: Path) -> Path:
    return write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10, 4, 5], np.uint8))


def _size_mismatch(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((12, 28, 28), np.uint8)) + b"extra"))
    return path


def _missing_file(folder: Path) -> Path:
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    return folder


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_truncate_gz, "corrupt or truncated gzip"),
        (_wrong_magic, "wrong magic number 0x00000802"),
        (_count_mismatch, "12 images but .* holds 11 labels"),
        (_label_out_of_range, r"1 label\(s\) outside 0..9, first at index 3 \(value 10\)"),
        (_size_mismatch, "file holds 9413"),
        (_missing_file, r"missing t10k-labels-idx1-ubyte\[.gz\]"),
    ],
)
def test_corrupt_idx_raises_and_writes_nothing(
    tmp_path: Path, idx_root: Path, good_prepared: tuple[Path, dict], corrupt, message: str
) -> None:
    bad_path = corrupt(idx_root)
    fresh = tmp_path / "fresh"
    for out in (fresh, good_prepared[0]):
        with pytest.raises(DataError, match=message) as info:
            prepare_dataset(fashion(idx_root), out)
        assert str(bad_path) in str(info.value)
    assert not fresh.exists()
    assert verify_prepared(good_prepared[0])["fingerprint"] == good_prepared[1]["fingerprint"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fmnist", "prepared"]  # no temp folders left


def test_missing_idx_files_without_download(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="data.download is false") as info:
        prepare_dataset(fashion(tmp_path / "empty"), tmp_path / "out")
    assert str(tmp_path / "empty") in str(info.value)
    assert not (tmp_path / "out").exists()


def test_cifar10_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found or corrupted and data.download is false") as info:
        prepare_dataset(DataConfig(dataset="cifar10", root=tmp_path, download=False), tmp_path / "out")
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)


def test_cifar10_layout_is_converted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    class FakeCifar:  # torchvision's attributes: data (N, H, W, 3) uint8, targets list, classes list
        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert download is False
            n = 4 if train else 2
            self.data = np.zeros((n, 32, 32, 3), np.uint8)
            self.data[..., 0] = 200  # red channel
            self.targets = [i % 2 for i in range(n)]
            self.classes = ["airplane", "automobile"]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCifar)
    meta = prepare_dataset(DataConfig(dataset="cifar10", root=tmp_path, download=False), tmp_path / "out")
    assert meta["shape"] == [3, 32, 32] and meta["class_names"] == ["airplane", "automobile"]
    images, _ = load_prepared("train", tmp_path / "out")
    assert images[:, 0].eq(200).all() and images[:, 1:].eq(0).all()


# --- digits ---------------------------------------------------------------------------------------------


def test_digits_end_to_end(tmp_path: Path) -> None:
    cfg = DataConfig(dataset="digits", resolution=16, test_fraction=0.25, split_seed=1)
    meta = prepare_dataset(cfg, tmp_path / "o")
    assert meta["counts"]["train"] + meta["counts"]["test"] == 1797
    assert meta["counts"]["test"] == 450 and meta["shape"] == [1, 16, 16]
    images, labels = load_prepared("test", tmp_path / "o")
    assert torch.bincount(labels, minlength=10).min() >= 40  # stratified: every class in the test split
    assert images.max() == 255 and images.min() == 0


# --- transforms -----------------------------------------------------------------------------------------


def test_resize_keeps_constants_and_crops_to_square() -> None:
    flat = np.full((2, 1, 28, 28), 77, np.uint8)
    assert (resize_square(flat, 32) == 77).all() and resize_square(flat, 32).shape == (2, 1, 32, 32)
    wide = np.zeros((1, 1, 4, 8), np.uint8)
    wide[..., 2:6] = 255  # the centre square is white, the sides black
    assert (resize_square(wide, 4) == 255).all()
    gradient = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (1, 1, 32, 1))  # (1, 1, 32, 32)
    small = resize_square(gradient, 8)[0, 0, 0].astype(int)
    assert (np.diff(small) > 0).all()


def test_channel_conversion() -> None:
    grey = np.arange(6, dtype=np.uint8).reshape(1, 1, 2, 3)
    rgb = convert_channels(grey, 3)
    assert rgb.shape == (1, 3, 2, 3) and all((rgb[:, c] == grey[:, 0]).all() for c in range(3))
    np.testing.assert_array_equal(convert_channels(rgb, 1), grey)
    red = np.zeros((1, 3, 1, 1), np.uint8)
    red[:, 0] = 255
    assert convert_channels(red, 1).item() == 76  # round(0.299 * 255)
    assert convert_channels(grey, None) is grey


# --- folder ---------------------------------------------------------------------------------------------


def save(path: Path, colour, size=(20, 12), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def folder_cfg(root: Path | None, **overrides) -> DataConfig:
    return DataConfig(dataset="folder", root=root, resolution=16, test_fraction=0.5, **overrides)


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "src" / "red" / f"{i}.png", (255, 0, 0))
        save(tmp_path / "src" / "blue" / f"{i}.jpg", (0, 0, 255), size=(12, 30))
    (tmp_path / "src" / "notes.txt").write_text("ignored")
    meta = prepare_dataset(folder_cfg(tmp_path / "src"), tmp_path / "out")
    assert meta["class_names"] == ["blue", "red"] and meta["shape"] == [3, 16, 16]
    assert meta["counts"] == {"train": 4, "test": 4}
    for split in ("train", "test"):
        images, labels = load_prepared(split, tmp_path / "out")
        assert sorted(labels.tolist()) == [0, 0, 1, 1]  # stratified
        red = images[labels == 1]
        assert red[:, 0].eq(255).all() and red[:, 1:].eq(0).all()
        assert images[labels == 0][:, 2].ge(250).all()  # JPEG blue


def test_flat_grey_folder_and_forced_channels(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "src" / f"{i}.png", 10 * i, mode="L")
    meta = prepare_dataset(folder_cfg(tmp_path / "src"), tmp_path / "out")
    assert meta["class_names"] == ["all"] and meta["shape"] == [1, 16, 16]
    meta = prepare_dataset(folder_cfg(tmp_path / "src", channels=3), tmp_path / "out")
    assert meta["shape"] == [3, 16, 16]


@pytest.mark.parametrize("layout", ["flat", "classes"])
def test_folder_unreadable_image(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "src" / ("cats" if layout == "classes" else "")
    save(folder / "good.png", (1, 2, 3))
    bad = folder / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image") as info:
        prepare_dataset(folder_cfg(tmp_path / "src"), tmp_path / "out")
    assert str(bad) in str(info.value) and not (tmp_path / "out").exists()


def test_folder_empty_or_unset(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images") as info:
        prepare_dataset(folder_cfg(tmp_path / "empty"), tmp_path / "out")
    assert str(tmp_path / "empty") in str(info.value)
    (tmp_path / "empty" / "cats").mkdir()
    with pytest.raises(DataError, match="class folder holds no images"):
        prepare_dataset(folder_cfg(tmp_path / "empty"), tmp_path / "out")
    with pytest.raises(DataError, match="needs data.root"):
        prepare_dataset(folder_cfg(None), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_folder_mixing_images_and_class_folders_is_refused(tmp_path: Path) -> None:
    save(tmp_path / "src" / "loose.png", (1, 2, 3))
    save(tmp_path / "src" / "cats" / "a.png", (1, 2, 3))
    with pytest.raises(DataError, match=r"holds both images \(loose.png, ...\) and class sub-folders"):
        prepare_dataset(folder_cfg(tmp_path / "src"), tmp_path / "out")


@pytest.mark.parametrize("kind", ["file", "class-folder"])
def test_folder_symlink_outside_root(tmp_path: Path, kind: str) -> None:
    outside = save(tmp_path / "secret" / "x.png", (9, 9, 9))
    root = tmp_path / "src"
    save(root / "a" / "ok.png", (1, 1, 1))
    save(root / "a" / "ok2.png", (1, 1, 1))
    link = root / "a" / "link.png" if kind == "file" else root / "b"
    link.symlink_to(outside if kind == "file" else outside.parent)
    with pytest.raises(DataError, match="outside the dataset root") as info:
        prepare_dataset(folder_cfg(root), tmp_path / "out")
    assert str(link) in str(info.value)


def test_folder_symlink_inside_root_is_allowed(tmp_path: Path) -> None:
    root = tmp_path / "src"
    target = save(root / "a" / "ok.png", (1, 1, 1))
    (root / "a" / "alias.png").symlink_to(target)
    assert prepare_dataset(folder_cfg(root), tmp_path / "out")["counts"] == {"train": 1, "test": 1}


# --- loading the prepared output ------------------------------------------------------------------------


def test_load_prepared_reports_missing_and_mismatched_files(tmp_path: Path, good_prepared: tuple[Path, dict]) -> None:
    with pytest.raises(DataError, match=r"python -m stages prepare.*dvc repro prepare") as info:
        load_prepared("train", tmp_path / "nothing")
    assert str(tmp_path / "nothing" / "meta.json") in str(info.value)

    out, meta = good_prepared
    np.save(out / "test_labels.npy", np.zeros(3, np.int64))
    with pytest.raises(DataError, match=rf"holds int64 \(3,\), meta.json expects int64 \({meta['counts']['test']},\)"):
        load_prepared("test", out)
    with pytest.raises(DataError, match="SHA-256 differs") as info:
        verify_prepared(out)
    assert str(out / "test_labels.npy") in str(info.value)
    load_prepared("train", out)  # the untouched split still loads
    (out / "train_images.npy").unlink()
    with pytest.raises(DataError, match="missing from the prepared dataset"):
        load_prepared("train", out)
