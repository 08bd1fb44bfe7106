"""The MLflow store: which one (``$MLFLOW_TRACKING_URI`` or the repository's sqlite file) and a client for it.

The default store is ``sqlite:///<repo>/mlflow.db`` as an absolute path, where ``<repo>`` is the DVC project's root
even for experiments running in a temp copy (``dvc exp run --queue`` / ``--temp``), so they all log to one place. Opening a sqlite store that does not exist yet creates its tables; cells started at the
same moment (``dvc queue start -j 4``) would race on that, so the first opening in a process holds a lock file
beside the database.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from typing import TYPE_CHECKING

from pipeline.errors import InputError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def repo_root() -> Path:
    """The project's root, absolute: ``$DVC_ROOT``, which DVC sets for stage commands (under ``dvc exp run
    --queue``/``--temp`` it names the parent repository, not the temp copy the stage runs in), else the cwd."""
    return Path(os.environ.get("DVC_ROOT") or ".").resolve()


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the repository's sqlite store (absolute path); never the deprecated file store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"
    if uri.startswith("file:") or "://" not in uri:
        raise InputError(f"MLFLOW_TRACKING_URI={uri!r}: the file store is deprecated; use sqlite:///<path>/mlflow.db "
                         "or a tracking server (http://host:port)")
    return uri


def open_client(uri: str | None = None) -> MlflowClient:
    """A client of ``uri`` (default :func:`tracking_uri`), creating a new sqlite store's tables under a lock."""
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///"):
        return MlflowClient(uri)
    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(uri)
            client._get_registry_client()  # the model registry's store checks its tables too
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return client


NOTE_TAG = "mlflow.note.content"  # what the MLflow UI shows as an experiment's description


def experiment_views(client: MlflowClient, prefix: str, base_url: str) -> list[tuple[str, str, str]]:
    """(name, runs-table URL under ``base_url``, description) of every experiment named ``<prefix>-...``."""
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    return [(e.name, f"{base_url.rstrip('/')}/#/experiments/{e.experiment_id}/runs", e.tags.get(NOTE_TAG, ""))
            for e in sorted(found, key=lambda e: e.name)]
