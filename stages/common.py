"""Options and error handling shared by every stage command."""

from __future__ import annotations

import functools
import sys
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
