"""Options and error handling shared by every stage command."""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from pipeline.config import Params, load_params
from pipeline.errors import InputError

P = ParamSpec("P")
R = TypeVar("R")

ParamsOption = Annotated[
    Path, typer.Option("--params", help="The params file holding the grid and every stage's settings.")
]
VariantOption = Annotated[str, typer.Option("--variant", help="Variant name: a section under 'variants'.")]
SeedOption = Annotated[int, typer.Option("--seed", min=0, help="Training seed of the grid cell.")]

EXIT_BAD_INPUT = 2


def exits_on_bad_input(command: Callable[P, R]) -> Callable[P, R]:
    """Map :class:`InputError` to a one-message stderr report and exit code 2 (ARCHITECTURE contract)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def dvc_executable() -> str:
    """The dvc next to this interpreter (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else "dvc"


def load(params: Path) -> Params:
    """Validate the whole params file before a stage does anything."""
    return load_params(params)


def check_in_grid(cfg: Params, variant: str, seed: int) -> None:
    """A cell command must name a variant defined in params; the seed may be outside the grid (ad-hoc runs).

    Negative seeds never get here: ``SeedOption`` has ``min=0``, so Typer rejects them with exit 2.
    """
    cfg.variant(variant)


def exit_now(code: int | str | None) -> None:
    """Leave the process as ``sys.exit(code)`` would, without tearing down its modules.

    A stage that imported torch, torchvision and MLflow spends 1.2–1.7 s (2 cores) freeing some 3,000 modules at
    interpreter shutdown, once per DVC stage. What shutdown does that matters is kept, in its order: wait for
    non-daemon threads, run the atexit handlers (logging, multiprocessing, MLflow, weakref finalizers), flush.
    Under a profiler or debugger (``python -m cProfile -m stages``) it exits normally so they can write their output.
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code or 0)
