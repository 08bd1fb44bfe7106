"""The MLflow store and one run per grid cell: buffered step metrics, artifacts, system metrics, the model.

Everything a run logs goes through its
outbox (``runs/<cell>/mlflow/<id>/``, see :mod:`pipeline.tracking.outbox`), so an unreachable store never stops
or slows training and nothing logged is lost.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.tracking.outbox import STATE, Outbox
from pipeline.tracking.sender import Sender
from pipeline.tracking.store import tracking_uri
from pipeline.tracking.system import SystemSampler

MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call


def experiment_name(prefix: str, dataset: str) -> str:
    """One experiment per dataset: ``<prefix>-<dataset>``."""
    return f"{prefix}-{dataset}"


def warn_undelivered(cell: str, left: int, folder: Path) -> None:
    """Say on stderr that ``left`` operations of ``cell``'s run wait in its outbox (none: say nothing)."""
    if left:
        print(f"{cell}: {left} MLflow operations not delivered yet: kept in {folder}; `python -m stages sync` sends "
              "them", file=sys.stderr)


def git_commit(cwd: str | Path = ".") -> str | None:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → ``{"a.b.c": "value"}`` strings, as MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
    return flat


class CellRun:
    """One grid cell's MLflow run, logged through its on-disk outbox and delivered in the background.

    Logging never waits for the store: step metrics are buffered in memory until :meth:`flush` appends them to
    the outbox; the sender thread delivers them whenever the store is reachable. :meth:`finish` waits at most
    ``wait`` seconds for the rest and leaves what is still undelivered for ``python -m stages sync``.
    """

    def __init__(self, outbox: Outbox, *, notify: Callable[[str], None] | None = None) -> None:
        self.outbox = outbox
        self.sender = Sender(outbox, notify=notify).start()
        self._pending: list[list[Any]] = []
        self._sampler: SystemSampler | None = None

    @classmethod
    def start(
        cls,
        folder: Path,
        *,
        experiment: str,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        resume: str | None = None,
        parent_key: str | None = None,
        system_metrics_interval: float | None = None,
    ) -> CellRun:
        """Create the cell's run in a new outbox under ``folder``, or reopen the outbox ``resume`` (its id).

        ``parent_key``: the grid key whose parent run the new run is a child of. ``system_metrics_interval``:
        seconds between CPU/memory/disk/network (and GPU) samples logged as ``system/*`` until :meth:`finish`.
        """
        if resume is not None and (Path(folder) / resume / STATE).exists():
            run = cls(Outbox(Path(folder) / resume))
            run.outbox.append({"op": "status", "status": "RUNNING", "time": time.time()})
        else:
            outbox = Outbox.create(folder, tracking_uri=tracking_uri())
            outbox.append({"op": "create", "experiment": experiment, "run_name": run_name, "tags": dict(tags),
                           "params": flatten(params), "parent_key": parent_key, "time": time.time()})
            run = cls(outbox)
        if system_metrics_interval is not None:
            run._sampler = SystemSampler(run._record_system, interval=system_metrics_interval,
                                         origin=run.outbox.state["created_at"]).start()
        run.sender.wake()
        return run

    @classmethod
    def attach(cls, folder: Path | None, *, run_id: str | None, root: Path) -> CellRun | None:
        """The outbox ``folder`` of an existing cell run (e.g. for evaluation to log into), or a new outbox
        under ``root`` for the known ``run_id`` when the folder is gone; None when neither exists."""
        if folder is not None and (Path(folder) / STATE).exists():
            return cls(Outbox(Path(folder)))
        if run_id is None:
            return None
        return cls(Outbox.create(root, tracking_uri=tracking_uri(), run_id=run_id))

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, once the store has created the run."""
        return self.outbox.run_id

    @property
    def model_uri(self) -> str | None:
        """The logged generator's model URI, once delivered."""
        return self.outbox.state.get("model_uri")

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        """Buffer metrics of one step, stamped now (a re-sent metric is then an exact duplicate the store drops)."""
        now = int(time.time() * 1000)
        self._pending.extend([key, float(value), now, step] for key, value in metrics.items())

    def log_history(self, rows: Iterable[Mapping[str, float]]) -> None:
        """Buffer many steps at once: each row has ``step`` and metric values."""
        for row in rows:
            values = {k: v for k, v in row.items() if k != "step"}
            self.log_metrics(values, step=int(row["step"]))

    def flush(self) -> None:
        """Move buffered metrics into the outbox in batches of MLflow's maximum size (no network here)."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self.outbox.append({"op": "batch", "metrics": batch})
        self.sender.wake()

    def _record_system(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.outbox.append({"op": "batch", "metrics": [[k, v, now, step] for k, v in values.items()]})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a copy of the file (taken now) into the run's artifacts."""
        self.outbox.append({"op": "artifact", "file": self.outbox.add_file(path), "artifact_path": artifact_path})
        self.sender.wake()

    def log_model(self, generator_file: str | Path) -> None:
        """Log an exported generator (``pipeline.generators.export_generator``) as the run's MLflow model."""
        self.outbox.append({"op": "model", "file": self.outbox.add_file(generator_file)})
        self.sender.wake()

    def log_dataset(self, *, name: str, digest: str, source: str, profile: Mapping[str, Any],
                    context: str = "training") -> None:
        """Record the data the run used as an MLflow dataset input (the UI's Dataset column): ``digest`` identifies
        its content, ``profile`` (counts, shape) is shown beside it."""
        self.outbox.append({"op": "input", "name": name, "digest": digest, "source": source, "profile": dict(profile),
                            "context": context})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags on the run."""
        self.outbox.append({"op": "batch", "tags": dict(tags)})
        self.sender.wake()

    def finish(self, status: str = "FINISHED", *, wait: float = 60.0) -> int:
        """Stop system metrics, flush, mark the run FINISHED/FAILED/KILLED (``None``: leave the status) and
        deliver for at most ``wait`` seconds; returns how many operations are left for ``stages sync``."""
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None
        self.flush()
        if status is not None:
            self.outbox.append({"op": "status", "status": status, "time": time.time()})
        return self.sender.stop(wait)


class NullRun:
    """The run of a training process that does not log (ranks other than 0 under torchrun)."""

    run_id = None
    model_uri = None
    outbox = None

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None: ...
    def log_history(self, rows: Iterable[Mapping[str, float]]) -> None: ...
    def flush(self) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...
    def log_model(self, generator_file: str | Path) -> None: ...
    def log_dataset(self, *, name: str, digest: str, source: str, profile: Mapping[str, Any],
                    context: str = "training") -> None: ...
    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def finish(self, status: str = "FINISHED", *, wait: float = 60.0) -> int:
        return 0
