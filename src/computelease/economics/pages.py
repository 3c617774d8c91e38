"""The scenario pages (operators and admins) and the lessor's exposure page of a lease.

Scenarios: pick a shipped example, upload a file or build one from the live database; run it and see
the monthly cash curve, the yearly P&L, the funding routes side by side and the Monte Carlo
distributions; download the YAML (to edit and upload again) or the run as Excel. Every read goes through
the same service as the API, so a page never shows more than the caller's token would.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import plotly.graph_objects as go
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from computelease.auth.core import Principal
from computelease.auth.deps import Session
from computelease.economics import runs, service
from computelease.economics.endpoints import XLSX
from computelease.economics.models import RunStatus, StoredScenario
from computelease.economics.scenario import ScenarioInvalid
from computelease.errors import AppError, Forbidden
from computelease.web import i18n
from computelease.web.labels import N_
from computelease.web.pages import Csrf, Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

ROUTE_LABELS = {
    "own": N_("Own funds (equity)"),
    "bank": N_("Bank loan"),
    "direct_lease": N_("Direct lease"),
    "sale_leaseback": N_("Sale and leaseback"),
}
SOURCE_LABELS = {"upload": N_("Uploaded"), "example": N_("Example"), "live": N_("Live database")}
BASIS_LABELS = {"invoiced": N_("invoiced"), "contracted": N_("contracted")}
PNL = (
    ("revenue", N_("Revenue")),
    ("opex", N_("Operating costs")),
    ("ebitda", N_("EBITDA")),
    ("depreciation", N_("Depreciation")),
    ("interest", N_("Interest")),
    ("tax", N_("Income tax")),
    ("net_income", N_("Net income")),
    ("cfads", N_("Cash available for debt service")),
    ("debt_service", N_("Debt service")),
)


def elabel(code: object) -> str:
    key = getattr(code, "value", code)
    for table in (ROUTE_LABELS, SOURCE_LABELS, BASIS_LABELS):
        if key in table:
            return i18n.gettext(table[key])
    return str(key)


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    return render(request, template, status_code, elabel=elabel, **context)


def _staff(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise Forbidden("scenarios are for operators and admins")


def dec(value: Any) -> Decimal | None:
    """A projected float as a Decimal rounded to the fen, for the money filters (None stays None)."""
    if value is None:
        return None
    return Decimal(str(round(float(value), 2)))


# ------------------------------------------------------------------------------------------- list


def _list_page(
    request: Request,
    session: Session,
    viewer: Principal,
    *,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = list(
        session.scalars(service.readable_scenarios(viewer).order_by(StoredScenario.id.desc()).limit(200))
    )
    counts = service.run_counts(session, [r.id for r in rows])
    return _page(
        request,
        "economics/scenarios.html",
        status,
        scenarios=rows,
        counts=counts,
        examples=runs.examples(),
        problems=problems or [],
        max_paths=runs.API_MAX_PATHS,
    )


@router.get("/scenarios", response_class=HTMLResponse)
def scenarios_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    _staff(viewer)
    return _list_page(request, session, viewer)


@router.post("/scenarios", dependencies=[Csrf])
def upload(
    request: Request,
    session: Session,
    viewer: Viewer,
    file: Annotated[UploadFile | None, File()] = None,
    text: Annotated[str, Form()] = "",
    example: Annotated[str, Form()] = "",
) -> Response:
    _staff(viewer)
    try:
        if example:
            row = service.create_from_example(session, viewer, example)
        else:
            content = text
            if file is not None and file.filename:
                raw = file.file.read()
                try:
                    content = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ScenarioInvalid(["the file is not UTF-8 text"]) from None
            row = service.create_scenario(session, viewer, content)
    except ScenarioInvalid as exc:
        return _list_page(request, session, viewer, problems=list(exc.problems), status=422)
    except AppError as exc:
        return _list_page(request, session, viewer, problems=[exc.detail], status=exc.status)
    return RedirectResponse(f"/scenarios/{row.id}", status_code=303)


@router.post("/scenarios/live", dependencies=[Csrf])
def build_live(request: Request, session: Session, viewer: Viewer) -> Response:
    _staff(viewer)
    try:
        row = service.create_live(session, viewer)
    except AppError as exc:
        problems = list(getattr(exc, "problems", ())) or [exc.detail]
        return _list_page(request, session, viewer, problems=problems, status=exc.status)
    return RedirectResponse(f"/scenarios/{row.id}", status_code=303)


# ------------------------------------------------------------------------------------- one scenario


def _layout(title: str, height: int = 320, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "margin": {"l": 60, "r": 10, "t": 40, "b": 40},
        "height": height,
        "template": "plotly_white",
        "legend": {"orientation": "h", "y": -0.15},
        **extra,
    }


def cash_chart(result: dict[str, Any]) -> str:
    months = result.get("months") or []
    lines = result.get("lines") or {}
    equity = []
    total = 0.0
    for v in lines.get("equity_in") or []:
        total += v or 0.0
        equity.append(round(total, 2))
    fig = go.Figure(layout=_layout(i18n.gettext("Cash balance by month") + f" ({result.get('currency')})"))
    fig.add_scatter(x=months, y=lines.get("cash"), name=i18n.gettext("Cash"), mode="lines")
    fig.add_scatter(x=months, y=equity, name=i18n.gettext("Equity put in"), mode="lines")
    fig.add_scatter(x=months, y=lines.get("outstanding"), name=i18n.gettext("Principal owed"), mode="lines")
    fig.add_bar(x=months, y=lines.get("net_cash_flow"), name=i18n.gettext("Net cash flow"), opacity=0.5)
    return fig.to_json()


def routes_chart(result: dict[str, Any]) -> str:
    rows = result.get("routes") or []
    labels = [elabel(r["route"]) for r in rows]
    fig = go.Figure(layout=_layout(i18n.gettext("Funding routes side by side"), barmode="group"))
    for key, name in (
        ("equity_needed", N_("Equity needed")),
        ("financing_cost", N_("Financing cost")),
        ("npv", N_("Equity NPV")),
        ("peak_funding_need", N_("Peak funding need")),
    ):
        fig.add_bar(x=labels, y=[float(r[key]) for r in rows], name=i18n.gettext(name))
    return fig.to_json()


def distribution_chart(result: dict[str, Any], key: str, title: str, *, percent: bool = False) -> str | None:
    hist = (result.get("distributions") or {}).get(key) or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    spread = (result.get("monte_carlo") or {}).get(key) or {}
    if not counts:
        return None
    scale = 100.0 if percent else 1.0
    centres = [scale * (a + b) / 2 for a, b in itertools.pairwise(edges)]
    width = scale * (edges[1] - edges[0]) if len(edges) > 1 else None
    fig = go.Figure(layout=_layout(title, 300, bargap=0.02, showlegend=False))
    fig.add_bar(x=centres, y=counts, width=width, marker_color="#2f6fde", name=title)
    for mark in ("p5", "p50", "p95"):
        value = spread.get(mark)
        if value is None:
            continue
        fig.add_vline(
            x=scale * value,
            line_dash="dash" if mark != "p50" else "solid",
            line_color="#c0392b",
            annotation_text=mark.upper(),
        )
    if percent:
        fig.update_xaxes(ticksuffix="%")
    return fig.to_json()


def yearly_pnl(result: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[Decimal | None]]]]:
    months = result.get("months") or []
    lines = result.get("lines") or {}
    years = sorted({m[:4] for m in months})
    table = []
    for key, name in PNL:
        sums: dict[str, float] = defaultdict(float)
        for m, value in zip(months, lines.get(key) or [], strict=False):
            sums[m[:4]] += value or 0.0
        table.append((i18n.gettext(name), [dec(sums[y]) for y in years]))
    cash = lines.get("cash") or []
    year_end: dict[str, float] = {}
    for m, value in zip(months, cash, strict=False):
        year_end[m[:4]] = value or 0.0
    table.append((i18n.gettext("Cash at year end"), [dec(year_end.get(y)) for y in years]))
    return years, table


def _scenario_page(
    request: Request, session: Session, viewer: Principal, scenario_id: int, run_id: int | None
) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    row = service.get_scenario(session, viewer, scenario_id)
    all_runs = service.list_runs_unchecked(session, row.id)
    run = None
    if run_id is not None:
        run = service.get_run(session, viewer, scenario_id, run_id)
    elif all_runs:
        run = all_runs[0]
    context: dict[str, Any] = {"scenario": row, "runs": all_runs, "run": run, "max_paths": runs.API_MAX_PATHS}
    if run is not None and run.status is RunStatus.done:
        result = run.summary
        years, pnl = yearly_pnl(result)
        context |= {
            "result": result,
            "summary": result.get("summary") or {},
            "mc": result.get("monte_carlo"),
            "cur": result.get("currency") or "CNY",
            "years": years,
            "pnl": pnl,
            "charts": {
                "cash": cash_chart(result),
                "routes": routes_chart(result),
                "npv": distribution_chart(result, "npv", i18n.gettext("Project NPV, simulated")),
                "equity_irr": distribution_chart(
                    result, "equity_irr", i18n.gettext("Equity IRR, simulated"), percent=True
                ),
            },
        }
    return _page(request, "economics/scenario.html", dec=dec, **context)


@router.get("/scenarios/{scenario_id}", response_class=HTMLResponse)
def scenario_page(request: Request, session: Session, viewer: Viewer, scenario_id: int) -> HTMLResponse:
    _staff(viewer)
    return _scenario_page(request, session, viewer, scenario_id, None)


@router.get("/scenarios/{scenario_id}/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, session: Session, viewer: Viewer, scenario_id: int, run_id: int
) -> HTMLResponse:
    _staff(viewer)
    return _scenario_page(request, session, viewer, scenario_id, run_id)


@router.get("/scenarios/{scenario_id}/scenario.yaml")
def download_yaml(session: Session, viewer: Viewer, scenario_id: int) -> Response:
    _staff(viewer)
    row = service.get_scenario(session, viewer, scenario_id)
    return Response(
        row.yaml,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="scenario-{row.id}.yaml"'},
    )


@router.post("/scenarios/{scenario_id}/runs", dependencies=[Csrf])
def start_run(
    request: Request,
    session: Session,
    viewer: Viewer,
    scenario_id: int,
    paths: Annotated[int, Form()] = runs.DEFAULT_PATHS,
    seed: Annotated[int, Form()] = 0,
) -> Response:
    _staff(viewer)
    run = service.run_scenario(session, viewer, scenario_id, paths=paths, seed=seed)
    return RedirectResponse(f"/scenarios/{scenario_id}/runs/{run.id}", status_code=303)


@router.get("/scenarios/{scenario_id}/runs/{run_id}/workbook.xlsx")
def download_xlsx(session: Session, viewer: Viewer, scenario_id: int, run_id: int) -> Response:
    _staff(viewer)
    content = service.run_workbook(session, viewer, scenario_id, run_id)
    name = f"scenario-{scenario_id}-run-{run_id}.xlsx"
    return Response(
        content, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# ------------------------------------------------------------------------------- lessor's exposure


def ltv_chart(exposure: Any) -> str:
    days = [p.on.isoformat() for p in exposure.curve]
    fig = go.Figure(layout=_layout(i18n.gettext("Outstanding principal against collateral value")))
    fig.add_scatter(
        x=days, y=[float(p.outstanding) for p in exposure.curve], name=i18n.gettext("Principal owed")
    )
    fig.add_scatter(
        x=days,
        y=[float(p.market_value) for p in exposure.curve],
        name=i18n.gettext("Market value (residual)"),
    )
    fig.add_scatter(x=days, y=[float(p.book_value) for p in exposure.curve], name=i18n.gettext("Book value"))
    return fig.to_json()


@router.get("/leases/{lease_id}/exposure", response_class=HTMLResponse)
def exposure_page(
    request: Request, session: Session, viewer: Viewer, lease_id: int, as_of: date | None = None
) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    exposure = service.exposure(session, viewer, lease_id, as_of=as_of)
    return _page(
        request,
        "economics/exposure.html",
        exposure=exposure,
        chart=ltv_chart(exposure),
        cur=exposure.currency,
    )


@router.get("/lease-exposures", response_class=HTMLResponse)
def exposures_page(
    request: Request, session: Session, viewer: Viewer, as_of: date | None = None
) -> HTMLResponse:
    """Every open lease the viewer may read, one line each: the early-warning list."""
    i18n.current.set(locale_of(request))
    rows = service.exposures(session, viewer, as_of=as_of)
    return _page(request, "economics/exposures.html", rows=rows, as_of=as_of)
