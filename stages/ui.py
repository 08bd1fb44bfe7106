"""``ui``: print where each genbench experiment's runs table is, then serve the MLflow UI on the local store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(
    params: ParamsOption = Path("params.yaml"),
    host: Annotated[str, typer.Option("--host", help="Address the UI listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port the UI listens on.")] = 5000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start `mlflow ui` after printing.")] = True,
) -> None:
    """Print the URL of every experiment's runs table (tracking.experiment_prefix) with its description, then start
    `mlflow ui` on the store ($MLFLOW_TRACKING_URI or ./mlflow.db). A tracking server has its own UI: then only
    its URLs are printed."""
    cfg = load(params)
    from pipeline.tracking.sender import fail_fast_http
    from pipeline.tracking.store import experiment_views, open_client, tracking_uri

    fail_fast_http()  # an unreachable tracking server fails in seconds, as in the other stages, not after minutes
    uri = tracking_uri()
    remote = uri.startswith(("http://", "https://"))
    base = uri if remote else f"http://{host}:{port}"
    views = experiment_views(open_client(uri), cfg.tracking.experiment_prefix, base)
    for name, url, description in views:
        typer.echo(f"{name}: {url}" + (f"\n  {description}" if description else ""))
    if not views:
        typer.echo(f"no {cfg.tracking.experiment_prefix}-* experiment in {uri} yet: run `make repro` first")
    if serve and not remote:
        sys.stdout.flush()
        mlflow = str(Path(sys.executable).with_name("mlflow"))
        os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)])
