"""``train``: one grid cell (variant × seed)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from stages.common import ParamsOption, SeedOption, VariantOption, check_in_grid, exits_on_bad_input, load


class OnConfigChange(str, Enum):
    """What to do when the checkpoints were written with another configuration."""

    refuse = "refuse"
    restart = "restart"


@exits_on_bad_input
def main(
    variant: VariantOption,
    seed: SeedOption,
    params: ParamsOption = Path("params.yaml"),
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard this cell's checkpoints and train from step 0.")
    ] = False,
    on_config_change: Annotated[
        OnConfigChange,
        typer.Option(
            "--on-config-change",
            help="When checkpoints were made with other params: refuse (exit 2, listing the keys) or restart.",
        ),
    ] = OnConfigChange.refuse,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train one grid cell: resumes from its newest checkpoint; writes runs/<variant>-<seed>/ and an MLflow run."""
    cfg = load(params)
    check_in_grid(cfg, variant, seed)
    from pipeline.tracking import git_commit, grid_key
    from pipeline.training.loop import train_cell  # heavy imports after validation
    from pipeline.training.signals import Interrupted

    try:
        summary = train_cell(
            cfg, variant, seed, restart=restart, on_config_change=on_config_change.value, progress=progress,
            grid_key=grid_key(params, git_commit()),
        )
    except Interrupted as stop:
        typer.echo(f"{variant}-{seed}: {stop}; re-run the same command to resume", err=True)
        raise typer.Exit(stop.exit_code) from None
    if summary is None:
        return  # torchrun: ranks other than 0 write nothing
    ips = summary.images_per_second
    typer.echo(
        f"{variant}-{seed}: {summary.status} after {summary.steps} steps in {summary.train_seconds:.1f} s"
        + (f" ({ips:.0f} img/s)" if ips else "")
        + (f" — {summary.reason}" if summary.reason else "")
    )
