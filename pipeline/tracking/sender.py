"""Delivery of an outbox to the MLflow store, from a background thread that never holds training up.

Each operation kind has a handler in ``HANDLERS``. A store that cannot be reached (connection refused, timeout,
HTTP 5xx, a locked sqlite file) is retried with capped exponential backoff for as long as the process lives;
an operation the store rejects for good (an invalid value, a deleted run) is set aside in the state with the
reason, so one bad value cannot hold back the rest. Only one sender per outbox runs at a time (a lock file), so
``python -m stages sync`` and a still-running cell never deliver the same journal concurrently.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.tracking.grid import PARENT_TAG, grid_run_id
from pipeline.tracking.outbox import OUTBOX_TAG, Outbox
from pipeline.tracking.store import open_client

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MAX_PARAMS = 100  # MLflow's limits per log_batch call
MAX_METRICS = 1000
PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"}
BACKOFF = (0.5, 10.0)  # first and longest wait between delivery attempts, seconds
# The sender retries on its own: a failed request should fail fast instead of blocking the thread for minutes in
# MLflow's own retries (7 by default, exponential, each logging a warning). Users may still set these variables themselves.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}



def fail_fast_http() -> None:
    """Set MLflow's HTTP retry/timeout variables to :data:`HTTP_DEFAULTS` unless the user set them."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


Handler = Callable[["MlflowClient", Outbox, dict[str, Any]], dict[str, Any]]


def experiment_id(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """Get or create the experiment (tolerating a concurrent creation by another cell)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = Path("mlruns").resolve().as_uri() if tracking_uri.startswith("sqlite:") else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)  # created meanwhile by a concurrent cell
        if experiment is None:
            raise
        return experiment.experiment_id


def _create(client: MlflowClient, outbox: Outbox, op: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Param

    exp_id = experiment_id(client, op["experiment"], client.tracking_uri)
    query = f"tags.`{OUTBOX_TAG}` = '{outbox.id}'"
    found = client.search_runs([exp_id], filter_string=query)  # created before, but the answer was lost
    if found:
        run_id = found[0].info.run_id
    else:
        tags = {**op["tags"], OUTBOX_TAG: outbox.id}
        if op.get("parent_key"):
            tags[PARENT_TAG] = grid_run_id(client, exp_id, op["parent_key"],
                                           tags={"git_commit": tags.get("git_commit", "")})
        run_id = client.create_run(exp_id, run_name=op["run_name"], tags=tags,
                                   start_time=int(op["time"] * 1000)).info.run_id
    params = [Param(k, v) for k, v in op["params"].items()]
    for start in range(0, len(params), MAX_PARAMS):
        client.log_batch(run_id, params=params[start : start + MAX_PARAMS])
    return {"run_id": run_id}


def _batch(client: MlflowClient, outbox: Outbox, op: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Metric, Param, RunTag

    client.log_batch(outbox.run_id, metrics=[Metric(*m) for m in op.get("metrics", [])],
                     params=[Param(k, v) for k, v in op.get("params", {}).items()],
                     tags=[RunTag(k, v) for k, v in op.get("tags", {}).items()])
    return {}


class Rejected(Exception):
    """An operation that can never be delivered (e.g. its file copy is gone)."""


def _copy(outbox: Outbox, op: dict[str, Any]) -> Path:
    path = outbox.folder / op["file"]
    if not path.exists():
        raise Rejected(f"{path}: the file copy to upload is missing")
    return path


def _artifact(client: MlflowClient, outbox: Outbox, op: dict[str, Any]) -> dict[str, Any]:
    client.log_artifact(outbox.run_id, str(_copy(outbox, op)), op.get("artifact_path"))
    return {}


def _model(client: MlflowClient, outbox: Outbox, op: dict[str, Any]) -> dict[str, Any]:
    from pipeline.generators import load_generator
    from pipeline.tracking.models import log_generator

    generator, _ = load_generator(_copy(outbox, op))
    return {"model_uri": log_generator(outbox.run_id, generator, tracking_uri=client.tracking_uri)}


def _input(client: MlflowClient, outbox: Outbox, op: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    dataset = Dataset(name=op["name"], digest=op["digest"], source_type="local",
                      source=json.dumps({"uri": op["source"]}), profile=json.dumps(op["profile"]))
    client.log_inputs(outbox.run_id, datasets=[DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT,
                                                                                     op["context"])])])
    return {}


def _status(client: MlflowClient, outbox: Outbox, op: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import RunStatus

    if op["status"] == "RUNNING":
        client.update_run(outbox.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
    else:
        client.set_terminated(outbox.run_id, status=op["status"], end_time=int(op["time"] * 1000))
    return {}


HANDLERS: dict[str, Handler] = {"create": _create, "batch": _batch, "artifact": _artifact, "model": _model,
                                "input": _input, "status": _status}


def coalesce(pending: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any], list]]:
    """Consecutive metrics-only batches merged into one call of at most ``MAX_METRICS`` metrics (after an outage
    the backlog goes out in a few requests); each group is (end offset, operation, its original operations)."""
    groups: list[tuple[int, dict[str, Any], list]] = []
    for offset, op in pending:
        metrics_only = op["op"] == "batch" and set(op) == {"op", "metrics"}
        if metrics_only and groups and groups[-1][1].get("merged") \
                and len(groups[-1][1]["metrics"]) + len(op["metrics"]) <= MAX_METRICS:
            _, merged, members = groups[-1]
            groups[-1] = (offset, {**merged, "metrics": merged["metrics"] + op["metrics"]}, [*members, (offset, op)])
        else:
            groups.append((offset, {**op, "merged": True} if metrics_only else op, [(offset, op)]))
    return groups


def is_permanent(error: Exception) -> bool:
    """Whether the store rejected the operation itself (retrying cannot help), not the connection."""
    from mlflow.exceptions import MlflowException

    return isinstance(error, Rejected) or (isinstance(error, MlflowException) and error.error_code in PERMANENT)


class Sender:
    """Delivers one outbox: in a background thread (:meth:`start`) or in the foreground (:meth:`deliver`)."""

    def __init__(self, outbox: Outbox, *, tracking_uri: str | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        fail_fast_http()
        self.outbox = outbox
        self.tracking_uri = tracking_uri or outbox.state["tracking_uri"]
        self._client: MlflowClient | None = None
        self.notify = notify or (lambda message: print(message, file=sys.stderr))
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: Any = None

    @property
    def client(self) -> MlflowClient:
        """The store's client, opened on first use: importing MLflow (~1.5 s) then happens in the sender thread,
        not before a stage's work."""
        if self._client is None:
            self._client = open_client(self.tracking_uri)
        return self._client

    def acquire(self) -> bool:
        """Become this outbox's only sender; False when another process is delivering it."""
        self._lock_file = open(self.outbox.folder / "send.lock", "w")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            return False
        self.outbox.reload()
        return True

    def release(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def deliver_once(self) -> bool:
        """Deliver what is pending now, in order; True when the journal is empty, False after a failure."""
        for offset, op, members in coalesce(self.outbox.pending()):
            sent = self._send(offset, op, merged=len(members) > 1)
            if sent is None and len(members) > 1:  # a merged batch was rejected: find the culprit one by one
                for member_offset, member in members:
                    if self._send(member_offset, member) is False:
                        return False
            elif sent is False:
                return False
        return True

    def _send(self, offset: int, op: dict[str, Any], *, merged: bool = False) -> bool | None:
        """Deliver one operation: True when delivered, None when rejected (set aside unless ``merged``: its members
        are then tried one by one), False on a failure worth retrying."""
        if op["op"] != "create" and self.outbox.run_id is None:
            self.outbox.failed(offset, op, "the run was never created")
            return None
        try:
            answers = HANDLERS[op["op"]](self.client, self.outbox, op)
        except Exception as error:  # noqa: BLE001 - any failure is retried or set aside, never raised
            if is_permanent(error) and merged:
                return None
            if is_permanent(error):
                self.outbox.failed(offset, op, str(error)[:500])
                self.notify(f"MLflow rejected a '{op['op']}' of {self.outbox.folder}: {error}")
                return None
            if self.last_error is None:
                self.notify(f"MLflow store unreachable ({type(error).__name__}): keeping {self.outbox.folder} "
                            "and retrying in the background; training goes on")
            self.last_error = f"{type(error).__name__}: {str(error)[:300]}"
            return False
        self.outbox.delivered(offset, op, **answers)
        if self.last_error is not None:
            self.notify(f"MLflow store reachable again: delivering {self.outbox.folder}")
            self.last_error = None
        return True

    def deliver(self, timeout: float) -> int:
        """Deliver in the foreground until done or ``timeout`` seconds; returns the operations left."""
        deadline = time.monotonic() + timeout
        wait = BACKOFF[0]
        while not self.deliver_once() and time.monotonic() + wait < deadline:
            time.sleep(wait)
            wait = min(wait * 2, BACKOFF[1])
        return self.outbox.count_pending()

    def start(self) -> Sender:
        """Deliver in a background thread until :meth:`stop` (no-op when another process is the sender)."""
        if self.acquire():
            self._thread = threading.Thread(target=self._loop, name=f"mlflow-outbox-{self.outbox.id}", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """New operations were appended: deliver them now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        try:  # import MLflow and open the store now, while the stage works, rather than when it hands over its logs
            self.client  # noqa: B018 - the property opens the client
        except Exception:  # noqa: BLE001 - an unreachable store is retried by deliver_once below, with its message
            pass
        wait = BACKOFF[0]
        while not self._stop.is_set():
            if self.deliver_once():
                wait = BACKOFF[0]
                self._wake.wait(5.0)
            else:
                self._wake.wait(wait)
                wait = min(wait * 2, BACKOFF[1])
            self._wake.clear()

    def stop(self, timeout: float) -> int:
        """Stop the thread after one last attempt of at most ``timeout`` seconds; returns the operations left."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._thread = None
            left = self.deliver(timeout)
            self.release()
            return left
        return self.outbox.count_pending()
