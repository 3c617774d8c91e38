"""Fleet pages: the node list with filters, a node's page (lifecycle, GPUs), sites, and the forms
to add a node and change its state. They read through the same scoped services as the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Select

from computelease.auth.core import Principal
from computelease.auth.deps import Session
from computelease.catalog import service as catalog_service
from computelease.errors import AppError, Forbidden, Unprocessable
from computelease.fleet import core, service
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node, Site, SiteKind
from computelease.fleet.schemas import NodeIn
from computelease.kit.pagination import PageParams, paginate
from computelease.kit.time import utcnow
from computelease.web import i18n
from computelease.web.labels import N_, labeller
from computelease.web.pages import Csrf, Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100

# Names of the fleet's stored codes. Kept here until web/labels.py takes them in.
LABELS = {
    "ordered": N_("Ordered"),
    "delivered": N_("Delivered"),
    "accepted": N_("Accepted"),
    "in_service": N_("In service"),
    "faulty": N_("Faulty"),
    "repair": N_("In repair"),
    "maintenance": N_("Maintenance"),
    "retired": N_("Retired"),
    "sold": N_("Sold"),
    # GPU health, as telemetry judges it
    "healthy": N_("healthy"),
    "degraded": N_("degraded"),
    "unhealthy": N_("unhealthy"),
    "down": N_("down"),
    "own_center": N_("Own compute centre"),
    "colocation": N_("Colocation IDC"),
}
STATE_COLOURS = {
    "ordered": "#b0b7c3",
    "delivered": "#8fa3bf",
    "accepted": "#6c8ebf",
    "in_service": "#2e9d5b",
    "faulty": "#c0392b",
    "repair": "#e67e22",
    "maintenance": "#d4ac0d",
    "retired": "#7f8c8d",
    "sold": "#34495e",
}


label = labeller(LABELS, "The translated name of a fleet code (state, kind...) or any other code.")


def local(value: datetime | None, zone: str = "Asia/Shanghai") -> str:
    """A stored UTC instant as the site's wall-clock time, as operators there read it."""
    return "" if value is None else value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(
        request,
        template,
        status_code=status_code,
        label=label,
        local=local,
        state_colours=STATE_COLOURS,
        **context,
    )


def _staff(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise Forbidden("only operators and administrators change the fleet")


def _parse_local(text: str, zone: str) -> datetime | None:
    """A ``datetime-local`` form value, read in the site's time zone."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Unprocessable(f"{text!r} is not a date and time") from None
    return value.replace(tzinfo=ZoneInfo(zone)) if value.tzinfo is None else value


# ---------------------------------------------------------------------------------------- fleet


def _filters(
    site: int | None, model: str | None, fabric: str | None, state: str | None, customer: int | None = None
) -> tuple[dict[str, Any], list[NodeState] | None]:
    states = None
    if state:
        try:
            states = [NodeState(state)]
        except ValueError:
            states = []
    pairs = (("site", site), ("model", model), ("fabric", fabric), ("state", state), ("customer", customer))
    query = {k: v for k, v in pairs if v}
    return query, states


def _listed(
    viewer: Principal,
    site: int | None,
    model: str | None,
    fabric: str | None,
    states: list[NodeState] | None,
    customer: int | None,
) -> Select[tuple[Node]]:
    """The nodes the fleet page and its CSV list; an unknown state in the query matches nothing."""
    stmt = service.filter_nodes(
        service.readable_nodes(viewer),
        site_id=site,
        model=model,
        fabric=fabric,
        states=states,
        customer_id=customer,
    )
    return stmt.where(Node.id.is_(None)) if states == [] else stmt


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    site: Annotated[int | None, Query()] = None,
    model: str | None = None,
    fabric: str | None = None,
    state: str | None = None,
    customer: Annotated[int | None, Query()] = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    query, states = _filters(site, model, fabric, state, customer)
    base = _listed(viewer, site, model, fabric, states, customer)
    nodes, total = paginate(
        session, base.order_by(Node.serial), PageParams(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    )
    counts = service.state_counts(
        session,
        viewer,
        service.filter_nodes(
            service.readable_nodes(viewer), site_id=site, model=model, fabric=fabric, customer_id=customer
        ),
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return _page(
        request,
        "fleet/nodes.html",
        nodes=nodes,
        total=total,
        page=page,
        pages=pages,
        prev_url=f"/fleet?{urlencode(query | {'page': page - 1})}" if page > 1 else None,
        next_url=f"/fleet?{urlencode(query | {'page': page + 1})}" if page < pages else None,
        counts=counts,
        choices=service.distinct_values(session, viewer),
        states=list(NodeState),
        query=query,
    )


@router.get("/fleet/nodes.csv")
def fleet_csv(
    session: Session,
    viewer: Viewer,
    site: Annotated[int | None, Query()] = None,
    model: str | None = None,
    fabric: str | None = None,
    state: str | None = None,
    customer: Annotated[int | None, Query()] = None,
) -> Response:
    _query, states = _filters(site, model, fabric, state, customer)
    stmt = _listed(viewer, site, model, fabric, states, customer)
    return Response(
        service.export_nodes(session, viewer, stmt),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="nodes.csv"'},
    )


def _node_form(
    request: Request, session: Session, viewer: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    catalog = catalog_service.catalog_for(session, viewer)
    sites = list(session.scalars(service.readable_sites(viewer).order_by(Site.code)))
    return _page(
        request,
        "fleet/node_new.html",
        status_code=status_code,
        skus=catalog.skus,
        sites=sites,
        states=[NodeState.ordered, NodeState.delivered, NodeState.accepted, NodeState.in_service],
        form=context.pop("form", {}),
        errors=context.pop("errors", []),
        **context,
    )


@router.get("/fleet/nodes/new", response_class=HTMLResponse)
def new_node_form(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    _staff(viewer)
    return _node_form(request, session, viewer, form={"currency": "CNY", "state": "ordered"})


@router.post("/fleet/nodes/new", dependencies=[Csrf])
def create_node(
    request: Request,
    session: Session,
    viewer: Viewer,
    serial: Annotated[str, Form()] = "",
    sku_id: Annotated[str, Form()] = "",
    site_id: Annotated[str, Form()] = "",
    rack_id: Annotated[str, Form()] = "",
    fabric: Annotated[str, Form()] = "",
    purchase_cost: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "CNY",
    purchase_date: Annotated[str, Form()] = "",
    supplier: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "ordered",
    state_since: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    _staff(viewer)
    form = {
        "serial": serial,
        "sku_id": sku_id,
        "site_id": site_id,
        "rack_id": rack_id,
        "fabric": fabric,
        "purchase_cost": purchase_cost,
        "currency": currency,
        "purchase_date": purchase_date,
        "supplier": supplier,
        "state": state,
        "state_since": state_since,
        "note": note,
    }
    try:
        site = session.get(Site, int(site_id)) if site_id.strip().isdigit() else None
        since = _parse_local(state_since, site.time_zone if site else "Asia/Shanghai")
        data = NodeIn(
            serial=serial,
            sku_id=sku_id,
            site_id=site_id.strip() or None,
            rack_id=rack_id.strip() or None,
            fabric=fabric or None,
            purchase_cost=Decimal(purchase_cost.replace(",", "")) if purchase_cost.strip() else None,
            currency=currency,
            purchase_date=purchase_date or None,
            supplier=supplier,
            state=state,
            state_since=since,
            note=note,
        )
        node = service.create_node(session, data)
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _node_form(request, session, viewer, status_code=422, form=form, errors=errors)
    except InvalidOperation:
        return _node_form(
            request, session, viewer, status_code=422, form=form, errors=[f"purchase_cost: {purchase_cost!r}"]
        )
    except AppError as exc:
        session.rollback()  # nothing of a refused form may be committed with the page's transaction
        return _node_form(request, session, viewer, status_code=exc.status, form=form, errors=[exc.detail])
    return RedirectResponse(f"/fleet/nodes/{node.id}", status_code=303)


def _timeline_chart(intervals: list[core.StateInterval], until: datetime) -> str:
    fig = go.Figure(
        layout={
            "barmode": "overlay",
            "height": 160,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 30},
            "xaxis": {"type": "date"},
            "yaxis": {"visible": False},
            "showlegend": True,
            "legend": {"orientation": "h", "y": -0.4},
        }
    )
    seen: set[str] = set()
    for interval in intervals:
        end = interval.end or until
        state = interval.state.value
        fig.add_trace(
            go.Bar(
                x=[(end - interval.start).total_seconds() * 1000],
                base=[interval.start.isoformat()],
                y=[""],
                orientation="h",
                name=label(state),
                legendgroup=state,
                showlegend=state not in seen,
                marker_color=STATE_COLOURS[state],
                hovertext=f"{label(state)}: {local(interval.start)} – {local(interval.end) or '…'}",
                hoverinfo="text",
            )
        )
        seen.add(state)
    return fig.to_json()


def _node_page(
    request: Request,
    session: Session,
    viewer: Principal,
    node_id: int,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    i18n.current.set(locale_of(request))  # the chart's labels are made before the template renders
    node = service.get_node(session, viewer, node_id)
    history = service.events(session, viewer, node.id)
    now = utcnow()
    intervals = service.node_intervals(session, viewer, node.id)
    catalog = catalog_service.catalog_for(session, viewer)
    sku = service.sku_or_none(catalog, node.sku_id)
    totals = core.durations(intervals, until=now)
    return _page(
        request,
        "fleet/node.html",
        status_code=status_code,
        node=node,
        sku=sku,
        events=list(reversed(history)),
        next_states=core.allowed_next(node.state) if viewer.is_staff else (),
        zone=node.site.time_zone,
        chart=_timeline_chart(intervals, now) if intervals else None,
        totals=[(s, totals[s]) for s in NodeState if s in totals],
        hours=lambda d: f"{d / timedelta(hours=1):,.1f}",
        error=context.pop("error", None),
        serving=_allocation_history(session, viewer, node.id),
        **_acceptance(session, viewer, node.id),
        **_financing(session, viewer, node.id),
        now_=_health(session, viewer, node.id),
        **context,
    )


def _health(session: Session, viewer: Principal, node_id: int) -> Any:
    # Imported here: telemetry builds on the fleet, so the fleet cannot import it at module level.
    from computelease.telemetry import service as telemetry

    return telemetry.node_health(session, viewer, node_id)


def _financing(session: Session, viewer: Principal, node_id: int) -> dict[str, Any]:
    """The leases this node secures that the viewer may see, with each one's position today; None for
    a customer (who finances the fleet is the operator's and its lessors' business).
    Imported here: finance builds on the fleet, so the fleet cannot import it at module level."""
    from computelease.auth.core import Role
    from computelease.finance import service as finance
    from computelease.finance.models import Lease, LeaseAsset
    from computelease.finance.pages import flabel

    if not viewer.is_staff and viewer.role != Role.lessor:
        return {"financing": None}
    stmt = (
        finance.readable_leases(viewer)
        .join(LeaseAsset, LeaseAsset.lease_id == Lease.id)
        .where(LeaseAsset.node_id == node_id)
        .order_by(Lease.start_date.desc(), Lease.id.desc())
    )
    return {
        "financing": [(lease, finance.position(lease)) for lease in session.scalars(stmt)],
        "flabel": flabel,
    }


def _acceptance(session: Session, viewer: Principal, node_id: int) -> dict[str, Any]:
    # Imported here: the probe builds on the fleet, so the fleet cannot import it at module level.
    from computelease.probe import pages as probe_pages

    return probe_pages.acceptance_context(session, viewer, node_id)


def _allocation_history(session: Session, viewer: Principal, node_id: int) -> list:
    # Imported here: allocation builds on fleet, so fleet cannot import it at module level.
    from computelease.allocation import service as allocation

    stmt = allocation.filter_allocations(allocation.readable_allocations(viewer), node_id=node_id)
    return list(session.scalars(stmt))


@router.get("/fleet/nodes/{node_id}", response_class=HTMLResponse)
def node_page(request: Request, session: Session, viewer: Viewer, node_id: int) -> HTMLResponse:
    return _node_page(request, session, viewer, node_id)


@router.post("/fleet/nodes/{node_id}/transition", dependencies=[Csrf])
def change_state(
    request: Request,
    session: Session,
    viewer: Viewer,
    node_id: int,
    to: Annotated[str, Form()] = "",
    at: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    _staff(viewer)
    node = service.get_node(session, viewer, node_id)
    try:
        try:
            target = NodeState(to)
        except ValueError:
            raise Unprocessable(f"{to!r} is not one of {', '.join(NodeState)}") from None
        when = _parse_local(at, node.site.time_zone)
        service.transition(session, viewer, node.id, target, at=when, reason=reason.strip()[:500])
    except AppError as exc:
        session.rollback()
        return _node_page(request, session, viewer, node_id, status_code=exc.status, error=exc.detail)
    return RedirectResponse(f"/fleet/nodes/{node_id}", status_code=303)


# ---------------------------------------------------------------------------------------- sites


def _site_rows(session: Session, viewer: Principal) -> list[tuple[Site, dict[str, int]]]:
    sites = list(session.scalars(service.readable_sites(viewer).order_by(Site.code)))
    rows = []
    for site in sites:
        counts = service.state_counts(
            session, viewer, service.filter_nodes(service.readable_nodes(viewer), site_id=site.id)
        )
        rows.append(
            (site, {c.state.value: c.nodes for c in counts} | {"total": sum(c.nodes for c in counts)})
        )
    return rows


@router.get("/sites", response_class=HTMLResponse)
def sites_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    return _page(request, "fleet/sites.html", rows=_site_rows(session, viewer), kinds=list(SiteKind))


@router.get("/sites.csv")
def sites_csv(session: Session, viewer: Viewer) -> Response:
    import csv
    import io

    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(
        (
            "code",
            "name",
            "kind",
            "city",
            "pue",
            "power_price_per_kwh",
            "rack_price_per_month",
            "currency",
            "time_zone",
            "racks",
            "nodes",
            "in_service",
        )
    )
    for site, counts in _site_rows(session, viewer):
        writer.writerow(
            (
                site.code,
                site.name,
                site.kind.value,
                site.city,
                site.pue,
                site.power_price_per_kwh,
                site.rack_price_per_month,
                site.currency,
                site.time_zone,
                len(site.racks),
                counts["total"],
                counts["in_service"],
            )
        )
    return Response(
        buf.getvalue().encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sites.csv"'},
    )


@router.get("/sites/{site_id}", response_class=HTMLResponse)
def site_page(request: Request, session: Session, viewer: Viewer, site_id: int) -> HTMLResponse:
    site = service.get_site(session, viewer, site_id)
    counts = service.state_counts(
        session, viewer, service.filter_nodes(service.readable_nodes(viewer), site_id=site.id)
    )
    return _page(
        request,
        "fleet/site.html",
        site=site,
        counts=counts,
        loads=service.rack_loads(session, viewer, site),
    )
