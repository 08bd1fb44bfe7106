"""The MLflow store and one run per grid cell: buffered step metrics, artifacts, system metrics.

The default store is ``sqlite:///<repo>/mlflow.db`` (an absolute path, so DVC experiments running in a
temp copy log to the same place); ``$MLFLOW_TRACKING_URI`` overrides it. The client API is used directly
(no global active run), so a stage can hold the cell's run open while evaluation logs into it later.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from mlflow.tracking import MlflowClient

from pipeline.errors import InputError
from pipeline.tracking.grid import PARENT_TAG, grid_run_id

MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call
MAX_PARAMS = 100  # ... and of params


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the repository's sqlite store (absolute path); never the deprecated file store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
    if uri.startswith("file:") or "://" not in uri:
        raise InputError(f"MLFLOW_TRACKING_URI={uri!r}: the file store is deprecated; use sqlite:///<path>/mlflow.db "
                         "or a tracking server (http://host:port)")
    return uri


def experiment_name(prefix: str, dataset: str) -> str:
    """One experiment per dataset: ``<prefix>-<dataset>``."""
    return f"{prefix}-{dataset}"


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
    """One grid cell's MLflow run, with step metrics buffered and sent in batches."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._pending: list[Metric] = []
        self._monitor: SystemMetricsMonitor | None = None

    @classmethod
    def start(
        cls,
        *,
        experiment: str,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        resume_run_id: str | None = None,
        parent_key: str | None = None,
        system_metrics_interval: float | None = None,
    ) -> CellRun:
        """Create the cell's run (logging params and tags), or reopen ``resume_run_id`` when it still exists.

        ``parent_key``: the grid key whose parent run the new run is a child of. ``system_metrics_interval``:
        seconds between CPU/memory/disk/network (and GPU) samples logged as ``system/*`` until :meth:`finish`.
        """
        client = MlflowClient(tracking_uri())
        run = None
        if resume_run_id is not None:
            try:
                client.get_run(resume_run_id)
                client.update_run(resume_run_id, status=RunStatus.to_string(RunStatus.RUNNING))
                run = cls(client, resume_run_id)
            except Exception:  # noqa: BLE001 - the store was reset or the run deleted: start a new one
                pass
        if run is None:
            exp_id = experiment_id(client, experiment)
            tags = dict(tags)
            if parent_key is not None:
                parent_tags = {"git_commit": tags.get("git_commit", "")}
                tags[PARENT_TAG] = grid_run_id(client, exp_id, parent_key, tags=parent_tags)
            created = client.create_run(exp_id, run_name=run_name, tags=tags)
            flat = [Param(k, v) for k, v in flatten(params).items()]
            for start in range(0, len(flat), MAX_PARAMS):
                client.log_batch(created.info.run_id, params=flat[start : start + MAX_PARAMS])
            run = cls(client, created.info.run_id)
        if system_metrics_interval is not None:
            run._monitor = SystemMetricsMonitor(run.run_id, sampling_interval=system_metrics_interval,
                                                resume_logging=resume_run_id == run.run_id, tracking_uri=tracking_uri())
            run._monitor.start()
        return run

    @classmethod
    def attach(cls, run_id: str) -> CellRun:
        """An existing run (e.g. the training run that evaluation logs into)."""
        return cls(MlflowClient(tracking_uri()), run_id)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        """Buffer metrics of one step; they are sent by :meth:`flush`."""
        now = int(time.time() * 1000)
        self._pending.extend(Metric(key, float(value), now, step) for key, value in metrics.items())

    def log_history(self, rows: Iterable[Mapping[str, float]]) -> None:
        """Buffer many steps at once: each row has ``step`` and metric values."""
        for row in rows:
            values = {k: v for k, v in row.items() if k != "step"}
            self.log_metrics(values, step=int(row["step"]))

    def flush(self) -> None:
        """Send buffered metrics in batches of MLflow's maximum size."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file into the run's artifacts."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags on the run."""
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def finish(self, status: str = "FINISHED") -> None:
        """Stop system metrics, flush and mark the run FINISHED, FAILED or KILLED."""
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None
        self.flush()
        self.client.set_terminated(self.run_id, status=status)


def experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create the experiment (tolerating a concurrent creation by another cell)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:"):
        location = Path("mlruns").resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # noqa: BLE001 - created meanwhile by a concurrent cell
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
