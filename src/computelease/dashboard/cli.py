"""`computelease dashboard`: the operator's first look from a shell (or a cron job's --json)."""

from __future__ import annotations

from typing import Annotated

import typer

from computelease.auth.core import SYSTEM
from computelease.dashboard import service
from computelease.dashboard.schemas import DashboardOut
from computelease.kit.cli import echo_json, echo_table, out, transaction

app = typer.Typer(help="The figures the operator sees first: fleet, occupancy, SLA danger, money due.")


@app.callback(invoke_without_command=True)
def dashboard(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Fleet by state, occupancy today, open incidents, contracts in SLA danger this month, revenue,
    overdue receivables and lease payments due within 30 days."""
    with transaction() as session:
        s = service.summary(session, SYSTEM)
    if as_json:
        echo_json(DashboardOut.model_validate(s).model_dump(mode="json"))
        return
    in_service = next(f for f in s.fleet or () if f.state == "in_service")
    occupancy = "–" if s.occupancy_today is None else f"{100 * s.occupancy_today:.1f}%"
    out.print(
        f"as of {s.as_of:%Y-%m-%d %H:%M} UTC: {in_service.gpus:,} GPUs in service on {in_service.nodes:,} "
        f"nodes, occupancy today {occupancy}, {s.open_incidents} open incidents"
    )
    echo_table(
        ("contract", "customer", "availability", "target", "budget used", "standing", "credit now"),
        (
            (
                f"{w.contract_id} {w.name}",
                w.customer,
                f"{w.availability_pct}%",
                f"{w.target_pct}%",
                "–" if w.budget_used is None else f"{100 * w.budget_used:.1f}%",
                w.standing,
                f"{w.credit} {w.currency}",
            )
            for w in s.at_risk
        ),
    )
    echo_table(
        ("month", "currency", "net revenue", "basis", "change"),
        (
            (r.period, r.currency, r.net, r.basis, "–" if r.change is None else f"{100 * r.change:+.1f}%")
            for r in s.revenue or ()
        ),
    )
    for currency, amount in sorted((s.overdue_total or {}).items()):
        out.print(f"overdue receivables: {amount} {currency}")
    echo_table(
        ("due", "lease", "lessee", "rent owed", "penalty", "overdue"),
        (
            (d.due, d.code, d.lessee, f"{d.outstanding} {d.currency}", d.penalty, "yes" if d.overdue else "")
            for d in s.lease_dues or ()
        ),
    )
