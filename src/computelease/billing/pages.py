"""Billing web pages: invoices (list, detail, printable, with the fapiao data), the month close, ageing
and payments.

Every read starts from the scoped statements the API uses (``readable_invoices``,
``readable_payments``, ``ageing`` over ``readable_invoices``), so a customer's login sees only what was
issued to it; lessors have no billing. Every form POSTs the CSRF token; writes are for staff, and a
refused write is shown on the page with its status (4xx), never as a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from computelease.auth.core import Principal, Role
from computelease.auth.deps import Session
from computelease.billing import export, service
from computelease.billing.core import BUCKETS, InvoiceStatus
from computelease.billing.models import Invoice, InvoicePayment, Payment
from computelease.billing.schemas import CreditNoteIn, PaymentIn, VoidIn
from computelease.contracts.core import add_months
from computelease.contracts.models import Contract, Customer
from computelease.contracts.service import readable_customers
from computelease.errors import AppError, Forbidden, Unprocessable
from computelease.kit.pagination import PageParams, paginate
from computelease.kit.time import utcnow
from computelease.money import CURRENCIES
from computelease.sla import core as sla_core
from computelease.web import i18n
from computelease.web.labels import N_, labeller
from computelease.web.pages import Csrf, Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100

LABELS = {
    # invoice status (overdue is never stored: finalized or partly paid and past due)
    "draft": N_("Draft"),
    "finalized": N_("Finalized"),
    "partially_paid": N_("Partially paid"),
    "paid": N_("Paid"),
    "overdue": N_("Overdue"),
    "void": N_("Void"),
    # document kinds: 蓝字 and 红字 fapiao
    "invoice": N_("Invoice"),
    "credit_note": N_("Credit note"),
    # line kinds
    "compute": N_("Compute service fee"),
    "om": N_("O&M fee"),
    "usage": N_("On-demand usage"),
    "sla_credit": N_("SLA credit"),
    "manual": N_("Manual adjustment"),
    # tax categories
    "compute_service": N_("Compute service"),
    "om_service": N_("O&M service"),
    "equipment_lease": N_("Equipment lease"),
    # ageing buckets
    "current": N_("Not yet due"),
    "1-30": N_("1–30 days"),
    "31-60": N_("31–60 days"),
    "61-90": N_("61–90 days"),
    ">90": N_("Over 90 days"),
    # payment methods
    "bank_transfer": N_("Bank transfer"),
}

# The statuses a reader may filter on, in the order of an invoice's life.
STATUSES = [s.value for s in InvoiceStatus]
METHODS = ("bank_transfer",)


blabel = labeller(
    LABELS, "The translated name of a billing code (status, kind, line kind, bucket) or any other code."
)


def _number(value: Decimal | None, pattern: str) -> str:
    if value is None:
        return "–"
    babel_locale = "zh_Hans_CN" if i18n.current.get() == "zh_CN" else "en_US"
    return format_decimal(value, format=pattern, locale=babel_locale)


def qty(value: Decimal | None) -> str:
    """A quantity as people write it: 1, 5,952, 0.5 (up to 6 decimals, no trailing zeros)."""
    return _number(value, "#,##0.######")


def unit_price(value: Decimal | None, currency: str = "CNY") -> str:
    """Unit prices keep their decimals (¥2.345678) rather than being rounded to the fen."""
    if value is None:
        return "–"
    return f"{CURRENCIES.get(currency, currency + ' ')}{_number(value, '#,##0.00####')}"


def rate(value: Decimal | None) -> str:
    """A VAT rate: 0.06 → 6%, 0.065 → 6.5%."""
    if value is None:
        return "–"
    return f"{(Decimal(value) * 100).normalize():f}%"


def _today() -> date:
    return utcnow().astimezone(sla_core.zone(sla_core.DEFAULT_TZ)).date()


def _months_before(day: date, n: int) -> list[str]:
    """The ``n`` months before ``day``'s month, newest first: the months one may close."""
    first = day.replace(day=1)
    return [f"{add_months(first, -i):%Y-%m}" for i in range(1, n + 1)]


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    return render(
        request,
        template,
        status_code,
        blabel=blabel,
        qty=qty,
        unit_price=unit_price,
        rate=rate,
        buckets=BUCKETS,
        **context,
    )


def _readers(viewer: Principal) -> None:
    if not (viewer.is_staff or viewer.role == Role.customer):
        raise Forbidden("billing is for operators and customers")


def _staff(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise Forbidden("only operators and administrators change invoices and record payments")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


FormData = Depends(_form)


def _problems(exc: ValidationError | AppError) -> list[str]:
    if isinstance(exc, AppError):
        return [exc.detail]
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()]


def _status_of(exc: ValidationError | AppError) -> int:
    return exc.status if isinstance(exc, AppError) and 400 <= exc.status < 500 else 422


def _date(text: str | None, name: str = "date") -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Unprocessable(f"{name} {text!r} is not a date; use YYYY-MM-DD") from None


def _int(text: str | None, name: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise Unprocessable(f"{name} {text!r} is not a number") from None


def _download(kind: str, name: str, columns: Sequence[str], rows: list[tuple[object, ...]]) -> Response:
    if kind == "csv":
        return Response(
            export.to_csv(columns, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        export.to_xlsx(name[:31], columns, rows),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


# -------------------------------------------------------------------------------------- invoices


class Filters:
    """The invoice list's filters as given in the query string (empty means "any"); a value that does
    not parse is dropped and named in ``errors``."""

    def __init__(self, viewer: Principal, params: dict[str, str]) -> None:
        self.values = {k: params.get(k, "").strip() for k in ("period", "status", "customer_id", "as_of")}
        self.errors: list[str] = []
        self.period = self._parse("period", lambda v: sla_core.parse_period(v) and v)
        self.status = self._parse("status", self._status)
        # A customer's own scope already narrows the list; its filter is ignored.
        self.customer_id = (
            self._parse("customer_id", lambda v: _int(v, "customer")) if viewer.is_staff else None
        )
        self.as_of = self._parse("as_of", lambda v: _date(v, "as of"))

    def _parse(self, name: str, parse: Any) -> Any:
        if not self.values[name]:
            return None
        try:
            return parse(self.values[name])
        except AppError as exc:
            self.errors.append(exc.detail)
            self.values[name] = ""
            return None

    @staticmethod
    def _status(value: str) -> InvoiceStatus:
        if value not in STATUSES:
            raise Unprocessable(f"status {value!r} is not one of {', '.join(STATUSES)}")
        return InvoiceStatus(value)

    def query(self, **extra: object) -> str:
        return urlencode({k: v for k, v in {**self.values, **extra}.items() if v not in ("", None)})


def _invoice_totals(session: OrmSession, stmt: Any) -> list[dict[str, Any]]:
    sub = stmt.order_by(None).subquery()
    rows = session.execute(
        select(
            sub.c.currency,
            func.count(),
            func.sum(sub.c.net),
            func.sum(sub.c.tax),
            func.sum(sub.c.gross),
            func.sum(sub.c.paid),
            func.sum(sub.c.credited),
        )
        .group_by(sub.c.currency)
        .order_by(sub.c.currency)
    )
    zero = Decimal("0.00")
    out = []
    for currency, n, net, tax, gross, paid, credited in rows:
        net, tax, gross, paid, credited = (v or zero for v in (net, tax, gross, paid, credited))
        out.append(
            {
                "currency": currency,
                "count": n,
                "net": net,
                "tax": tax,
                "gross": gross,
                "settled": paid + credited,
                "balance": gross - paid - credited,
            }
        )
    return out


def _invoices_page(
    request: Request,
    session: OrmSession,
    viewer: Principal,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    errors: list[str] = list(context.pop("errors", []))
    filters = Filters(viewer, dict(request.query_params))
    try:
        offset = max(_int(request.query_params.get("offset"), "offset") or 0, 0)
    except AppError as exc:
        filters.errors.append(exc.detail)
        offset = 0
    if filters.errors:
        errors.extend(filters.errors)
        status_code = 422 if status_code == 200 else status_code
    as_of = filters.as_of or _today()
    stmt = service.list_invoices(
        viewer,
        period=filters.period,
        status=filters.status,
        customer_id=filters.customer_id,
        as_of=as_of,
    )
    invoices, total = paginate(session, stmt, PageParams(limit=PAGE_SIZE, offset=offset))
    periods = list(
        session.scalars(
            select(Invoice.period)
            .distinct()
            .where(Invoice.id.in_(service.readable_invoices(viewer).with_only_columns(Invoice.id)))
            .where(Invoice.period.is_not(None))
            .order_by(Invoice.period.desc())
        )
    )
    customers = (
        session.scalars(readable_customers(viewer).order_by(Customer.name)).all() if viewer.is_staff else []
    )
    today = _today()
    months = _months_before(today, 12)
    close_values = context.pop("close_values", None) or {"period": months[0], "draft": ""}
    flash = request.session.pop("billing_flash", None)
    if flash:
        flash["totals"] = {c: {k: Decimal(v) for k, v in t.items()} for c, t in flash["totals"].items()}
    return _page(
        request,
        "billing/invoices.html",
        status_code,
        invoices=[(i, service.status_of(i, as_of)) for i in invoices],
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        totals=_invoice_totals(session, stmt),
        filters=filters,
        statuses=[s for s in STATUSES if viewer.is_staff or s != "draft"],
        periods=periods,
        customers=customers,
        months=months,
        close_values=close_values,
        as_of=as_of,
        flash=flash,
        errors=errors,
        **({"preview": None} | context),
    )


@router.get("/billing", include_in_schema=False)
def billing_home(viewer: Viewer) -> Response:
    _readers(viewer)
    return RedirectResponse("/billing/invoices", status_code=303)


@router.get("/billing/invoices", response_class=HTMLResponse)
def invoices_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    _readers(viewer)
    return _invoices_page(request, session, viewer)


def _invoices_export(request: Request, session: OrmSession, viewer: Principal, kind: str) -> Response:
    _readers(viewer)
    filters = Filters(viewer, dict(request.query_params))
    if filters.errors:
        raise Unprocessable("; ".join(filters.errors))
    as_of = filters.as_of or _today()
    stmt = service.list_invoices(
        viewer, period=filters.period, status=filters.status, customer_id=filters.customer_id, as_of=as_of
    )
    rows = export.invoice_rows(session.scalars(stmt), as_of)
    return _download(kind, f"invoices-{filters.period or 'all'}", export.INVOICE_COLUMNS, rows)


@router.get("/billing/invoices.csv")
def invoices_csv(request: Request, session: Session, viewer: Viewer) -> Response:
    return _invoices_export(request, session, viewer, "csv")


@router.get("/billing/invoices.xlsx")
def invoices_xlsx(request: Request, session: Session, viewer: Viewer) -> Response:
    return _invoices_export(request, session, viewer, "xlsx")


@router.post("/billing/close", dependencies=[Csrf])
def close_month(request: Request, session: Session, viewer: Viewer, fields: dict = FormData) -> Response:
    """Preview (compute and report, store nothing) or close a month, then back to the invoices."""
    _staff(viewer)
    period = fields.get("period", "")
    draft = fields.get("draft") in ("1", "on", "true")
    preview = fields.get("action") == "preview"
    values = {"period": period, "draft": "1" if draft else ""}
    try:
        result = service.close(session, viewer, period, draft=draft, dry_run=preview)
    except AppError as exc:
        session.rollback()
        return _invoices_page(
            request, session, viewer, status_code=_status_of(exc), errors=[exc.detail], close_values=values
        )
    if preview:
        return _invoices_page(request, session, viewer, preview=result, close_values=values)
    request.session["billing_flash"] = {
        "period": result.period,
        "contracts": result.contracts,
        "created": result.created,
        "adjusted": result.adjusted,
        "unchanged": result.unchanged,
        "finalized": result.finalized,
        "draft": draft,
        "totals": {c: {k: str(v) for k, v in t.items()} for c, t in result.totals.items()},
        "warnings": result.warnings[:10],
    }
    return RedirectResponse(f"/billing/invoices?{urlencode({'period': result.period})}", status_code=303)


# -------------------------------------------------------------------------------- invoice detail


def _invoice_page(
    request: Request,
    session: OrmSession,
    viewer: Principal,
    invoice_id: int,
    *,
    as_of: date | None = None,
    errors: Sequence[str] = (),
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    invoice = service.get_invoice(session, viewer, invoice_id)
    as_of = as_of or _today()
    readable = service.readable_invoices(viewer)
    original = (
        session.scalar(readable.where(Invoice.id == invoice.corrects_id))
        if invoice.corrects_id is not None
        else None
    )
    set_committed_value(invoice, "corrects", original)
    corrections = session.scalars(
        readable.where(Invoice.corrects_id == invoice.id).order_by(Invoice.id)
    ).all()
    contract = session.get(Contract, invoice.contract_id) if invoice.contract_id is not None else None
    applied = session.execute(
        select(InvoicePayment, Payment)
        .join(Payment, Payment.id == InvoicePayment.payment_id)
        .where(InvoicePayment.invoice_id == invoice.id)
        .order_by(InvoicePayment.applied_on, InvoicePayment.id)
    ).all()
    return _page(
        request,
        "billing/invoice.html",
        status_code,
        invoice=invoice,
        status=service.status_of(invoice, as_of),
        as_of=as_of,
        original=original,
        corrections=[(c, service.status_of(c, as_of)) for c in corrections],
        contract=contract,
        applied=applied,
        from_advances=invoice.paid - sum((a.amount for a, _ in applied), Decimal("0.00")),
        fapiao=service.fapiao(invoice),
        evidence_href=_evidence_href,
        errors=errors,
        values=values or {},
    )


def _evidence_href(invoice: Invoice, evidence: dict[str, Any] | None) -> str | None:
    """The SLA page of the month the credit was computed on (the line's evidence names the API's)."""
    if invoice.contract_id is None or not invoice.period:
        return None
    period = (evidence or {}).get("period") or invoice.period
    return f"/contracts/{invoice.contract_id}/sla?{urlencode({'period': period})}"


@router.get("/billing/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(
    request: Request, session: Session, viewer: Viewer, invoice_id: int, as_of: str | None = None
) -> HTMLResponse:
    _readers(viewer)
    return _invoice_page(request, session, viewer, invoice_id, as_of=_date(as_of, "as of"))


def _invoice_action(
    request: Request,
    session: OrmSession,
    viewer: Principal,
    invoice_id: int,
    fields: dict[str, str],
    act: Any,
) -> Response:
    _staff(viewer)
    try:
        target = act()
    except (ValidationError, AppError) as exc:
        session.rollback()
        return _invoice_page(
            request,
            session,
            viewer,
            invoice_id,
            errors=_problems(exc),
            values=fields,
            status_code=_status_of(exc),
        )
    return RedirectResponse(f"/billing/invoices/{target.id}", status_code=303)


@router.post("/billing/invoices/{invoice_id}/finalize", dependencies=[Csrf])
def finalize(request: Request, session: Session, viewer: Viewer, invoice_id: int) -> Response:
    return _invoice_action(
        request, session, viewer, invoice_id, {}, lambda: service.finalize(session, viewer, invoice_id)
    )


@router.post("/billing/invoices/{invoice_id}/void", dependencies=[Csrf])
def void(
    request: Request, session: Session, viewer: Viewer, invoice_id: int, fields: dict = FormData
) -> Response:
    def act() -> Invoice:
        data = VoidIn.model_validate({"reason": fields.get("reason", "")})
        return service.void(session, viewer, invoice_id, data.reason)

    return _invoice_action(request, session, viewer, invoice_id, fields, act)


@router.post("/billing/invoices/{invoice_id}/credit-note", dependencies=[Csrf])
def credit_note(
    request: Request, session: Session, viewer: Viewer, invoice_id: int, fields: dict = FormData
) -> Response:
    def act() -> Invoice:
        data = CreditNoteIn.model_validate(
            {k: v for k, v in fields.items() if k in ("amount", "reason", "on") and v != ""}
        )
        return service.credit_note(session, viewer, invoice_id, data.amount, data.reason, on=data.on)

    return _invoice_action(request, session, viewer, invoice_id, fields, act)


# ---------------------------------------------------------------------------------------- ageing


def _as_of(text: str | None) -> date:
    return _date(text, "as of") or _today()


@router.get("/billing/ageing", response_class=HTMLResponse)
def ageing_page(request: Request, session: Session, viewer: Viewer, as_of: str | None = None) -> HTMLResponse:
    _readers(viewer)
    errors: list[str] = []
    status_code = 200
    try:
        day = _as_of(as_of)
    except AppError as exc:
        errors, status_code, day = [exc.detail], exc.status, _today()
    rows = service.ageing(session, viewer, day)
    totals: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        t = totals.setdefault(r.currency, {b: Decimal("0.00") for b in (*BUCKETS, "total", "exposure")})
        for b in BUCKETS:
            t[b] += r.buckets[b]
        t["total"] += r.total
        t["exposure"] += r.exposure
    return _page(
        request,
        "billing/ageing.html",
        status_code,
        rows=rows,
        totals=totals,
        as_of=day,
        errors=errors,
    )


def _ageing_export(session: OrmSession, viewer: Principal, as_of: str | None, kind: str) -> Response:
    _readers(viewer)
    day = _as_of(as_of)
    rows = export.ageing_rows(service.ageing(session, viewer, day))
    return _download(kind, f"ageing-{day.isoformat()}", export.AGEING_COLUMNS, rows)


@router.get("/billing/ageing.csv")
def ageing_csv(session: Session, viewer: Viewer, as_of: str | None = None) -> Response:
    return _ageing_export(session, viewer, as_of, "csv")


@router.get("/billing/ageing.xlsx")
def ageing_xlsx(session: Session, viewer: Viewer, as_of: str | None = None) -> Response:
    return _ageing_export(session, viewer, as_of, "xlsx")


# -------------------------------------------------------------------------------------- payments


def _invoice_refs(session: OrmSession, viewer: Principal, text: str) -> list[int] | None:
    """Invoice ids from the form: numbers as printed (CL-2026-000123) or ids, separated by commas or
    spaces, in the order the payer gave them."""
    parts = [p for p in text.replace(",", " ").replace("，", " ").split() if p]
    if not parts:
        return None
    ids: list[int] = []
    for part in parts:
        if part.isdigit():
            ids.append(int(part))
            continue
        found = session.scalar(
            service.readable_invoices(viewer).with_only_columns(Invoice.id).where(Invoice.number == part)
        )
        if found is None:
            raise Unprocessable(f"invoice {part!r} does not exist")
        ids.append(found)
    return ids


def _payments_page(
    request: Request,
    session: OrmSession,
    viewer: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: Sequence[str] = (),
    status_code: int = 200,
) -> HTMLResponse:
    errors = list(errors)
    customer_id: int | None = None
    offset = 0
    try:
        if viewer.is_staff:
            customer_id = _int(request.query_params.get("customer_id"), "customer")
        offset = max(_int(request.query_params.get("offset"), "offset") or 0, 0)
    except AppError as exc:
        errors.append(exc.detail)
        status_code = exc.status if status_code == 200 else status_code
    stmt = service.readable_payments(viewer)
    if customer_id is not None:
        stmt = stmt.where(Payment.customer_id == customer_id)
    stmt = stmt.order_by(Payment.received_on.desc(), Payment.id.desc())
    payments, total = paginate(session, stmt, PageParams(limit=PAGE_SIZE, offset=offset))
    numbers = dict(
        session.execute(
            select(Invoice.id, Invoice.number).where(
                Invoice.id.in_({a.invoice_id for p in payments for a in p.allocations})
            )
        ).all()
    )
    customers = (
        session.scalars(readable_customers(viewer).order_by(Customer.name)).all() if viewer.is_staff else []
    )
    defaults = {"currency": "CNY", "received_on": _today().isoformat(), "method": "bank_transfer"}
    return _page(
        request,
        "billing/payments.html",
        status_code,
        payments=payments,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        numbers=numbers,
        customers=customers,
        customer_id=customer_id,
        currencies=list(CURRENCIES),
        methods=METHODS,
        values=defaults | (values or {}),
        errors=errors,
        recorded=request.session.pop("billing_payment", None),
        today=_today(),
    )


@router.get("/billing/payments", response_class=HTMLResponse)
def payments_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    _readers(viewer)
    return _payments_page(request, session, viewer)


@router.post("/billing/payments", dependencies=[Csrf])
def record_payment(request: Request, session: Session, viewer: Viewer, fields: dict = FormData) -> Response:
    _staff(viewer)
    try:
        body = {
            k: v
            for k, v in fields.items()
            if k in ("customer_id", "amount", "currency", "received_on", "reference", "method", "note")
            and v != ""
        }
        if "amount" in body:
            try:
                # People paste amounts with thousands separators: 1,234.50.
                body["amount"] = str(Decimal(body["amount"].replace(",", "").replace("，", "")))
            except InvalidOperation:
                raise Unprocessable(f"amount {fields['amount']!r} is not a number") from None
        body["invoice_ids"] = _invoice_refs(session, viewer, fields.get("invoice_ids", ""))
        data = PaymentIn.model_validate(body)
        payment, created = service.record_payment(session, viewer, **data.model_dump())
    except (ValidationError, AppError) as exc:
        session.rollback()
        return _payments_page(
            request, session, viewer, values=fields, errors=_problems(exc), status_code=_status_of(exc)
        )
    request.session["billing_payment"] = {
        "id": payment.id,
        "reference": payment.reference,
        "created": created,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "unapplied": str(payment.unapplied),
    }
    return RedirectResponse("/billing/payments", status_code=303)
