"""The ``prepare`` command: exit 0 and a summary on success, exit 2 with the message on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from pipeline.data import load_meta
from stages import prepare

GRID = {"grid": {"variants": ["vae"], "seeds": [0]}, "variants": {"vae": {"kind": "vae"}}}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command()(prepare.main)
    return app


def write_params(folder: Path, data: dict, name: str = "params.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({**GRID, "data": data}))
    return path


def test_prepare_command_succeeds(app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": "digits", "resolution": 8}, name="custom.yaml")
    result = CliRunner().invoke(app, ["--params", "custom.yaml"])
    assert result.exit_code == 0, result.output
    meta = load_meta(tmp_path / "data" / "prepared")
    assert meta["dataset"] == "digits" and meta["shape"] == [1, 8, 8]
    assert f"prepared digits: {meta['counts']['train']} train" in result.output
    assert meta["fingerprint"][:12] in result.output


def test_prepare_command_bad_source_exits_2(app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pictures").mkdir()
    write_params(tmp_path, {"dataset": "folder", "root": "pictures", "resolution": 8})
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "error: pictures: no images" in result.output
    assert not (tmp_path / "data" / "prepared").exists()


def test_prepare_command_bad_params_exits_2(app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": "imagenet", "resolution": 8})
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "data.dataset" in result.output
    assert not (tmp_path / "data").exists()


def test_prepare_help_is_the_docstring(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Load the dataset named in the params" in result.output and "--params" in result.output
