"""The occupancy page (staff): today's occupancy by site and model with the idle nodes, the 90-day
trend, and planning allocations (a dry-run preview first, then confirm)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from computelease.allocation import service
from computelease.auth.core import Principal
from computelease.auth.deps import Session
from computelease.errors import Forbidden
from computelease.kit.time import utcnow
from computelease.web import i18n
from computelease.web.pages import Csrf, Viewer, locale_of, render

router = APIRouter(include_in_schema=False)


def _staff(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise Forbidden("occupancy and planning are for operators")


def trend_chart(session: Session, viewer: Principal) -> str:
    """The fleet's occupancy per day over 90 days, as Plotly JSON (also drawn on the dashboard)."""
    days = service.daily_occupancy(session, viewer, 90)
    fig = go.Figure(
        go.Scatter(
            x=[d.date().isoformat() for d, _ in days],
            y=[None if v is None else round(100 * v, 1) for _, v in days],
            mode="lines",
            line={"color": "#2f6fde"},
            connectgaps=False,
        ),
        layout={
            "title": {"text": i18n.gettext("Occupancy per day, last 90 days (%)")},
            "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
            "height": 300,
            "yaxis": {"range": [0, 100], "ticksuffix": "%"},
        },
    )
    return fig.to_json()


def _occupancy_page(request: Request, session: Session, viewer: Principal, **context: Any) -> HTMLResponse:
    i18n.current.set(locale_of(request))  # the chart's title is made before the template renders
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = now if now > today else today + timedelta(seconds=1)
    by_site, by_model = service.occupancies(session, viewer, today, end, ("site", "model"))
    return render(
        request,
        "allocation/occupancy.html",
        chart=trend_chart(session, viewer),
        by_site=by_site,
        by_model=by_model,
        **({"preview": None, "planned": None} | context),
    )


@router.get("/occupancy", response_class=HTMLResponse)
def occupancy_page(
    request: Request, session: Session, viewer: Viewer, planned: int | None = None
) -> HTMLResponse:
    _staff(viewer)
    return _occupancy_page(request, session, viewer, planned=planned)


@router.post("/occupancy/plan", dependencies=[Csrf])
def plan(
    request: Request, session: Session, viewer: Viewer, confirm: Annotated[str, Form()] = ""
) -> Response:
    _staff(viewer)
    if confirm != "1":
        preview = service.plan(session, viewer, dry_run=True)
        return _occupancy_page(request, session, viewer, preview=preview)
    result = service.plan(session, viewer)
    return RedirectResponse(f"/occupancy?planned={len(result.assignments)}", status_code=303)
