"""``launch``: the grid's stages as Ray tasks (GPU packing, several machines), recorded with ``dvc commit``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from stages.common import dvc_executable, exits_on_bad_input, load


@exits_on_bad_input
def main(
    address: Annotated[str, typer.Option(
        "--address", help="'local' starts Ray on this machine; 'auto' or host:port joins a running cluster.")] = "local",
    gpus_per_cell: Annotated[float, typer.Option(
        "--gpus-per-cell", min=0, help="GPUs a stage task reserves; fractions pack cells on one GPU (0.25: four).")] = 0.0,
    cpus_per_cell: Annotated[float, typer.Option(
        "--cpus-per-cell", min=0.01, help="CPUs a stage task reserves (Ray sets its OMP_NUM_THREADS to match).")] = 1.0,
    max_retries: Annotated[int, typer.Option(
        "--max-retries", min=0, help="Retries of a stage whose worker or process died; a retry resumes.")] = 2,
    num_cpus: Annotated[int | None, typer.Option(
        "--num-cpus", min=1, help="With --address local: CPUs of the local Ray instance (default: all).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Run every stage, not only those DVC sees changed.")] = False,
) -> None:
    """Run the stages `dvc repro` would run as Ray tasks, each when its inputs are ready; then `dvc commit` them."""
    from pipeline.launch import cluster
    from pipeline.launch.plan import plan
    from pipeline.tracking.store import tracking_uri

    load(Path("params.yaml"))  # the stages' params file: a bad one fails here, not in every task
    ray = cluster.import_ray(address)
    repo = Path.cwd().resolve()
    resources = cluster.Resources(cpus=cpus_per_cell, gpus=gpus_per_cell, max_retries=max_retries)
    if address not in ("local", "auto"):
        cluster.check_reachable(address)  # before planning: a typo fails in seconds
    stages = plan(repo, force=force)
    if not stages:
        typer.echo("launch: every stage is up to date")
        return
    cluster.connect(ray, address, num_cpus=num_cpus)
    try:
        cluster.check_cluster(ray, repo, resources, tracking_uri())
        typer.echo(f"launch: {len(stages)} stages on {ray.cluster_resources()}")
        outcomes = cluster.run_plan(ray, repo, stages, resources, on_done=_print)
    finally:
        ray.shutdown()
    done = [o.name for o in outcomes if o.ok]
    if done:  # record what ran, so `dvc status` is clean and `dvc repro` runs only what is left
        subprocess.run([dvc_executable(), "commit", "--force", "--quiet", *done], cwd=repo, check=True)
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        typer.echo(f"launch: {len(failed)} of {len(outcomes)} stages failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"launch: all {len(outcomes)} stages done and committed")


def _print(outcome) -> None:
    if outcome.ok:
        typer.echo(f"done   {outcome.name}  {outcome.seconds:.1f} s on {outcome.host}")
    else:
        typer.echo(f"FAILED {outcome.name}: {outcome.error}", err=True)
