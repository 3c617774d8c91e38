"""/api/v1 for invoices, credit notes, the month close, payments, ageing, ledger and VAT rates.

Reads are scoped by ``readable_*`` (a customer sees its own issued invoices and payments; lessors see
none); every write is for staff, and the VAT table for admins.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from computelease.auth.deps import Admin, Caller, Session, Staff
from computelease.billing import export, service
from computelease.billing.core import InvoiceStatus
from computelease.billing.models import Invoice, Payment
from computelease.billing.schemas import (
    AgeingRowOut,
    CloseIn,
    CloseOut,
    CreditNoteIn,
    InvoiceDetail,
    InvoiceOut,
    PaymentIn,
    PaymentOut,
    Period,
    VatRateIn,
    VatRateOut,
    VoidIn,
)
from computelease.kit.pagination import Page, Paging, paginate
from computelease.kit.time import utcnow

router = APIRouter(tags=["billing"])

AsOf = Annotated[date | None, Query(description="the day to judge due dates on (default today)")]


class Format(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


def present(invoice: Invoice, as_of: date | None = None, *, detail: bool = False) -> dict[str, Any]:
    data = {c.key: getattr(invoice, c.key) for c in Invoice.__table__.columns}
    data.update(
        status=service.status_of(invoice, as_of),
        customer_name=invoice.customer.name,
        balance=invoice.balance,
    )
    if detail:
        data["lines"] = invoice.lines
    return data


def _download(fmt: Format, name: str, columns, rows) -> Response:
    if fmt is Format.csv:
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


@router.get("/invoices", response_model=Page[InvoiceOut], summary="Invoices and credit notes you may see")
def list_invoices(
    session: Session,
    caller: Caller,
    paging: Paging,
    period: Period | None = None,
    status: InvoiceStatus | None = None,
    customer_id: int | None = None,
    contract_id: int | None = None,
    as_of: AsOf = None,
) -> Page[InvoiceOut]:
    stmt = service.list_invoices(
        caller, period=period, status=status, customer_id=customer_id, contract_id=contract_id, as_of=as_of
    )
    items, total = paginate(session, stmt, paging)
    return Page(
        items=[present(i, as_of) for i in items], total=total, limit=paging.limit, offset=paging.offset
    )


@router.get("/invoices/export", summary="Invoices you may see as CSV or Excel")
def export_invoices(
    session: Session,
    caller: Caller,
    format: Format = Format.csv,
    period: Period | None = None,
    status: InvoiceStatus | None = None,
    customer_id: int | None = None,
    as_of: AsOf = None,
) -> Response:
    stmt = service.list_invoices(caller, period=period, status=status, customer_id=customer_id, as_of=as_of)
    rows = export.invoice_rows(session.scalars(stmt), as_of or utcnow().date())
    return _download(format, f"invoices-{period or 'all'}", export.INVOICE_COLUMNS, rows)


@router.get("/invoices/{invoice_id}", response_model=InvoiceDetail)
def get_invoice(session: Session, caller: Caller, invoice_id: int, as_of: AsOf = None) -> InvoiceDetail:
    return present(service.get_invoice(session, caller, invoice_id), as_of, detail=True)


@router.get("/invoices/{invoice_id}/fapiao", summary="The fields a VAT fapiao (增值税发票) needs")
def get_fapiao(session: Session, caller: Caller, invoice_id: int) -> dict[str, Any]:
    invoice = service.get_invoice(session, caller, invoice_id)
    if invoice.corrects_id is not None:
        invoice.corrects = session.get(Invoice, invoice.corrects_id)
    return service.fapiao(invoice)


@router.post(
    "/invoices/{invoice_id}/finalize", response_model=InvoiceDetail, summary="Number and issue a draft"
)
def finalize(session: Session, caller: Staff, invoice_id: int) -> InvoiceDetail:
    return present(service.finalize(session, caller, invoice_id), detail=True)


@router.post("/invoices/{invoice_id}/void", response_model=InvoiceDetail)
def void(session: Session, caller: Staff, invoice_id: int, data: VoidIn) -> InvoiceDetail:
    return present(service.void(session, caller, invoice_id, data.reason), detail=True)


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    response_model=InvoiceDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Correct a finalized invoice with a credit note (红字)",
)
def create_credit_note(session: Session, caller: Staff, invoice_id: int, data: CreditNoteIn) -> InvoiceDetail:
    note = service.credit_note(session, caller, invoice_id, data.amount, data.reason, on=data.on)
    return present(note, detail=True)


# ----------------------------------------------------------------------------------------- close


@router.post("/billing/close", response_model=CloseOut, summary="Close a month: compute every invoice of it")
def close(session: Session, caller: Staff, data: CloseIn) -> dict[str, Any]:
    return service.close(session, caller, data.period, draft=data.draft, dry_run=data.dry_run).as_dict()


@router.get("/billing/ageing", response_model=list[AgeingRowOut], summary="Receivables by age (账龄)")
def ageing(session: Session, caller: Caller, as_of: AsOf = None) -> list[service.AgeingRow]:
    return service.ageing(session, caller, as_of)


@router.get("/billing/ageing/export", summary="Ageing as CSV or Excel")
def export_ageing(
    session: Session, caller: Caller, format: Format = Format.csv, as_of: AsOf = None
) -> Response:
    day = as_of or utcnow().date()
    rows = export.ageing_rows(service.ageing(session, caller, day))
    return _download(format, f"ageing-{day.isoformat()}", export.AGEING_COLUMNS, rows)


@router.get("/billing/trial-balance", summary="Ledger balances by currency and account; each sums to zero")
def trial_balance(session: Session, caller: Staff) -> dict[str, dict[str, Any]]:
    return service.trial_balance(session, caller)


@router.get("/billing/vat-rates", response_model=list[VatRateOut], summary="The dated VAT table in force")
def vat_rates(session: Session, caller: Caller) -> list[Any]:
    return list(service.vat_table(session).rates)


@router.post("/billing/vat-rates", response_model=VatRateOut, status_code=status.HTTP_201_CREATED)
def add_vat_rate(session: Session, caller: Admin, data: VatRateIn) -> dict[str, Any]:
    row = service.add_vat_rate(session, caller, data.category, data.rate, data.valid_from, data.source)
    return {
        "category": row.category,
        "rate": row.rate,
        "valid_from": row.valid_from,
        "valid_until": None,
        "source": row.source,
    }


# -------------------------------------------------------------------------------------- payments


@router.get("/payments", response_model=Page[PaymentOut], summary="Payments you may see")
def list_payments(
    session: Session, caller: Caller, paging: Paging, customer_id: int | None = None
) -> Page[PaymentOut]:
    stmt = service.readable_payments(caller)
    if customer_id is not None:
        stmt = stmt.where(Payment.customer_id == customer_id)
    items, total = paginate(session, stmt.order_by(Payment.received_on.desc(), Payment.id.desc()), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/payments", response_model=PaymentOut, summary="Record a payment; safe to repeat (by reference)"
)
def record_payment(session: Session, caller: Staff, data: PaymentIn, response: Response) -> Payment:
    payment, created = service.record_payment(session, caller, **data.model_dump())
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return payment


@router.get("/payments/{payment_id}", response_model=PaymentOut)
def get_payment(session: Session, caller: Caller, payment_id: int) -> Payment:
    return service.get_payment(session, caller, payment_id)
