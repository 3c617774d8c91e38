"""The dashboard (/): the operator's fleet, occupancy, incidents, SLA danger, revenue, receivables and
lease payments; a customer's own contracts and invoices; a lessor's own leases. Every tile links to
the page its figure comes from."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from computelease.auth.deps import Session
from computelease.billing.pages import LABELS as BILLING
from computelease.dashboard import core, service
from computelease.fleet.pages import LABELS as FLEET
from computelease.fleet.pages import STATE_COLOURS, local
from computelease.web import i18n
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
