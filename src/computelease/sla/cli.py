"""`computelease sla report`."""

from __future__ import annotations

from typing import Annotated

import typer

from computelease.auth.core import SYSTEM
from computelease.kit.cli import echo_json, echo_table, out, transaction
from computelease.sla import service

app = typer.Typer(name="sla", help="SLA from delivered compute.", no_args_is_help=True)


@app.command("report")
def report(
    contract: Annotated[int, typer.Option(help="contract id")],
    period: Annotated[str, typer.Option(help="month, YYYY-MM, in the contract's time zone")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Availability, credit and evidence of one contract for one month."""
    with transaction() as session:
        result = service.report(session, SYSTEM, contract, period)
    if as_json:
        echo_json(result.to_dict())
        return
    out.print(
        f"contract {contract} {result.period}: availability {result.availability_pct}% "
        f"(target {result.target_pct}%), credit {result.credit} {result.currency} ({result.credit_pct}%)"
    )
    out.print(
        f"GPU-hours: contracted {result.contracted_gpu_hours}, delivered {result.delivered_gpu_hours}, "
        f"excluded {result.excluded_gpu_hours}, counted {result.counted_gpu_hours}"
    )
    if result.evidence:
        echo_table(
            ("gpu", "from", "to", "state", "reason", "incident", "GPU-hours", "excluded"),
            (
                (
                    e.gpu_id or "-",
                    e.start.isoformat(),
                    e.end.isoformat(),
                    e.state,
                    e.reason,
                    e.incident_id,
                    e.gpu_hours,
                    "yes" if e.excluded else "",
                )
                for e in result.evidence
            ),
        )
