"""The cell contract: every file of a cell named in one place, dvc.yaml declaring the same paths, numbered files
listed one way, and stage records that fail at the writer or name the file and field at the reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipeline import layout
from pipeline.errors import InputError
from pipeline.layout import Cell, list_steps, step_file
from pipeline.records import TrainSummary, read_record, write_record
from pipeline.training.code import SOURCES
from tests.conftest import REPO

CELL = Cell("dcgan-ns", 3)


def _stage(name: str) -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]


def _paths(entries: list) -> set[Path]:
    """dvc.yaml entries (strings or one-key mappings) with ``${key}`` as DVC expands it for ``CELL``."""
    names = [next(iter(e)) if isinstance(e, dict) else e for e in entries]
    return {Path(n.replace("${key}", CELL.name)) for n in names}


def test_a_cell_is_named_as_dvc_names_its_matrix_entries() -> None:
    assert CELL.name == str(CELL) == "dcgan-ns-3"
    assert CELL.run_dir == Path("runs/dcgan-ns-3") and CELL.metrics == Path("metrics/dcgan-ns-3.json")
    assert CELL.prune_metrics == Path("metrics/prune-dcgan-ns-3.json")


def test_dvc_yaml_declares_the_cells_files() -> None:
    train, evaluate, prune = _stage("train"), _stage("evaluate"), _stage("prune")
    assert _paths(train["outs"]) == {CELL.checkpoints, CELL.snapshots, CELL.generator, CELL.samples, CELL.losses,
                                     CELL.train_summary}
    assert {CELL.generator, CELL.snapshots, CELL.train_summary} <= _paths(evaluate["deps"])
    assert _paths(evaluate["outs"]) == {CELL.metrics}
    assert {CELL.generator, CELL.train_summary} <= _paths(prune["deps"])
    assert _paths(prune["outs"]) == {CELL.prune_metrics}
    # the report reads every cell's loss log and final sample grid: it depends on runs/, outboxes ignored
    assert {layout.RUNS_DIR, layout.METRICS_DIR} <= _paths(_stage("report")["deps"])
    assert CELL.losses.is_relative_to(layout.RUNS_DIR) and CELL.final_samples.is_relative_to(layout.RUNS_DIR)
    ignored = [line for line in (REPO / ".dvcignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignored == [f"{layout.RUNS_DIR}/*/{CELL.outbox.name}"]
    assert CELL.final_samples.parent == CELL.samples and CELL.outbox.parent == CELL.run_dir


def test_the_training_fingerprint_covers_the_train_stages_code_deps() -> None:
    """code.SOURCES decides when a checkpoint may be resumed; dvc.yaml decides when train re-runs. Beyond them the
    train stage depends only on file names and record formats, which change outputs but not results."""
    code = {Path(d) for d in _stage("train")["deps"] if d.startswith("pipeline/")}
    assert code == {Path("pipeline", s) for s in SOURCES} | {Path("pipeline/layout.py"), Path("pipeline/records.py")}


def test_numbered_files_are_listed_by_step_and_suffix(tmp_path: Path) -> None:
    assert list_steps(tmp_path / "missing") == []
    for step in (12, 3, 100):
        step_file(tmp_path, step).write_bytes(b"")
    step_file(tmp_path, 7, ".png").write_bytes(b"")
    (tmp_path / "step-1.pt").write_bytes(b"")  # not eight digits: not ours
    (tmp_path / "notes.pt").write_bytes(b"")
    assert step_file(tmp_path, 3).name == "step-00000003.pt"
    assert [s for s, _ in list_steps(tmp_path)] == [3, 12, 100]
    assert list_steps(tmp_path, ".png") == [(7, tmp_path / "step-00000007.png")]


def _summary(**change: object) -> TrainSummary:
    fields = dict(variant="gan", seed=0, status="ok", reason=None, steps=6, train_seconds=1.5, images_per_second=32.0,
                  num_parameters=10, device="cpu", precision="fp32", world_size=1, cpu_threads=2,
                  rank_weight_checksums=[1.0], mlflow_run_id=None, mlflow_model_uri=None, mlflow_outbox=None)
    return TrainSummary(**{**fields, **change})


def test_a_record_round_trips_with_its_format_version(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    write_record(path, _summary())
    assert json.loads(path.read_text())["format_version"] == 1
    assert read_record(path, TrainSummary, hint="h") == _summary()


def test_a_wrong_field_fails_at_the_writer() -> None:
    with pytest.raises(ValidationError, match="train_secs"):
        _summary(train_secs=1.0)
    with pytest.raises(ValidationError, match="status"):
        _summary(status="finished")


@pytest.mark.parametrize(("edit", "field"), [(lambda r: r.pop("steps"), "steps"),
                                             (lambda r: r.update(format_version=0), "format_version"),
                                             (lambda r: r.pop("format_version"), "format_version: Field required"),
                                             (lambda r: r.update(loss=1), "loss")])
def test_a_bad_record_names_the_file_and_field(tmp_path: Path, edit, field: str) -> None:  # noqa: ANN001
    path = tmp_path / "train.json"
    write_record(path, _summary())
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match=rf"{path}: not a training summary .*{field}.*; run train first"):
        read_record(path, TrainSummary, hint="run train first")


def test_a_missing_record_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"train.json: training summary not found; run train first"):
        read_record(tmp_path / "train.json", TrainSummary, hint="run train first")
