"""The SLA page of a contract: a month's availability, credit and evidence, with a timeline chart.

Reads go through :func:`computelease.sla.service.report`, which starts from ``readable_contracts``: a
customer sees only its own contracts (another's is a 404, as in the API) and a lessor none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from computelease.auth.core import Principal
from computelease.auth.deps import Session
from computelease.contracts import service as contracts
from computelease.contracts.models import Contract
from computelease.fleet import service as fleet
from computelease.fleet.models import Node
from computelease.kit.time import utcnow
from computelease.sla import core, service
from computelease.telemetry import service as telemetry
from computelease.telemetry.models import Incident
from computelease.web import i18n
from computelease.web.labels import N_
from computelease.web.pages import Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

PERIOD = Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM in the contract's time zone")
# How far back the period picker goes.
MONTHS_SHOWN = 24

STATE_LABELS = {
    core.UNHEALTHY: N_("Unhealthy"),
    core.DOWN: N_("Down"),
    core.DEGRADED: N_("Degraded"),
    core.MAINTENANCE: N_("Maintenance"),
    core.SHORTFALL: N_("Fewer GPUs allocated than contracted"),
    core.ALLOCATED: N_("Below rated throughput"),
    core.HEALTHY: N_("Below rated throughput"),
}
STATE_COLOURS = {
    core.DOWN: "#c0392b",
    core.UNHEALTHY: "#e67e22",
    core.DEGRADED: "#d4ac0d",
    core.ALLOCATED: "#b7950b",
    core.HEALTHY: "#b7950b",
    core.MAINTENANCE: "#7f8c8d",
    core.SHORTFALL: "#8e44ad",
}
MAINTENANCE_LABELS = {
    core.MAINT_EXCLUDED: N_("excluded (announced, within the allowance)"),
    core.MAINT_OVER_ALLOWANCE: N_("counted (beyond the allowance)"),
    core.MAINT_LATE_NOTICE: N_("counted (notice too late)"),
}


def state_label(state: str) -> str:
    return i18n.gettext(STATE_LABELS[state]) if state in STATE_LABELS else state


def availability(pct: Decimal) -> str:
    """Three decimals, cut rather than rounded: 99.9899 shows as 99.989%, never as a met 99.990%."""
    return f"{Decimal(pct).quantize(Decimal('0.001'), rounding=ROUND_FLOOR)}%"


def hours(value: Decimal) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):,}"


def num(value: Decimal | None) -> str:
    return "–" if value is None else f"{Decimal(value).normalize():f}"


def previous_months(contract: Contract, now: datetime, count: int = MONTHS_SHOWN) -> list[str]:
    """The months a report can be asked for, newest first: from this month (or the contract's last, if
    it has ended) back to its first, at most ``count``."""
    first = core.period_of(contract.starts_at, contract.timezone)
    last = core.period_of(min(now, contract.ends_at), contract.timezone)
    year, month = core.parse_period(last)
    out: list[str] = []
    while len(out) < count:
        period = f"{year:04d}-{month:02d}"
        if period < first:
            break
        out.append(period)
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


def default_period(contract: Contract, now: datetime) -> str:
    """The last closed month (what a credit is decided on); this month when none has closed yet."""
    months = previous_months(contract, now, 2)
    current = core.period_of(now, contract.timezone)
    if months and months[0] == current and len(months) > 1:
        return months[1]
    return months[0] if months else current


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    title: str
    node_id: int | None
    node_serial: str | None
    start: datetime
    end: datetime
    gpu_ids: tuple[str, ...]
    counted_gpu_hours: Decimal
    excluded_gpu_hours: Decimal


@dataclass(frozen=True)
class CauseRow:
    """Unavailable time without an incident (a slow card, late maintenance, a shortfall), per GPU."""

    gpu_id: str | None
    node_id: str | None
    state: str
    reason: str
    maintenance: str | None
    start: datetime
    end: datetime
    gpu_hours: Decimal
    excluded: bool


def _incident_rows(
    session: Session, viewer: Principal, costs: Iterable[core.IncidentCost]
) -> list[IncidentRow]:
    costs = list(costs)
    ids = [int(c.incident_id) for c in costs if c.incident_id.isdigit()]
    stored = (
        {i.id: i for i in session.scalars(telemetry.readable_incidents(viewer).where(Incident.id.in_(ids)))}
        if ids
        else {}
    )
    rows = []
    for c in costs:
        found = stored.get(int(c.incident_id)) if c.incident_id.isdigit() else None
        rows.append(
            IncidentRow(
                incident_id=c.incident_id,
                title=found.title if found is not None else "",
                node_id=found.node_id if found is not None else None,
                node_serial=found.node_serial if found is not None else None,
                start=c.start,
                end=c.end,
                gpu_ids=c.gpu_ids,
                counted_gpu_hours=c.counted_gpu_hours,
                excluded_gpu_hours=c.excluded_gpu_hours,
            )
        )
    return rows


def _cause_rows(evidence: Iterable[core.Evidence]) -> list[CauseRow]:
    grouped: dict[tuple[Any, ...], list[core.Evidence]] = {}
    for e in evidence:
        if e.incident_id is None:
            key = (e.gpu_id, e.node_id, e.state, e.reason, e.maintenance, e.excluded)
            grouped.setdefault(key, []).append(e)
    rows = [
        CauseRow(
            gpu_id=gpu_id,
            node_id=node_id,
            state=state,
            reason=reason,
            maintenance=maintenance,
            start=min(e.start for e in items),
            end=max(e.end for e in items),
            gpu_hours=sum((e.gpu_hours for e in items), Decimal(0)),
            excluded=excluded,
        )
        for (gpu_id, node_id, state, reason, maintenance, excluded), items in grouped.items()
    ]
    return sorted(rows, key=lambda r: (r.start, r.gpu_id or "", r.state))


def _node_links(session: Session, viewer: Principal, node_ids: Iterable[str | None]) -> dict[str, str]:
    """Node id → serial, for the nodes the viewer may open (their pages link from the evidence)."""
    ids = sorted({int(n) for n in node_ids if n is not None and n.isdigit()})
    if not ids:
        return {}
    stmt = fleet.readable_nodes(viewer).where(Node.id.in_(ids)).with_only_columns(Node.id, Node.serial)
    return {str(node_id): serial for node_id, serial in session.execute(stmt)}


def _timeline(result: core.SlaResult, windows: list[core.MaintenanceWindow]) -> str | None:
    """One row per GPU that lost time, a bar per cause coloured by state; maintenance windows shaded."""
    if not result.evidence and not windows:
        return None
    rows = sorted({e.gpu_id or i18n.gettext("Shortfall") for e in result.evidence})
    fig = go.Figure()
    by_state: dict[str, list[core.Evidence]] = {}
    for e in result.evidence:
        by_state.setdefault(e.state, []).append(e)
    for state in (core.DOWN, core.UNHEALTHY, core.DEGRADED, core.ALLOCATED, core.MAINTENANCE, core.SHORTFALL):
        items = by_state.get(state, []) + (by_state.get(core.HEALTHY, []) if state == core.ALLOCATED else [])
        if not items:
            continue
        fig.add_trace(
            go.Bar(
                orientation="h",
                name=state_label(state),
                y=[e.gpu_id or i18n.gettext("Shortfall") for e in items],
                base=[e.start.isoformat() for e in items],
                x=[(e.end - e.start).total_seconds() * 1000 for e in items],
                marker_color=STATE_COLOURS[state],
                customdata=[[e.reason, str(e.gpu_hours)] for e in items],
                hovertemplate="%{y}<br>%{base|%Y-%m-%d %H:%M} UTC<br>%{customdata[0]}"
                "<br>%{customdata[1]} GPU-h<extra></extra>",
            )
        )
    for w in windows:
        fig.add_vrect(
            x0=w.start.isoformat(), x1=w.end.isoformat(), fillcolor="#95a5a6", opacity=0.2, line_width=0
        )
    height = 120 + 22 * max(1, len(rows))
    fig.update_layout(
        title={"text": i18n.gettext("Unavailable time by GPU (UTC); grey bands: maintenance windows")},
        barmode="overlay",
        margin={"l": 140, "r": 10, "t": 40, "b": 40},
        height=min(height, 900),
        xaxis={
            "type": "date",
            "range": [result.period_start.isoformat(), result.period_end.isoformat()],
        },
        yaxis={"categoryorder": "array", "categoryarray": rows[::-1], "automargin": True},
        legend={"orientation": "h"},
    )
    return fig.to_json()


def _measure(session: Session, viewer: Principal, contract_id: int, period: str | None) -> service.Measured:
    contract = contracts.get_contract(session, viewer, contract_id)
    return service.measure(session, viewer, contract.id, period or default_period(contract, utcnow()))


@router.get("/contracts/{contract_id}/sla", response_class=HTMLResponse)
def sla_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    contract_id: int,
    period: Annotated[str | None, PERIOD] = None,
) -> HTMLResponse:
    i18n.current.set(locale_of(request))  # the chart's strings are made before the template renders
    measured = _measure(session, viewer, contract_id, period)
    contract, period, result, windows = (
        measured.contract,
        measured.period,
        measured.result,
        measured.maintenance,
    )
    now = utcnow()
    months = previous_months(contract, now)
    if period not in months:
        months = sorted({*months, period}, reverse=True)
    running = result.period_end > now
    causes = _cause_rows(result.evidence)
    incidents = _incident_rows(session, viewer, result.incidents)
    linked = [c.node_id for c in causes] + [str(i.node_id) for i in incidents if i.node_id is not None]
    return render(
        request,
        "sla/sla.html",
        contract=contract,
        period=period,
        months=months,
        r=result,
        running=running,
        incidents=incidents,
        causes=causes,
        nodes=_node_links(session, viewer, linked),
        windows=windows,
        chart=_timeline(result, windows),
        availability=availability,
        hours=hours,
        num=num,
        state_label=state_label,
        maintenance_label=lambda code: i18n.gettext(MAINTENANCE_LABELS[code]) if code else "",
    )


@router.get("/contracts/{contract_id}/sla.csv")
def sla_csv(
    session: Session, viewer: Viewer, contract_id: int, period: Annotated[str | None, PERIOD] = None
) -> Response:
    """Every piece of evidence of the month, as the API reports it."""
    measured = _measure(session, viewer, contract_id, period)
    contract, period, result = measured.contract, measured.period, measured.result
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["start", "end", "gpu_id", "node_id", "state", "reason", "incident_id", "delivered_share",
               "gpu_hours", "excluded", "maintenance", "maintenance_id"]  # fmt: skip
    writer.writerow(columns)
    for e in result.evidence:
        row = e.to_dict()
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    name = f"sla-contract-{contract.id}-{period}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
