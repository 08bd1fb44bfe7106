"""``server``: the team MLflow server (PostgreSQL backend store, local artifact store) on loopback, until Ctrl-C."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from stages.common import exits_on_bad_input


@exits_on_bad_input
def main(
    root: Annotated[Path, typer.Option("--root", help="Folder of the PostgreSQL cluster and the artifacts.")] = Path(
        ".mlflow-server"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="MLflow server port.")] = 5000,
    pg_port: Annotated[int, typer.Option("--pg-port", min=1, max=65535, help="PostgreSQL port.")] = 5433,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on; keep loopback unless you add auth.")] = (
        "127.0.0.1"
    ),
) -> None:
    """Start PostgreSQL and `mlflow server` on 127.0.0.1; point MLFLOW_TRACKING_URI at the printed URL."""
    from pipeline.teamserver import MlflowServer, Postgres

    root = root.resolve()
    postgres = Postgres(root / "postgres", pg_port).start()
    try:
        server = MlflowServer(postgres.uri, root / "artifacts", port, host=host).start(log=root / "mlflow-server.log")
        typer.echo(f"MLflow server on {server.url} (backend {postgres.uri}, artifacts {root / 'artifacts'})")
        typer.echo(f"  export MLFLOW_TRACKING_URI={server.url}")
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            typer.echo("stopping")
        finally:
            server.stop()
    finally:
        postgres.stop()
