"""`computelease allocation ...` and `computelease occupancy`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated

import typer

from computelease.allocation import service
from computelease.allocation.schemas import AllocationOut
from computelease.auth.core import SYSTEM
from computelease.errors import Unprocessable
from computelease.kit.cli import echo_json, echo_table, out, transaction
from computelease.kit.time import as_utc

allocation_app = typer.Typer(help="Allocate nodes to contracts; list allocations.", no_args_is_help=True)
occupancy_app = typer.Typer(help="Occupancy (出租率): in-service vs allocated GPU-hours, idle nodes.")
commands = [("allocation", allocation_app), ("occupancy", occupancy_app)]

_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]


def _utc(value: datetime | None) -> datetime | None:
    # A date or a time without offset is read as UTC, the unit every stored instant is in.
    return None if value is None else as_utc(value)


@allocation_app.command("plan")
def plan(
    as_of: Annotated[datetime | None, typer.Option("--as-of", formats=_FORMATS, help="default: now")] = None,
    rebalance: Annotated[bool, typer.Option(help="release allocations from --as-of on, plan afresh")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, record nothing")] = False,
    contract: Annotated[list[int] | None, typer.Option(help="only this contract id (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Allocate every signed or active contract around the allocations already recorded."""
    with transaction() as session:
        result = service.plan(
            session, SYSTEM, as_of=_utc(as_of), contract_ids=contract, rebalance=rebalance, dry_run=dry_run
        )
        data = asdict(result)
    if as_json:
        echo_json(data)
        return
    verb = "would allocate" if dry_run else "allocated"
    out.print(f"{verb} {len(result.assignments)} node(s); {len(result.shortfalls)} contract(s) short")
    if result.assignments:
        echo_table(
            ("contract", "node", "from", "to"),
            (
                (a.contract_name, a.node_serial, a.start_at.isoformat(), a.end_at.isoformat())
                for a in result.assignments
            ),
        )
    for s in result.shortfalls:
        out.print(
            f"short: {s.contract_name} (id {s.contract_id}) misses {s.missing} {s.unit}: "
            f"{s.reason}: {s.detail}"
        )


@allocation_app.command("list")
def list_(
    contract: Annotated[int | None, typer.Option(help="contract id")] = None,
    node: Annotated[int | None, typer.Option(help="node id")] = None,
    active_at: Annotated[
        datetime | None, typer.Option(formats=_FORMATS, help="running at this instant")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List allocations."""
    with transaction() as session:
        stmt = service.filter_allocations(
            service.readable_allocations(SYSTEM),
            contract_id=contract,
            node_id=node,
            active_at=_utc(active_at),
        )
        rows = [AllocationOut.model_validate(a).model_dump(mode="json") for a in session.scalars(stmt)]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "contract", "node", "from", "to"),
        ((r["id"], r["contract_name"], r["node_serial"], r["start_at"], r["end_at"]) for r in rows),
    )


@occupancy_app.callback(invoke_without_command=True)
def occupancy(
    start: Annotated[
        datetime | None, typer.Option(formats=_FORMATS, help="default: 30 days before end")
    ] = None,
    end: Annotated[datetime | None, typer.Option(formats=_FORMATS, help="default: now")] = None,
    by: Annotated[str, typer.Option(help="site, model, fabric, customer or contract")] = "site",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Occupancy of a period per site, model, fabric, customer or contract."""
    if by not in service.GROUPINGS:
        raise Unprocessable(f"--by must be one of {', '.join(service.GROUPINGS)}, not {by!r}")
    end_utc = _utc(end) or datetime.now().astimezone()
    start_utc = _utc(start) or end_utc - timedelta(days=30)
    with transaction() as session:
        lines = service.occupancy(session, SYSTEM, start_utc, end_utc, by)
    rows = [
        {
            "key": line.key,
            "label": line.label,
            "in_service_gpu_hours": round(line.in_service_gpu_hours, 3),
            "allocated_gpu_hours": round(line.allocated_gpu_hours, 3),
            "down_gpu_hours": round(line.down_gpu_hours, 3),
            "occupancy_pct": line.occupancy_pct,
            "idle_nodes": list(line.idle_nodes),
        }
        for line in lines
    ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        (by, "in service GPU-h", "allocated GPU-h", "occupancy", "idle nodes"),
        (
            (
                r["label"] or r["key"] or "(unallocated)",
                f"{r['in_service_gpu_hours']:,.1f}",
                f"{r['allocated_gpu_hours']:,.1f}",
                "–" if r["occupancy_pct"] is None else f"{r['occupancy_pct']:.1f}%",
                len(r["idle_nodes"]),
            )
            for r in rows
        ),
    )
