"""`computelease telemetry sweep`."""

from __future__ import annotations

from typing import Annotated

import typer

from computelease.kit.cli import out, transaction
from computelease.telemetry import service
from computelease.telemetry.health import HealthPolicy

app = typer.Typer(name="telemetry", help="Node heartbeats and GPU health.", no_args_is_help=True)


@app.command("sweep")
def sweep(
    missed: Annotated[int, typer.Option(min=1, help="down after this many missed heartbeats")] = 3,
) -> None:
    """Mark down every node whose agent stopped sending heartbeats (run it every minute, e.g. by cron)."""
    with transaction() as session:
        downed = service.sweep(session, policy=HealthPolicy(down_after_missed=missed))
    out.print(f"{len(downed)} node(s) marked down" + (": " + ", ".join(downed) if downed else ""))
