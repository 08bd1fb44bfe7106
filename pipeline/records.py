"""What stages hand each other, as pydantic models with a format version: written and read only through
:func:`write_record` and :func:`read_record`, so a missing or renamed field fails at the writer (a validation
error) or names the file and field at the reader, not three stages later as a ``KeyError``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.errors import InputError
from pipeline.io import atomic_write_json, read_json

Status = Literal["ok", "diverged"]


class Record(BaseModel):
    """A stage output file: every field declared, nothing else accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    what: ClassVar[str] = "stage record"  # how errors name the file's kind

    format_version: Literal[1] = 1


class TrainSummary(Record):
    """``runs/<cell>/train.json``: how a cell's training ended (written by rank 0 only)."""

    what: ClassVar[str] = "training summary"

    variant: str
    seed: int
    status: Status
    reason: str | None  # why it diverged
    steps: int
    train_seconds: float  # the whole loop: steps, logging, samples, snapshots, checkpoints
    images_per_second: float | None
    num_parameters: int
    device: str
    precision: str
    world_size: int
    cpu_threads: int | None
    rank_weight_checksums: list[float]  # equal when the DDP ranks are in sync
    mlflow_run_id: str | None
    mlflow_model_uri: str | None
    mlflow_outbox: str | None


R = TypeVar("R", bound=Record)


def write_record(path: Path, record: Record) -> None:
    """Write ``record`` atomically as JSON."""
    atomic_write_json(path, record.model_dump(mode="json"))


def read_record(path: Path, kind: type[R], *, hint: str) -> R:
    """Read a ``kind`` file; missing, unreadable, of another format version or with a missing/unknown field:
    InputError naming the file, the field and ``hint``."""
    raw = read_json(path, what=kind.what, hint=hint)
    try:
        return kind.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in error.errors())
        raise InputError(f"{path}: not a {kind.what} of format version 1 ({problems}); {hint}") from None
