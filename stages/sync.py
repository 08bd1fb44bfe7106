"""``sync``: deliver the MLflow logging that cells could not send while the tracking store was away."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages.common import exits_on_bad_input


@exits_on_bad_input
def main(
    runs: Annotated[Path, typer.Option("--runs", help="Folder of the grid cells' outputs.")] = Path("runs"),
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="Deliver here instead of the store each run was logged for."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to keep retrying each outbox.")] = 60.0,
) -> None:
    """Send what runs/<cell>/mlflow/ still holds (metrics, params, artifacts, models) to MLflow; exit 1 if some
    of it still cannot be delivered."""
    from pipeline.tracking import Sender, find_outboxes

    outboxes = [o for o in find_outboxes(runs) if o.count_pending()]
    left_total = 0
    for outbox in outboxes:
        sender = Sender(outbox, tracking_uri=tracking_uri, notify=lambda message: None)
        if not sender.acquire():
            typer.echo(f"{outbox.folder}: being delivered by a running stage; skipped")
            continue
        try:
            before = outbox.count_pending()
            left = sender.deliver(timeout)
        finally:
            sender.release()
        left_total += left
        target = f"run {outbox.run_id}" if outbox.run_id else "no run yet"
        if left:
            typer.echo(f"{outbox.folder}: {left} of {before} operations still undelivered ({sender.last_error})")
        else:
            typer.echo(f"{outbox.folder}: delivered {before} operations ({target})")
        for failure in outbox.state["failed"]:
            typer.echo(f"{outbox.folder}: rejected by the store: {failure['op']['op']}: {failure['error']}")
    typer.echo(f"{len(outboxes)} outboxes with undelivered logging; {left_total} operations left")
    if left_total:
        raise typer.Exit(1)
