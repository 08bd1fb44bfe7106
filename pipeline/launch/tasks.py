"""What a Ray worker runs: one stage command in the shared repository (standard library only: cheap to import)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1
TAIL_CHARS = 4000


class StageFailed(Exception):
    """The stage command exited non-zero; the message ends with the tail of its output."""

    def __init__(self, name: str, returncode: int, tail: str) -> None:
        super().__init__(f"{name} exited {returncode}:\n{tail}")
        self.name, self.returncode, self.tail = name, returncode, tail

    def __reduce__(self):  # Ray pickles exceptions to hand them to the driver
        return type(self), (self.name, self.returncode, self.tail)


class StageKilled(StageFailed):
    """The stage process died of a signal (OOM killer, preemption): worth a retry, which resumes it."""


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the Ray worker dies, so a retried cell never runs twice at once."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_stage(repo: str, name: str, cmd: str, driver_env: dict[str, str], *upstream: dict) -> dict:
    """Run ``cmd`` in ``repo`` as ``dvc repro`` would (``DVC_ROOT`` set), with this worker's interpreter first on
    PATH and the driver's MLflow settings; ``upstream`` (the results of the stages it needs) only orders the tasks."""
    env = {**os.environ, **driver_env, "DVC_ROOT": repo}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GENBENCH_LAUNCH_STAGE"] = name
    start = time.monotonic()
    # `exec`: the shell becomes the stage process, which then inherits the parent-death signal
    result = subprocess.run(
        cmd if "&&" in cmd else f"exec {cmd}", shell=True, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    if result.returncode != 0:
        error = StageKilled if result.returncode < 0 else StageFailed
        raise error(name, result.returncode, result.stdout[-TAIL_CHARS:])
    return {"name": name, "seconds": time.monotonic() - start, "host": socket.gethostname(),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "")}


def sees_marker(path: str) -> tuple[str, bool]:
    """Whether this node sees the driver's marker file: the repository is on a shared filesystem."""
    return socket.gethostname(), Path(path).is_file()
