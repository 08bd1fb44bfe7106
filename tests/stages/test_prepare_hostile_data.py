"""Hostile data through the ``prepare`` CLI: every corrupt source exits 2 naming the file, writes no partial
``data/prepared`` and leaves a previously prepared dataset untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stages.app import app
from tests.conftest import tiny_params, write_params
from tests.test_data import (
    _count_mismatch,
    _label_out_of_range,
    _missing_file,
    _size_mismatch,
    _truncate_gz,
    _wrong_magic,
    make_idx_dataset,
    save,
)


def _unreadable_image(root: Path) -> Path:
    save(root / "cats" / "good.png", (1, 2, 3))
    bad = root / "cats" / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    return bad


def _empty_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    return root


def _symlink_outside(root: Path) -> Path:
    secret = save(root.parent / "secret" / "x.png", (9, 9, 9))
    save(root / "a" / "ok.png", (1, 1, 1))
    link = root / "a" / "link.png"
    link.symlink_to(secret)
    return link


def _mixed_layout(root: Path) -> Path:
    save(root / "loose.png", (1, 2, 3))
    save(root / "cats" / "a.png", (1, 2, 3))
    return root


IDX: list[tuple[Callable[[Path], Path], str]] = [
    (_truncate_gz, "corrupt or truncated gzip"),
    (_wrong_magic, "wrong magic number"),
    (_count_mismatch, "holds 11 labels"),
    (_label_out_of_range, "outside 0..9"),
    (_size_mismatch, "file holds"),
    (_missing_file, "missing t10k-labels-idx1-ubyte"),
]
FOLDER: list[tuple[Callable[[Path], Path], str]] = [
    (_unreadable_image, "cannot read image"),
    (_empty_folder, "no images"),
    (_symlink_outside, "outside the dataset root"),
    (_mixed_layout, "holds both images"),
]
CASES = [("fashion-mnist", *case) for case in IDX] + [("folder", *case) for case in FOLDER]


@pytest.mark.parametrize(("dataset", "corrupt", "message"), CASES, ids=[c[1].__name__.strip("_") for c in CASES])
def test_corrupt_source_exits_2_and_keeps_the_previous_dataset(
    workdir: Path, dataset: str, corrupt: Callable[[Path], Path], message: str
) -> None:
    write_params(workdir / "params.yaml", tiny_params())  # digits: a good dataset prepared first
    assert CliRunner().invoke(app, ["prepare"]).exit_code == 0
    prepared = workdir / "data" / "prepared"
    before = {path.name: path.read_bytes() for path in prepared.iterdir()}

    source = workdir / "source"
    if dataset == "fashion-mnist":
        make_idx_dataset(source)
    bad = corrupt(source)
    data = {"dataset": dataset, "root": str(source), "resolution": 8, "download": False}
    write_params(workdir / "params.yaml", tiny_params(data=data))
    result = CliRunner().invoke(app, ["prepare"])

    assert result.exit_code == 2, result.output
    assert message in result.output and str(bad) in result.output
    assert {path.name: path.read_bytes() for path in prepared.iterdir()} == before
    assert json.loads(before["meta.json"])["dataset"] == "digits"
    assert sorted(path.name for path in (workdir / "data").iterdir()) == ["prepared"]  # no temp folders left
