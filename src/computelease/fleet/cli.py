"""`computelease site ...` and `computelease node ...`: the fleet from the command line."""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from computelease.auth.core import SYSTEM
from computelease.errors import BadRequest, Unprocessable
from computelease.fleet import csvio, service
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node, Site, SiteKind
from computelease.fleet.schemas import NodeOut, RackIn, SiteIn, SiteOut
from computelease.kit.cli import echo_json, echo_table, err, out, transaction

site_app = typer.Typer(
    help="Sites (own compute centres and colocation IDCs) and their racks.", no_args_is_help=True
)
node_app = typer.Typer(help="Nodes: list, show, change state, CSV import and export.", no_args_is_help=True)
commands = [("site", site_app), ("node", node_app)]


def _invalid(exc: ValidationError) -> Unprocessable:
    fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return Unprocessable(f"fix these values: {fields}")


@site_app.command("list")
def site_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List sites."""
    with transaction() as session:
        rows = [
            SiteOut.model_validate(s).model_dump(mode="json")
            for s in session.scalars(service.readable_sites(SYSTEM).order_by(Site.code))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("code", "name", "kind", "city", "PUE", "power/kWh", "rack/month", "racks"),
        (
            (
                r["code"],
                r["name"],
                r["kind"],
                r["city"],
                r["pue"],
                f"{r['power_price_per_kwh']} {r['currency']}",
                f"{r['rack_price_per_month']} {r['currency']}",
                len(r["racks"]),
            )
            for r in rows
        ),
    )


@site_app.command("create")
def site_create(
    code: Annotated[str, typer.Argument(help="short unique code, used in CSV files")],
    name: Annotated[str, typer.Option(help="display name")],
    kind: Annotated[SiteKind, typer.Option(help="own_center or colocation")],
    city: Annotated[str, typer.Option()],
    pue: Annotated[str, typer.Option(help="power usage effectiveness, e.g. 1.25")],
    power_price: Annotated[str, typer.Option(help="power price per kWh, e.g. 0.45")],
    rack_price: Annotated[str, typer.Option(help="rack rent per month")] = "0",
    currency: str = "CNY",
    time_zone: str = "Asia/Shanghai",
    racks: Annotated[int, typer.Option(help="create this many racks R01, R02…")] = 0,
    rack_kw: Annotated[str | None, typer.Option(help="power budget of each created rack, kW")] = None,
) -> None:
    """Create a site (and, optionally, numbered racks)."""
    try:
        data = SiteIn(
            code=code,
            name=name,
            kind=kind,
            city=city,
            pue=pue,
            power_price_per_kwh=power_price,
            rack_price_per_month=rack_price,
            currency=currency,
            time_zone=time_zone,
            racks=[RackIn(name=f"R{i:02d}", power_kw=rack_kw) for i in range(1, racks + 1)],
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    with transaction() as session:
        site = service.create_site(session, data)
        site_id = site.id
    out.print(f"site {code} created (id {site_id})")


@site_app.command("add-rack")
def site_add_rack(
    code: Annotated[str, typer.Argument(help="site code")],
    name: Annotated[str, typer.Argument(help="rack name")],
    power_kw: Annotated[str | None, typer.Option(help="power budget, kW")] = None,
) -> None:
    """Add a rack to a site."""
    try:
        data = RackIn(name=name, power_kw=power_kw)
    except ValidationError as exc:
        raise _invalid(exc) from None
    with transaction() as session:
        site = service.get_site_by_code(session, SYSTEM, code)
        service.add_rack(session, SYSTEM, site.id, data)
    out.print(f"rack {name} added to {code}")


@node_app.command("list")
def node_list(
    site: Annotated[str | None, typer.Option(help="site code")] = None,
    model: Annotated[str | None, typer.Option(help="accelerator id")] = None,
    fabric: str | None = None,
    state: Annotated[list[NodeState] | None, typer.Option(help="repeat for several")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List nodes, filtered."""
    with transaction() as session:
        site_id = service.get_site_by_code(session, SYSTEM, site).id if site else None
        stmt = service.filter_nodes(
            service.readable_nodes(SYSTEM), site_id=site_id, model=model, fabric=fabric, states=state
        )
        rows = [
            NodeOut.model_validate(n).model_dump(mode="json")
            for n in session.scalars(stmt.order_by(Node.serial))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("serial", "model", "site", "rack", "fabric", "state", "since", "cost"),
        (
            (
                r["serial"],
                r["model"],
                r["site_code"],
                r["rack_name"],
                r["fabric"],
                r["state"],
                r["state_since"][:16],
                f"{r['purchase_cost']} {r['currency']}",
            )
            for r in rows
        ),
    )


@node_app.command("show")
def node_show(serial: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a node with its GPUs and state history."""
    from computelease.fleet.schemas import NodeEventOut

    with transaction() as session:
        node = service.get_node_by_serial(session, SYSTEM, serial)
        data = NodeOut.model_validate(node).model_dump(mode="json")
        data["events"] = [
            NodeEventOut.model_validate(e).model_dump(mode="json")
            for e in service.events(session, SYSTEM, node.id)
        ]
    if as_json:
        echo_json(data)
        return
    out.print(
        f"{data['serial']}  {data['model']} ({data['sku_id']})  {data['state']} since {data['state_since']}"
    )
    out.print(f"site {data['site_code']}  rack {data['rack_name'] or '-'}  fabric {data['fabric'] or '-'}")
    out.print(f"cost {Decimal(data['purchase_cost']):,} {data['currency']}  bought {data['purchase_date']}")
    echo_table(("GPU", "uuid", "serial"), ((g["index"], g["uuid"], g["serial"]) for g in data["gpus"]))
    echo_table(
        ("at", "from", "to", "reason", "actor"),
        ((e["at"], e["from_state"], e["to_state"], e["reason"], e["actor"]) for e in data["events"]),
    )


@node_app.command("state")
def node_state(
    serial: str,
    to: Annotated[NodeState, typer.Argument(help="the new state")],
    at: Annotated[str | None, typer.Option(help="when, ISO 8601 with an offset; now when left out")] = None,
    reason: str = "",
) -> None:
    """Move a node to another state (the lifecycle decides which moves are allowed)."""
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise BadRequest(f"--at {at!r} is not ISO 8601, e.g. 2025-03-01T09:30:00+08:00") from None
        if when.tzinfo is None:
            raise BadRequest(f"--at {at!r} needs an offset, e.g. +08:00 or Z")
    with transaction() as session:
        node = service.get_node_by_serial(session, SYSTEM, serial)
        service.transition(session, SYSTEM, node.id, to, at=when, reason=reason)
    out.print(f"node {serial} is now {to.value}")


@node_app.command("import")
def node_import(
    file: Annotated[Path, typer.Argument(help="CSV with the columns `node export` writes")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check the file, write nothing")] = False,
) -> None:
    """Add the nodes of a CSV file, all or none. Every bad row is reported with its line."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read {file}: {exc.strerror}") from None
    try:
        with transaction() as session:
            result = service.import_nodes(session, data, dry_run=dry_run)
            created = len(result.nodes)
    except service.CsvInvalid as exc:
        for e in exc.errors:
            err.print(f"{file}:{e.line}: {e.message}")
        err.print(f"error: {len({e.line for e in exc.errors})} bad row(s) in {file}; nothing was imported")
        raise typer.Exit(1) from None
    for rack in result.racks_created:
        out.print(f"rack {rack} created")
    if dry_run:
        out.print(f"{file}: {result.rows} node(s) would be imported; nothing was written (dry run)")
    else:
        out.print(f"{created} node(s) imported from {file}")


@node_app.command("export")
def node_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write; standard output when left out")
    ] = None,
    site: Annotated[str | None, typer.Option(help="site code")] = None,
    model: Annotated[str | None, typer.Option(help="accelerator id")] = None,
    state: Annotated[list[NodeState] | None, typer.Option(help="repeat for several")] = None,
) -> None:
    """Write the nodes as CSV (UTF-8 with BOM, the columns `node import` reads)."""
    with transaction() as session:
        site_id = service.get_site_by_code(session, SYSTEM, site).id if site else None
        stmt = service.filter_nodes(
            service.readable_nodes(SYSTEM), site_id=site_id, model=model, states=state
        )
        rows = service.export_rows(session, stmt)
    data = csvio.write_nodes(rows)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(data)
    err.print(f"{len(rows)} node(s) written to {output}")
