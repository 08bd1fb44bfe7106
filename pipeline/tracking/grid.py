"""The grid's parent run: one per grid key, so the MLflow UI groups a grid's cells under it.

The key is what makes two cells "of the same grid": the params file's content, the git commit and, inside
``dvc exp run``, the experiment's name (``$DVC_EXP_NAME``). Cells of one ``dvc repro`` or one experiment share it;
editing params starts a new parent (cells DVC does not re-run stay under the old one). Concurrent cells on one
machine serialise the get-or-create with a file lock; across machines the earliest parent wins and a duplicate
created in the same instant is deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

KEY_TAG = "genbench.grid_key"
ROLE_TAG = "genbench.role"
PARENT_TAG = "mlflow.parentRunId"
LOCK_DIR = Path(".cache/locks")


def grid_key(params_path: str | Path, commit: str | None) -> str:
    """16 hex digits identifying a grid: params content, commit and DVC experiment name.

    The commit's ``-dirty`` mark is ignored: ``dvc repro`` rewrites dvc.lock after every stage, which would
    otherwise give the first cell of a repro a different key than the rest.
    """
    digest = hashlib.sha256(Path(params_path).read_bytes())
    head = (commit or "no-git").removesuffix("-dirty")
    digest.update(f"\0{head}\0{os.environ.get('DVC_EXP_NAME', '')}".encode())
    return digest.hexdigest()[:16]


@contextmanager
def _lock(name: str) -> Iterator[None]:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _find(client: MlflowClient, experiment_id: str, key: str) -> list:
    query = f"tags.`{KEY_TAG}` = '{key}' and tags.`{ROLE_TAG}` = 'grid'"
    return client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time ASC"])


def grid_run_id(client: MlflowClient, experiment_id: str, key: str, *, tags: dict[str, str]) -> str:
    """The parent run of grid ``key`` in the experiment, created (RUNNING, named ``grid-<key>``) when missing."""
    with _lock(f"grid-{key}"):
        found = _find(client, experiment_id, key)
        if found:
            return found[0].info.run_id
        run = client.create_run(experiment_id, run_name=f"grid-{key[:8]}",
                                tags={**tags, KEY_TAG: key, ROLE_TAG: "grid"})
        found = _find(client, experiment_id, key)
        winner = found[0].info.run_id if found else run.info.run_id
        if winner != run.info.run_id:  # another machine created one at the same time: keep the earliest
            client.delete_run(run.info.run_id)
        return winner
