"""Connect to Ray, check the cluster can run the grid, run the plan's stages as tasks and report each as it ends."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import InputError
from pipeline.launch.plan import PlannedStage
from pipeline.launch.tasks import StageFailed, StageKilled, run_stage, sees_marker

INSTALL_HINT = "Ray is an optional extra: pip install -e '.[ray]' (make setup installs it)"
CONNECT_TIMEOUT_S = 5.0


class Resources(BaseModel):
    """What every stage task asks Ray for, and how often a task whose worker died is retried."""

    model_config = ConfigDict(frozen=True)

    cpus: float = Field(1.0, gt=0)
    gpus: float = Field(0.0, ge=0)
    max_retries: int = Field(2, ge=0)


class Outcome(BaseModel):
    """How one planned stage ended."""

    name: str
    ok: bool
    seconds: float | None = None
    host: str | None = None
    error: str | None = None


def has_ray_token(env: Mapping[str, str], home: Path) -> bool:
    """Whether Ray would find an authentication token here: ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``
    names, or ``~/.ray/auth_token``."""
    if env.get("RAY_AUTH_TOKEN"):
        return True
    return Path(env.get("RAY_AUTH_TOKEN_PATH") or home / ".ray" / "auth_token").is_file()


def import_ray(address: str) -> Any:
    """Ray, with token authentication on when joining a cluster with a token at hand: Ray does that by itself
    only for a cluster it starts, and reads the mode once, at import. ``RAY_AUTH_MODE`` set by the user wins;
    without a token the mode is left to Ray (a cluster started without one has authentication off)."""
    if address != "local" and has_ray_token(os.environ, Path.home()):
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError:
        raise InputError(f"launch needs Ray, which is not installed. {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str) -> None:
    """``host:port`` must accept a TCP connection, so that a typo fails in seconds, not after Ray's retries."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address!r}: expected host:port, 'auto' or 'local'")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise InputError(f"--address {address}: no Ray cluster answers there ({error})") from None


def connect(ray: Any, address: str, *, num_cpus: int | None = None) -> None:
    """``local`` starts a Ray instance on this machine; ``auto`` or ``host:port`` (see :func:`check_reachable`)
    joins a running cluster."""
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, configure_logging=False, log_to_driver=False)
        else:
            ray.init(address=address, configure_logging=False, log_to_driver=False)
    except ConnectionError as error:
        raise InputError(f"--address {address}: cannot join the Ray cluster ({error})") from None


def check_cluster(ray: Any, repo: Path, resources: Resources, tracking_uri: str) -> None:
    """Refuse what cannot work: GPUs asked of a cluster without any, a repository or sqlite store not shared."""
    total = ray.cluster_resources()
    if resources.gpus > 0 and total.get("GPU", 0) <= 0:
        raise InputError(f"--gpus-per-cell {resources.gpus}: the Ray cluster has no GPU ({total})")
    if resources.cpus > total.get("CPU", 0):
        raise InputError(f"--cpus-per-cell {resources.cpus}: the Ray cluster has {total.get('CPU', 0)} CPUs")
    nodes = [node for node in ray.nodes() if node["Alive"]]
    check_tracking(tracking_uri, {node["NodeManagerAddress"] for node in nodes})
    check_shared_repo(ray, repo, [node["NodeID"] for node in nodes])


def check_tracking(uri: str, node_addresses: set[str]) -> None:
    """A sqlite file is one machine's: with workers on several machines ask for a tracking server."""
    if uri.startswith("sqlite:") and len(node_addresses) > 1:
        raise InputError(
            f"MLflow store {uri} is a sqlite file but the Ray cluster spans {len(node_addresses)} machines "
            f"({', '.join(sorted(node_addresses))}); set MLFLOW_TRACKING_URI to a tracking server "
            "(python -m stages server starts one)"
        )


def check_shared_repo(ray: Any, repo: Path, node_ids: list[str]) -> None:
    """A marker file the driver writes must be visible from a task on every node (a shared filesystem)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = repo / ".dvc" / "tmp" / f"launch-{uuid.uuid4().hex}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("genbench launch: is this repository shared with every Ray node?\n")
    try:
        probe = ray.remote(num_cpus=0)(sees_marker)
        seen = ray.get([
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(str(marker))
            for node_id in node_ids
        ])
    finally:
        marker.unlink(missing_ok=True)
    blind = sorted(host for host, visible in seen if not visible)
    if blind:
        raise InputError(f"{repo} is not visible from Ray node(s) {', '.join(blind)}: launch needs the repository "
                         "on a filesystem every node mounts at the same path")


def driver_env() -> dict[str, str]:
    """The driver's MLflow settings, handed to every task: workers started elsewhere do not share its shell."""
    return {key: value for key, value in os.environ.items() if key.startswith("MLFLOW_")}


def run_plan(ray: Any, repo: Path, stages: list[PlannedStage], resources: Resources,
             on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Submit every stage with its upstream tasks' results as arguments (Ray starts it when they are ready)."""
    remote = ray.remote(run_stage)
    options = {"num_cpus": resources.cpus, "num_gpus": resources.gpus, "max_retries": resources.max_retries,
               "retry_exceptions": [StageKilled]}
    refs: dict[str, Any] = {}
    for stage in stages:  # topological order: upstream refs exist
        refs[stage.name] = remote.options(name=stage.name, **options).remote(
            str(repo), stage.name, stage.cmd, driver_env(), *(refs[name] for name in stage.upstream))
    names = {ref: name for name, ref in refs.items()}
    pending, outcomes = list(refs.values()), []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        outcome = _outcome(ray, names[done[0]], done[0])
        outcomes.append(outcome)
        on_done(outcome)
    return outcomes


def _outcome(ray: Any, name: str, ref: Any) -> Outcome:
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause if isinstance(error.cause, StageFailed) else None
        if cause is not None and cause.name != name:
            return Outcome(name=name, ok=False, error=f"not run: {cause.name} failed")
        return Outcome(name=name, ok=False, error=str(cause) if cause else str(error))
    except ray.exceptions.RayError as error:  # worker died more often than --max-retries
        return Outcome(name=name, ok=False, error=f"{type(error).__name__}: {error}")
    return Outcome(name=name, ok=True, seconds=result["seconds"], host=result["host"])
