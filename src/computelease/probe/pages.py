"""Acceptance pages: a node's runs (the partial the node page includes, also shown on a page of its
own) and one run's full report, every check with its threshold and verdict.

Both read through :mod:`computelease.probe.service`, so a caller sees the runs of the nodes it may see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session as OrmSession

from computelease.auth.core import Principal
from computelease.auth.deps import Session
from computelease.fleet import service as fleet
from computelease.probe import service
from computelease.probe.models import AcceptanceRun
from computelease.web import i18n
from computelease.web.labels import N_
from computelease.web.pages import Viewer, render

router = APIRouter(include_in_schema=False)

VERDICT_COLOURS = {"pass": "#2e9d5b", "warn": "#d4ac0d", "fail": "#c0392b", "skip": "#b0b7c3"}
VERDICTS = {"pass": N_("Pass"), "warn": N_("Warn"), "fail": N_("Fail"), "skip": N_("Skip")}


def verdict_label(code: object) -> str:
    key = str(getattr(code, "value", code))
    return i18n.gettext(VERDICTS[key]) if key in VERDICTS else key


def utc(value: datetime | str | None) -> str:
    """An instant as UTC text: the probe's clock and the server's, with no site zone to guess."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def figure(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


# What the partial needs besides its runs; the node page passes these through acceptance_context.
HELPERS = {"verdict_label": verdict_label, "verdict_colours": VERDICT_COLOURS, "utc": utc, "figure": figure}


def acceptance_runs(session: OrmSession, viewer: Principal, node_id: int) -> list[AcceptanceRun]:
    """The node's acceptance runs, newest first, as the caller may see them."""
    return service.runs_of_node(session, viewer, node_id)


def acceptance_context(session: OrmSession, viewer: Principal, node_id: int) -> dict[str, Any]:
    """Everything ``probe/_acceptance.html`` reads: pass it into the node page's context (``**``)."""
    return {"acceptance_runs": acceptance_runs(session, viewer, node_id), **HELPERS}


@router.get("/fleet/nodes/{node_id}/acceptance", response_class=HTMLResponse)
def node_acceptance_page(request: Request, session: Session, viewer: Viewer, node_id: int) -> HTMLResponse:
    node = fleet.get_node(session, viewer, node_id)
    return render(request, "probe/runs.html", node=node, **acceptance_context(session, viewer, node.id))


@router.get("/acceptance/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, session: Session, viewer: Viewer, run_id: int) -> HTMLResponse:
    run = service.get_run(session, viewer, run_id)
    node = fleet.get_node(session, viewer, run.node_id)
    return render(request, "probe/run.html", run=run, node=node, report=run.report, **HELPERS)
