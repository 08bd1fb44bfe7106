"""Atomic outputs: a write that fails midway leaves the previous file (or folder) intact and no temp files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from pipeline.io import atomic_directory, atomic_write_json
from pipeline.training import checkpoint as ckpt


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(folder, {"step": 1, "value": torch.ones(3)}, keep=5)

    def half_then_fail(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(folder, {"step": 2, "value": torch.zeros(3)}, keep=5)
    monkeypatch.undo()
    assert [p.name for p in folder.iterdir()] == ["step-00000001.pt"]
    assert torch.equal(ckpt.load_checkpoint(folder / "step-00000001.pt")["value"], torch.ones(3))


def test_failed_json_write_keeps_the_previous_metrics(tmp_path: Path) -> None:
    path = tmp_path / "metrics" / "cell.json"
    atomic_write_json(path, {"fid": 1.0})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"fid": object()})  # not serialisable
    assert json.loads(path.read_text()) == {"fid": 1.0}
    assert [p.name for p in path.parent.iterdir()] == ["cell.json"]


def test_failed_directory_build_keeps_the_previous_folder(tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    with atomic_directory(out) as tmp:
        (tmp / "a.npy").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_directory(out) as tmp:
        (tmp / "a.npy").write_bytes(b"new, half")
        raise RuntimeError("source turned out corrupt")
    assert (out / "a.npy").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_outputs_get_the_umask_permissions_not_mkstemps_0600(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    atomic_write_json(path, {})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
