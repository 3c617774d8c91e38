"""The dashboard (/): the operator's fleet, occupancy, incidents, SLA danger, revenue, receivables and
lease payments; a customer's own contracts and invoices; a lessor's own leases. Every tile links to
the page its figure comes from."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from computelease.auth.deps import Session
from computelease.billing.pages import LABELS as BILLING
from computelease.dashboard import core, service
from computelease.fleet.pages import LABELS as FLEET
from computelease.fleet.pages import STATE_COLOURS, local
from computelease.kit.time import utcnow
from computelease.web import i18n
from computelease.web.download import csv_response
from computelease.web.labels import N_, labeller
from computelease.web.pages import Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

LABELS = {
    **FLEET,
    **{k: BILLING[k] for k in ("current", "1-30", "31-60", "61-90", ">90")},
    "ok": N_("On track"),
    "at_risk": N_("At risk"),
    "below_target": N_("Below target so far"),
    "breached": N_("Target missed"),
    "billed": N_("billed"),
    "accrued": N_("accrued, provisional"),
}
dlabel = labeller(LABELS, "The translated name of a dashboard code (node state, SLA standing...).")


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    from computelease.allocation.pages import trend_chart

    i18n.current.set(locale_of(request))  # the chart's title is made before the template renders
    return render(
        request,
        "dashboard.html",
        s=service.summary(session, viewer),
        chart=trend_chart(session, viewer) if viewer.is_staff else None,
        alarm=core.RISK_BUDGET_USED,
        due_days=core.DUE_WITHIN_DAYS,
        dlabel=dlabel,
        colours=STATE_COLOURS,
        local=local,
    )


CSV_COLUMNS = (
    "contract_id", "contract", "customer", "period", "currency", "contracted_gpus", "contracted_gpu_hours",
    "delivered_gpu_hours", "availability_pct", "target_pct", "downtime_budget_used", "standing",
    "credit_if_ended_now", "accrued_net",
)  # fmt: skip


@router.get("/dashboard/contracts.csv")
def contracts_csv(session: Session, viewer: Viewer) -> Response:
    """The dashboard's contracts this month, as the table shows them (figures provisional)."""
    rows = service.watch(session, viewer, utcnow())
    return csv_response("contracts-this-month.csv", CSV_COLUMNS, map(_csv_row, rows))


def _csv_row(w: service.ContractWatch) -> list[object]:
    return [
        w.contract_id, w.name, w.customer, w.period, w.currency, w.contracted_gpus, w.contracted_gpu_hours,
        w.delivered_gpu_hours, w.availability_pct, w.target_pct, w.budget_used,
        w.standing.value if w.standing else "", w.credit, w.accrued_net,
    ]  # fmt: skip
