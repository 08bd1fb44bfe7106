"""An on-disk outbox per MLflow run, so nothing logged is lost while the tracking store is away.

A run's logging calls append operations (create the run, a batch of metrics/params/tags, an artifact, the model,
a status change) to ``journal.jsonl`` in the run's outbox folder (``runs/<cell>/mlflow/<id>/``) and never wait
for the network; a :class:`~pipeline.tracking.sender.Sender` delivers them in order and records its progress
(a byte offset) and what the store answered (run id, model URI) in ``state.json``. Delivering an operation twice
is harmless, which is what makes "retry until it worked" safe: metrics carry the timestamp taken when they were
logged and the SQL store drops an exact duplicate; params, tags and artifacts are rewritten with the same values;
the run is created once and found again by its ``genbench.outbox`` tag. What a process could not deliver stays
in the folder for ``python -m stages sync``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write_json

JOURNAL = "journal.jsonl"
STATE = "state.json"
FILES = "files"
OUTBOX_TAG = "genbench.outbox"


class Outbox:
    """The journal, state and file copies of one run's undelivered operations."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.state: dict[str, Any] = json.loads((self.folder / STATE).read_text())

    @classmethod
    def create(cls, root: Path, *, tracking_uri: str, run_id: str | None = None) -> Outbox:
        """A new outbox under ``root`` for the store ``tracking_uri``; ``run_id`` when the run already exists."""
        outbox_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        folder = Path(root) / outbox_id
        (folder / FILES).mkdir(parents=True)
        state = {"id": outbox_id, "tracking_uri": tracking_uri, "created_at": time.time(), "run_id": run_id,
                 "model_uri": None, "delivered": 0, "failed": []}
        atomic_write_json(folder / STATE, state)
        (folder / JOURNAL).touch()
        return cls(folder)

    def reload(self) -> None:
        """Re-read the state (another process may have delivered meanwhile)."""
        self.state = json.loads((self.folder / STATE).read_text())

    @property
    def id(self) -> str:
        return self.state["id"]

    @property
    def run_id(self) -> str | None:
        return self.state["run_id"]

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        with open(self.folder / JOURNAL, "a+b") as journal:
            fcntl.flock(journal, fcntl.LOCK_EX)
            try:
                yield journal
            finally:
                fcntl.flock(journal, fcntl.LOCK_UN)

    def append(self, op: dict[str, Any]) -> None:
        """Add one operation (a JSON line; written and flushed before this returns)."""
        line = json.dumps(op, separators=(",", ":"), allow_nan=True).encode() + b"\n"
        with self._locked() as journal:
            journal.write(line)
            journal.flush()

    def add_file(self, path: str | Path) -> str:
        """Copy ``path`` into the outbox (the original may be replaced before delivery); its name relative to it."""
        name = f"{FILES}/{uuid.uuid4().hex[:8]}/{Path(path).name}"
        (self.folder / name).parent.mkdir(parents=True)
        shutil.copy2(path, self.folder / name)
        return name

    def pending(self) -> list[tuple[int, dict[str, Any]]]:
        """Undelivered operations, each with the journal offset just after it."""
        with self._locked() as journal:
            journal.seek(self.state["delivered"])
            data = journal.read()
        ops, offset = [], self.state["delivered"]
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # a line still being written by another process
            offset += len(line)
            ops.append((offset, json.loads(line)))
        return ops

    def count_pending(self) -> int:
        return len(self.pending())

    def delivered(self, offset: int, op: dict[str, Any], **answers: Any) -> None:
        """Record ``op`` (ending at ``offset``) as delivered with what the store answered; drop its file copy."""
        self.state.update(answers, delivered=offset)
        with self._locked() as journal:
            if os.fstat(journal.fileno()).st_size == offset:  # everything delivered: start the journal afresh
                journal.truncate(0)
                self.state["delivered"] = 0
            atomic_write_json(self.folder / STATE, self.state)
        if op.get("file"):  # after the state: a crash in between leaves a spare copy, never a missing one
            shutil.rmtree((self.folder / op["file"]).parent, ignore_errors=True)

    def failed(self, offset: int, op: dict[str, Any], error: str) -> None:
        """Skip ``op``, which the store rejected for good, keeping it and the reason in the state."""
        self.state["failed"].append({"op": op, "error": error})
        self.delivered(offset, {})


def find_outboxes(runs_dir: Path) -> list[Outbox]:
    """Every outbox under ``runs/<cell>/mlflow/``, oldest first."""
    folders = sorted(runs_dir.glob(f"*/mlflow/*/{STATE}"), key=lambda p: p.parent.name)
    return [Outbox(p.parent) for p in folders]
