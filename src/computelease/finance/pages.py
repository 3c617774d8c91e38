"""Web pages for the finance lessor and the operator's finance staff: a lease quote, leases with their
instalment status, and credit lines.

Every read starts from the same scoped statements as the API (``readable_leases``,
``readable_credit_lines``), so a lessor's login sees only its own; forms POST with the CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from computelease.auth.core import Principal, Role
from computelease.auth.deps import Session
from computelease.errors import AppError, Forbidden
from computelease.finance import core, service
from computelease.finance.models import CreditLine
from computelease.finance.schedule import FinanceTermError
from computelease.finance.schemas import PaymentIn, TermsIn
from computelease.web import i18n
from computelease.web.download import csv_response
from computelease.web.labels import N_, labeller
from computelease.web.pages import Csrf, Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

LABELS = {
    # instalment status
    "due": N_("Due"),
    "paid": N_("Paid"),
    "partially_paid": N_("Partially paid"),
    "overdue": N_("Overdue"),
    # lease status
    "active": N_("Active"),
    "terminated": N_("Terminated"),
    "closed": N_("Closed"),
    # lease kinds
    "direct": N_("Direct lease"),
    "sale_leaseback": N_("Sale and leaseback"),
    # methods, timing, frequency, grace, day count, deposit
    "annuity": N_("Equal instalments"),
    "equal_principal": N_("Equal principal"),
    "interest_only": N_("Interest only"),
    "custom": N_("Custom"),
    "arrears": N_("In arrears"),
    "advance": N_("In advance"),
    "monthly": N_("Monthly"),
    "quarterly": N_("Quarterly"),
    "semi_annual": N_("Semi-annual"),
    "capitalised": N_("Capitalised"),
    "act_365": N_("ACT/365"),
    "act_360": N_("ACT/360"),
    "refund": N_("Refunded at the end"),
    "offset": N_("Set against the last rents"),
    # node states, as the fleet pages name them
    "ordered": N_("Ordered"),
    "delivered": N_("Delivered"),
    "accepted": N_("Accepted"),
    "in_service": N_("In service"),
    "faulty": N_("Faulty"),
    "repair": N_("In repair"),
    "maintenance": N_("Maintenance"),
    "retired": N_("Retired"),
    "sold": N_("Sold"),
}

# The quote form's choices, in the order people expect them.
CHOICES: dict[str, Sequence[str]] = {
    "kind": [k.value for k in core.LeaseKind],
    "method": [m.value for m in core.Method if m is not core.Method.custom],
    "timing": [t.value for t in core.Timing],
    "frequency": [f.value for f in core.Frequency],
    "grace": [g.value for g in core.GraceKind],
    "day_count": [d.value for d in core.DayCount],
    "deposit_use": [d.value for d in core.DepositUse],
}
QUOTE_DEFAULTS = {
    "principal": "1000000",
    "annual_rate": "0.06",
    "months": "36",
    "kind": "direct",
    "method": "annuity",
    "timing": "arrears",
    "frequency": "monthly",
    "grace_months": "0",
    "grace": "interest_only",
    "balloon": "0",
    "purchase_option": "0",
    "fee_rate": "0",
    "deposit_rate": "0",
    "deposit_use": "refund",
    "day_count": "act_365",
    "first_period_end": "",
}


flabel = labeller(
    LABELS, "The translated name of a finance code (status, kind, method...) or any other code."
)


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    return render(request, template, status_code, flabel=flabel, **context)


def _readers(viewer: Principal) -> None:
    if not (viewer.is_staff or viewer.role == Role.lessor):
        raise Forbidden("lease quotes are for operators and lessors")


def _staff(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise Forbidden("only operators and administrators record lease payments")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


FormData = Depends(_form)


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    return csv_response(filename, header, rows)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise AppError(f"{text!r} is not a date; use YYYY-MM-DD", status=422) from None


# ----------------------------------------------------------------------------------------- quote


def _terms(fields: dict[str, str]) -> TermsIn:
    values = {k: v for k, v in fields.items() if k in TermsIn.model_fields and v != ""}
    return TermsIn.model_validate(values)


def _problems(exc: ValidationError | AppError) -> tuple[list[str], set[str]]:
    """Messages, and the names of the fields they are about (to mark them in the form)."""
    if isinstance(exc, FinanceTermError):
        return [exc.detail], {exc.term}
    if isinstance(exc, AppError):
        return [exc.detail], set()
    names = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()], names


def _schedule_chart(body: dict[str, Any]) -> str:
    dates = [r["date"] for r in body["rows"]]
    fig = go.Figure(
        [
            go.Bar(
                x=dates,
                y=[float(r["payment"]) for r in body["rows"]],
                name=i18n.gettext("Rent"),
                marker_color="#2f6fde",
            ),
            go.Scatter(
                x=dates,
                y=[float(r["closing"]) for r in body["rows"]],
                name=i18n.gettext("Balance after the rent"),
                yaxis="y2",
                mode="lines+markers",
                line={"color": "#c0392b"},
            ),
        ],
        layout={
            "title": {"text": i18n.gettext("Rent and balance per period")},
            "margin": {"l": 60, "r": 60, "t": 40, "b": 40},
            "height": 320,
            "yaxis": {"title": {"text": i18n.gettext("Rent")}, "rangemode": "tozero"},
            "yaxis2": {
                "title": {"text": i18n.gettext("Balance")},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
            "legend": {"orientation": "h"},
        },
    )
    # Floats only for drawing; every figure in the table beside it is the exact text.
    return fig.to_json()


def _quote_page(
    request: Request,
    values: dict[str, str],
    *,
    body: dict[str, Any] | None = None,
    errors: Sequence[str] = (),
    bad: set[str] | frozenset[str] = frozenset(),
    status_code: int = 200,
) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    return _page(
        request,
        "finance/quote.html",
        status_code,
        values=values,
        choices=CHOICES,
        body=body,
        chart=_schedule_chart(body) if body else None,
        errors=errors,
        bad=bad,
    )


@router.get("/leases/quote", response_class=HTMLResponse)
def quote_form(request: Request, viewer: Viewer) -> HTMLResponse:
    _readers(viewer)
    return _quote_page(request, {**QUOTE_DEFAULTS, "start": service.today().isoformat()})


@router.post("/leases/quote", dependencies=[Csrf], response_class=HTMLResponse)
def quote(request: Request, viewer: Viewer, fields: dict = FormData) -> HTMLResponse:
    _readers(viewer)
    values = {**QUOTE_DEFAULTS, **fields}
    try:
        body = service.quote(_terms(fields))
    except (ValidationError, AppError) as exc:
        errors, bad = _problems(exc)
        return _quote_page(request, values, errors=errors, bad=bad, status_code=422)
    return _quote_page(request, values, body=body)


@router.post("/leases/quote.csv", dependencies=[Csrf])
def quote_csv(viewer: Viewer, fields: dict = FormData) -> Response:
    _readers(viewer)
    body = service.quote(_terms(fields))
    keys = ("period", "date", "opening", "payment", "interest", "principal", "closing")
    return _csv("schedule.csv", keys, ([r[k] for k in keys] for r in body["rows"]))


# ---------------------------------------------------------------------------------------- leases


@router.get("/leases", response_class=HTMLResponse)
def leases_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    leases = session.scalars(service.list_leases(viewer)).all()
    rows = [service.present_lease(x) for x in leases]
    totals: dict[str, Decimal] = {}
    for r in rows:
        if r.currency == "CNY":
            for key in ("principal", "outstanding_principal", "overdue_total"):
                totals[key] = totals.get(key, Decimal("0.00")) + getattr(r, key)
    return _page(request, "finance/leases.html", leases=rows, totals=totals, can_quote=_can_quote(viewer))


def _can_quote(viewer: Principal) -> bool:
    return viewer.is_staff or viewer.role == Role.lessor


@router.get("/leases.csv")
def leases_csv(session: Session, viewer: Viewer) -> Response:
    rows = [service.present_lease(x) for x in session.scalars(service.list_leases(viewer))]
    return _csv(
        "leases.csv",
        (
            "id",
            "code",
            "kind",
            "lessor",
            "lessee",
            "status",
            "currency",
            "principal",
            "start_date",
            "end_date",
            "outstanding_principal",
            "overdue_total",
            "next_due_date",
            "next_due_owed",
        ),
        (
            (
                r.id,
                r.code,
                r.kind,
                r.lessor_name,
                r.lessee,
                r.status,
                r.currency,
                r.principal,
                r.start_date,
                r.end_date,
                r.outstanding_principal,
                r.overdue_total,
                r.next_due.due_date if r.next_due else None,
                r.next_due.owed if r.next_due else None,
            )
            for r in rows
        ),
    )


def _lease_page(
    request: Request,
    session: Session,
    viewer: Principal,
    lease_id: int,
    as_of: date | None,
    *,
    values: dict[str, str] | None = None,
    errors: Sequence[str] = (),
    status_code: int = 200,
) -> HTMLResponse:
    lease = service.get_lease(session, viewer, lease_id)
    detail = service.present_lease_detail(lease, as_of)
    terms = service.terms_from_json(lease.terms)
    return _page(
        request,
        "finance/lease.html",
        status_code,
        lease=detail,
        terms=terms,
        assets_cost=sum((a.purchase_cost for a in detail.assets), Decimal("0.00")),
        values=values or {"paid_on": service.today().isoformat(), "amount": "", "reference": ""},
        errors=errors,
        today=service.today(),
    )


@router.get("/leases/{lease_id}", response_class=HTMLResponse)
def lease_page(
    request: Request, session: Session, viewer: Viewer, lease_id: int, as_of: str | None = None
) -> HTMLResponse:
    return _lease_page(request, session, viewer, lease_id, _date(as_of))


@router.get("/leases/{lease_id}/instalments.csv")
def instalments_csv(session: Session, viewer: Viewer, lease_id: int, as_of: str | None = None) -> Response:
    lease = service.get_lease(session, viewer, lease_id)
    pos = service.position(lease, _date(as_of))
    rows = service.present_instalments(lease, pos)
    keys = (
        "period",
        "due_date",
        "opening",
        "payment",
        "interest",
        "principal",
        "closing",
        "balloon",
        "status",
        "outstanding",
        "penalty_owed",
        "days_overdue",
        "paid_interest",
        "paid_principal",
        "paid_penalty",
    )
    return _csv(
        f"lease-{lease.code}-instalments-{pos.as_of}.csv",
        keys,
        ([getattr(r, k) for k in keys] for r in rows),
    )


@router.get("/leases/{lease_id}/payments.csv")
def payments_csv(session: Session, viewer: Viewer, lease_id: int) -> Response:
    lease = service.get_lease(session, viewer, lease_id)
    return _csv(
        f"lease-{lease.code}-payments.csv",
        (
            "payment_id",
            "paid_on",
            "amount",
            "reference",
            "period",
            "penalty",
            "interest",
            "principal",
            "days_late",
        ),
        (
            (
                p.id,
                p.paid_on,
                p.amount,
                p.reference,
                a.period,
                a.penalty,
                a.interest,
                a.principal,
                a.days_late,
            )
            for p in map(service.present_payment, lease.payments)
            for a in p.allocations
        ),
    )


@router.post("/leases/{lease_id}/payments", dependencies=[Csrf])
def record_payment(
    request: Request, session: Session, viewer: Viewer, lease_id: int, fields: dict = FormData
) -> Response:
    _staff(viewer)
    try:
        service.record_payment(session, viewer, lease_id, PaymentIn.model_validate(fields))
    except (ValidationError, AppError) as exc:
        session.rollback()
        errors, _ = _problems(exc)
        return _lease_page(
            request, session, viewer, lease_id, None, values=fields, errors=errors, status_code=422
        )
    return RedirectResponse(f"/leases/{lease_id}", status_code=303)


# ---------------------------------------------------------------------------------- credit lines


@router.get("/credit-lines", response_class=HTMLResponse)
def credit_lines_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    stmt = service.readable_credit_lines(viewer).order_by(CreditLine.expires_on, CreditLine.id)
    lines = session.scalars(stmt).all()
    totals = {
        "limit": sum((x.limit for x in lines if x.currency == "CNY"), Decimal("0.00")),
        "drawn": sum((x.drawn for x in lines if x.currency == "CNY"), Decimal("0.00")),
    }
    return _page(request, "finance/credit_lines.html", lines=lines, totals=totals, today=service.today())


@router.get("/credit-lines.csv")
def credit_lines_csv(session: Session, viewer: Viewer) -> Response:
    stmt = service.readable_credit_lines(viewer).order_by(CreditLine.expires_on, CreditLine.id)
    return _csv(
        "credit-lines.csv",
        ("id", "lender", "name", "borrower", "currency", "limit", "drawn", "available", "rate", "expires_on"),
        (
            (
                x.id,
                x.lessor_name,
                x.name,
                x.borrower,
                x.currency,
                x.limit,
                x.drawn,
                x.available,
                x.rate,
                x.expires_on,
            )
            for x in session.scalars(stmt)
        ),
    )
