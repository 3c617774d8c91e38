"""Billing from stored records: month close, finalizing and numbering, credit notes, payments, ageing,
ledger. The rules are in :mod:`computelease.billing.core`; this module reads and writes.

The chain: allocations say what served a contract, telemetry and the SLA module say what it delivered,
:func:`close` turns both into invoice lines (the SLA credit a negative line with its evidence),
finalizing posts receivables, revenue and VAT to the ledger, payments clear receivables.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Select, false, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, lazyload

from computelease.allocation.models import Allocation
from computelease.audit.models import AuditEntry
from computelease.auth.core import Principal, Role
from computelease.billing import core
from computelease.billing.core import DocKind, InvoiceStatus, LineKind
from computelease.billing.models import (
    BillingPeriod,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    LedgerEntry,
    Payment,
    VatRateRow,
)
from computelease.contracts import service as contracts_service
from computelease.contracts.core import ContractStatus
from computelease.contracts.models import Contract, Customer
from computelease.errors import Conflict, Forbidden, NotFound, Unprocessable
from computelease.fleet.models import Gpu
from computelease.kit.time import utcnow
from computelease.money import CURRENCIES
from computelease.sla import core as sla_core
from computelease.sla import service as sla

ZERO = core.ZERO
# A signed contract whose term has begun is serving even before anyone marks it active.
BILLED = (ContractStatus.signed, ContractStatus.active, ContractStatus.ended, ContractStatus.terminated)


def _entity() -> str:
    from computelease.config import get_settings

    return get_settings().billing_entity


def _staff(principal: Principal) -> None:
    if not principal.is_staff:
        raise Forbidden("only operators and admins may do this")


# ---------------------------------------------------------------------------------------------- scoping


def readable_invoices(principal: Principal) -> Select[tuple[Invoice]]:
    stmt = select(Invoice)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        # A customer sees what was issued to it, never a draft still under review.
        return stmt.where(Invoice.customer_id == principal.customer_id, Invoice.status != InvoiceStatus.draft)
    return stmt.where(false())


def readable_payments(principal: Principal) -> Select[tuple[Payment]]:
    stmt = select(Payment)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        return stmt.where(Payment.customer_id == principal.customer_id)
    return stmt.where(false())


def get_invoice(session: Session, principal: Principal, invoice_id: int) -> Invoice:
    invoice = session.scalar(readable_invoices(principal).where(Invoice.id == invoice_id))
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist or is not visible to you")
    return invoice


def get_payment(session: Session, principal: Principal, payment_id: int) -> Payment:
    payment = session.scalar(readable_payments(principal).where(Payment.id == payment_id))
    if payment is None:
        raise NotFound(f"payment {payment_id} does not exist or is not visible to you")
    return payment


def list_invoices(
    principal: Principal,
    *,
    period: str | None = None,
    status: InvoiceStatus | None = None,
    customer_id: int | None = None,
    contract_id: int | None = None,
    as_of: date | None = None,
) -> Select[tuple[Invoice]]:
    stmt = readable_invoices(principal)
    if period is not None:
        sla_core.parse_period(period)
        stmt = stmt.where(Invoice.period == period)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if contract_id is not None:
        stmt = stmt.where(Invoice.contract_id == contract_id)
    if status is not None:
        today = as_of or utcnow().date()
        owing = Invoice.gross - Invoice.paid - Invoice.credited > 0
        open_ = Invoice.status.in_([InvoiceStatus.finalized, InvoiceStatus.partially_paid])
        # The same reading as status_of: what is owed and the due date decide, not the stored word
        # alone (a credit note is stored finalized and owes nothing: it reads as settled, "paid").
        if status is InvoiceStatus.overdue:
            stmt = stmt.where(open_, owing, Invoice.due_on < today)
        elif status is InvoiceStatus.paid:
            stmt = stmt.where(open_ | (Invoice.status == InvoiceStatus.paid), ~owing)
        elif status in (InvoiceStatus.finalized, InvoiceStatus.partially_paid):
            stmt = stmt.where(
                Invoice.status == status, owing, or_(Invoice.due_on >= today, Invoice.due_on.is_(None))
            )
        else:
            stmt = stmt.where(Invoice.status == status)
    return stmt.order_by(Invoice.issued_on.desc().nulls_first(), Invoice.id.desc())


def status_of(invoice: Invoice, as_of: date | None = None) -> InvoiceStatus:
    return core.status_of(
        invoice.status,
        invoice.gross,
        invoice.paid + invoice.credited,
        invoice.due_on,
        as_of or utcnow().date(),
    )


# ------------------------------------------------------------------------------------------------- VAT


def vat_table(session: Session) -> core.VatTable:
    rows = session.scalars(select(VatRateRow).order_by(VatRateRow.valid_from, VatRateRow.id))
    return core.shipped_vat_table().with_rows(
        core.VatRate(r.category, r.rate, r.valid_from, None, r.source) for r in rows
    )


def add_vat_rate(
    session: Session, principal: Principal, category: str, rate: Decimal | str, valid_from: date, source: str
) -> VatRateRow:
    if principal.role is not Role.admin:
        raise Forbidden("only admins change the VAT table")
    if not source.strip():
        raise Unprocessable("say where the rate comes from: send a source (a circular's number)")
    parsed = core.vat_rate(category, rate, valid_from, source)
    row = VatRateRow(
        category=parsed.category,
        rate=parsed.rate,
        valid_from=valid_from,
        source=source.strip(),
        created_by=principal.actor,
    )
    session.add(row)
    session.flush()
    return row


# ------------------------------------------------------------------------------------ expected lines


def terms_of(contract: Contract, end: datetime) -> core.BillingTerms:
    return core.BillingTerms(
        pricing=contract.pricing,
        price=contract.price,
        om_monthly_fee=contract.om_monthly_fee,
        start=contract.starts_at,
        end=end,
        tz=contract.timezone,
        currency=contract.currency,
        gpus=contract.billable_gpus,
        pflops=contract.billable_pflops,
        on_demand_rate=contract.on_demand_rate,
        prices_include_vat=contract.prices_include_vat,
        payment_terms_days=contract.payment_terms_days,
    )


def allocated_gpu_hours(session: Session, contract: Contract, start: datetime, end: datetime) -> Decimal:
    total = _gpu_hours(session, contract.id, start, end, None) / 3600
    return Decimal(total.numerator) / Decimal(total.denominator)


def sla_result(
    session: Session,
    contract: Contract,
    period: str,
    end: datetime,
    fee: Decimal,
    sources: sla.Sources | None = None,
) -> sla_core.SlaResult | None:
    """The SLA module's figures for the month up to ``end``, the credit on ``fee`` (the month's compute
    and O&M as invoiced); None for a contract without an SLA policy."""
    if contract.sla_policy is None:
        return None
    start, stop = sla_core.month_bounds(period, contract.timezone)
    if sources is None:
        sources = sla.load_sources(session, start, stop, [contract.id])
    window = dataclasses.replace(sla.window_of(contract, period), end=end)
    intervals, node_ids = sla.intervals_for(session, contract, start, stop, sources)
    return sla_core.compute_sla(
        sla.policy_of(contract),
        window,
        period,
        intervals,
        sla.maintenance_in(sources, node_ids, start, stop),
        period_fee=fee,
    )


def sla_credit(result: sla_core.SlaResult, contract_id: int) -> core.SlaCredit:
    return core.SlaCredit(
        amount=result.credit,
        availability_pct=result.availability_pct,
        target_pct=result.target_pct,
        credit_pct=result.credit_pct,
        capped=result.capped,
        incidents=len(result.incidents),
        evidence_url=f"/api/v1/contracts/{contract_id}/sla?period={result.period}",
    )


@dataclass(frozen=True, slots=True)
class Expected:
    lines: tuple[core.Line, ...]
    sla: sla_core.SlaResult | None  # the figures the credit line (if any) came from


def expected(
    session: Session,
    contract: Contract,
    period: str,
    vat: core.VatTable,
    *,
    end: datetime | None = None,
    sources: sla.Sources | None = None,
) -> Expected:
    """What ``contract`` owes for ``period`` from the records as they are now, service counted up to
    ``end`` (default: the end of service), and the SLA figures behind its credit."""
    end = end or contracts_service.service_end(session, contract)
    terms = terms_of(contract, end)
    start, stop = sla_core.month_bounds(period, contract.timezone)
    used = None
    if contract.on_demand_rate:
        used = allocated_gpu_hours(session, contract, max(start, terms.start), min(stop, end))
    base = core.invoice_lines(terms, period, vat=vat, allocated_gpu_hours=used)
    if not base:
        return Expected((), None)
    fee = sum(
        (ln.gross if terms.prices_include_vat else ln.net for ln in base if ln.kind in core.CREDITABLE), ZERO
    )
    result = sla_result(session, contract, period, end, fee, sources)
    if result is None or result.credit <= 0:
        return Expected(base, result)
    credit = sla_credit(result, contract.id)
    return Expected(core.invoice_lines(terms, period, vat=vat, allocated_gpu_hours=used, sla=credit), result)


# -------------------------------------------------------------------------------------------- documents


def _as_line(row: InvoiceLine) -> core.Line:
    return core.Line(
        kind=row.kind,
        category=row.category,
        description=row.description,
        quantity=row.quantity,
        unit=row.unit,
        unit_price=row.unit_price,
        net=row.net,
        rate=row.rate,
        tax=row.tax,
        gross=row.gross,
        evidence=row.evidence,
    )


def _set_lines(invoice: Invoice, lines: Sequence[core.Line]) -> None:
    invoice.lines.clear()
    for position, ln in enumerate(lines, start=1):
        invoice.lines.append(
            InvoiceLine(
                position=position,
                kind=ln.kind,
                category=ln.category,
                description=ln.description,
                quantity=ln.quantity,
                unit=ln.unit,
                unit_price=ln.unit_price,
                net=ln.net,
                rate=ln.rate,
                tax=ln.tax,
                gross=ln.gross,
                evidence=dict(ln.evidence) if ln.evidence is not None else None,
            )
        )
    t = core.totals(lines)
    invoice.net, invoice.tax, invoice.gross = t.net, t.tax, t.gross


def _take_numbers(session: Session, kind: DocKind, year: int, count: int) -> list[str]:
    """``count`` consecutive numbers of the series. The UPDATE ... RETURNING takes the row lock and the
    numbers in one statement: a concurrent finalizer waits until this transaction ends, and a rollback
    hands the numbers back, so the series never has a gap."""
    entity = _entity()
    dialect = session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert_(DocumentSequence).values(entity=entity, kind=kind, year=year, last=0).on_conflict_do_nothing()
    )
    last = session.execute(
        update(DocumentSequence)
        .where(
            DocumentSequence.entity == entity, DocumentSequence.kind == kind, DocumentSequence.year == year
        )
        .values(last=DocumentSequence.last + count)
        .returning(DocumentSequence.last)
    ).scalar_one()
    return [core.document_number(entity, kind, year, seq) for seq in range(last - count + 1, last + 1)]


def _next_number(session: Session, kind: DocKind, year: int) -> str:
    return _take_numbers(session, kind, year, 1)[0]


def _post(
    session: Session,
    journal: core.Journal,
    *,
    customer_id: int,
    invoice_id: int | None = None,
    payment_id: int | None = None,
) -> None:
    for p in journal.postings:
        session.add(
            LedgerEntry(
                journal=journal.memo[:80],
                posted_on=journal.on,
                account=str(p.account),
                currency=p.currency,
                amount=p.amount,
                customer_id=customer_id,
                invoice_id=invoice_id,
                payment_id=payment_id,
            )
        )


def _finalize(session: Session, invoice: Invoice, on: date, now: datetime) -> None:
    if invoice.status is not InvoiceStatus.draft:
        raise Conflict(f"invoice {invoice.number or invoice.id} is {invoice.status}, not a draft")
    invoice.number = _next_number(session, invoice.kind, on.year)
    invoice.status = InvoiceStatus.finalized
    invoice.issued_on = invoice.issued_on or on
    invoice.finalized_at = now
    session.flush()
    _post(
        session,
        core.document_journal(
            invoice.number, invoice.issued_on, invoice.currency, map(_as_line, invoice.lines)
        ),
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
    )
    if invoice.kind is DocKind.credit_note and invoice.corrects_id is not None:
        original = session.get(Invoice, invoice.corrects_id)
        assert original is not None
        _settle_credit(session, original, -invoice.gross, invoice.issued_on)
        invoice.credited = invoice.gross  # a credit note settles itself: nothing is owed on it
    elif invoice.kind is DocKind.invoice:
        _apply_advances(session, invoice, invoice.issued_on)


def _settle_credit(session: Session, original: Invoice, amount: Decimal, on: date) -> None:
    """A credit note of ``amount`` (> 0) against ``original``: it reduces what is owed; anything beyond
    the balance (the invoice was already paid) becomes the customer's advance."""
    owed = max(original.balance, ZERO)
    against = min(owed, amount)
    original.credited += against
    beyond = amount - against
    if beyond > 0:
        # Receivables were credited by the full note; the part already paid is now owed back to the
        # customer: move it from receivables to advances, where the next invoice takes it.
        _post(
            session,
            core.Journal(
                f"refund-due {original.number}",
                on,
                (
                    core.Posting(core.Account.receivables, beyond, original.currency),
                    core.Posting(core.Account.advances, -beyond, original.currency),
                ),
            ),
            customer_id=original.customer_id,
            invoice_id=original.id,
        )
    _refresh(original)


def _refresh(invoice: Invoice) -> None:
    if invoice.status in (InvoiceStatus.draft, InvoiceStatus.void):
        return
    settled = invoice.paid + invoice.credited
    if settled >= invoice.gross:
        invoice.status = InvoiceStatus.paid
    elif settled > 0:
        invoice.status = InvoiceStatus.partially_paid
    else:
        invoice.status = InvoiceStatus.finalized


def advance_balance(session: Session, customer_id: int, currency: str) -> Decimal:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.customer_id == customer_id,
            LedgerEntry.currency == currency,
            LedgerEntry.account == str(core.Account.advances),
        )
    )
    # Advances are a liability: credits (negative) are what the customer has paid ahead.
    return ZERO - Decimal(total or 0)


def _apply_advances(session: Session, invoice: Invoice, on: date) -> None:
    available = advance_balance(session, invoice.customer_id, invoice.currency)
    amount = min(available, invoice.balance)
    if amount <= 0:
        return
    invoice.paid += amount
    _refresh(invoice)
    _post(
        session,
        core.advance_journal(f"advance {invoice.number}", on, invoice.currency, amount),
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
    )


def finalize(session: Session, principal: Principal, invoice_id: int, *, on: date | None = None) -> Invoice:
    _staff(principal)
    invoice = get_invoice(session, principal, invoice_id)
    now = utcnow()
    _finalize(session, invoice, on or invoice.issued_on or now.date(), now)
    session.flush()
    return invoice


def void(session: Session, principal: Principal, invoice_id: int, reason: str) -> Invoice:
    """Void a draft, or a finalized document nothing was paid or credited against (its number stays
    used, and its postings are reversed); anything else is corrected by a credit note."""
    _staff(principal)
    if not reason.strip():
        raise Unprocessable("say why the invoice is voided: send a reason")
    invoice = get_invoice(session, principal, invoice_id)
    if invoice.status is InvoiceStatus.void:
        raise Conflict(f"invoice {invoice.number or invoice.id} is already void")
    if invoice.status is not InvoiceStatus.draft:
        if invoice.kind is DocKind.credit_note:
            raise Conflict(
                "a finalized credit note cannot be voided; issue an invoice for the amount instead"
            )
        if invoice.paid or invoice.credited:
            raise Conflict(
                f"invoice {invoice.number} has payments or credit notes against it; "
                "correct it with a credit note"
            )
        reversal = [
            dataclasses.replace(ln, net=-ln.net, tax=-ln.tax, gross=-ln.gross)
            for ln in map(_as_line, invoice.lines)
        ]
        _post(
            session,
            core.document_journal(f"void {invoice.number}", utcnow().date(), invoice.currency, reversal),
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
        )
    invoice.status = InvoiceStatus.void
    invoice.voided_at = utcnow()
    invoice.reason = (invoice.reason + "\n" if invoice.reason else "") + f"void: {reason.strip()}"
    session.flush()
    return invoice


def credit_note(
    session: Session,
    principal: Principal,
    invoice_id: int,
    amount: Decimal,
    reason: str,
    *,
    on: date | None = None,
) -> Invoice:
    """A manual credit note of ``amount`` (as the contract prices, VAT included or not) against a
    finalized invoice; at most what the invoice still carries after earlier credit notes."""
    _staff(principal)
    if not reason.strip():
        raise Unprocessable("say why the credit is given: send a reason")
    original = get_invoice(session, principal, invoice_id)
    if original.kind is not DocKind.invoice or original.status in (InvoiceStatus.draft, InvoiceStatus.void):
        raise Conflict("a credit note corrects a finalized invoice; this document is not one")
    if amount <= 0:
        raise Unprocessable(f"a credit must be positive, got {amount}")
    if amount > original.gross - original.credited:
        raise Unprocessable(
            f"a credit of {amount} exceeds what invoice {original.number} still carries "
            f"({original.gross - original.credited} after earlier credit notes)"
        )
    includes_vat = True
    if original.contract_id is not None:
        contract = session.get(Contract, original.contract_id)
        includes_vat = contract.prices_include_vat if contract is not None else True
    rates = {ln.rate for ln in original.lines if ln.gross > 0}
    if len(rates) != 1:
        raise Unprocessable(
            f"invoice {original.number} carries lines at {len(rates)} VAT rates; a credit note of one amount "
            "cannot say which it reduces: void and reissue it, or credit each rate separately"
        )
    (rate,) = rates
    line = core.priced(
        LineKind.manual,
        -amount,
        rate=rate,
        includes_vat=includes_vat,
        description=f"冲红 credit: {reason.strip()}",
        unit="项",
    )
    note = _document(session, original, DocKind.credit_note, [line], reason.strip())
    _finalize(session, note, on or utcnow().date(), utcnow())
    session.flush()
    return note


def _document(
    session: Session, original: Invoice, kind: DocKind, lines: Sequence[core.Line], reason: str
) -> Invoice:
    doc = Invoice(
        kind=kind,
        status=InvoiceStatus.draft,
        contract_id=original.contract_id,
        customer_id=original.customer_id,
        period=original.period,
        corrects_id=original.id,
        currency=original.currency,
        due_on=original.due_on,
        reason=reason,
    )
    session.add(doc)
    _set_lines(doc, lines)
    return doc


# ----------------------------------------------------------------------------------------------- close


@dataclass
class CloseResult:
    period: str
    dry_run: bool
    contracts: int = 0
    created: int = 0
    adjusted: int = 0
    unchanged: int = 0
    finalized: int = 0
    documents: list[str] = field(default_factory=list)
    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, currency: str, lines: Iterable[core.Line]) -> None:
        t = core.totals(lines)
        bucket = self.totals.setdefault(currency, {"net": ZERO, "tax": ZERO, "gross": ZERO})
        bucket["net"] += t.net
        bucket["tax"] += t.tax
        bucket["gross"] += t.gross

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _lock_period(session: Session, period: str, principal: Principal, now: datetime) -> BillingPeriod:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(BillingPeriod).values(period=period, closes=0).on_conflict_do_nothing())
    # The UPDATE is the lock: on PostgreSQL a second close of the month waits on this row until the
    # first commits, then reads what it wrote; on SQLite the write takes the database lock at once.
    session.execute(
        update(BillingPeriod)
        .where(BillingPeriod.period == period)
        .values(closes=BillingPeriod.closes + 1, last_closed_at=now, last_closed_by=principal.actor)
    )
    row = session.get(BillingPeriod, period, populate_existing=True)
    assert row is not None
    return row


def billable_contracts(
    session: Session, period: str, contract_ids: Sequence[int] | None = None
) -> list[Contract]:
    """Contracts that may owe something for ``period``: signed terms overlapping the month in the
    widest time zone sense (a day either side), narrowed exactly by each one's own window later."""
    lo, hi = sla_core.month_bounds(period, "UTC")
    stmt = select(Contract).where(
        Contract.status.in_(BILLED),
        Contract.starts_at < hi + timedelta(days=1),
        Contract.ends_at > lo - timedelta(days=1),
    )
    if contract_ids:
        stmt = stmt.where(Contract.id.in_(list(contract_ids)))
    # A close reads terms, not status timelines: loading every contract's events cost more than its SLA.
    return list(session.scalars(stmt.options(lazyload(Contract.events)).order_by(Contract.id)))


def close(
    session: Session,
    principal: Principal,
    period: str,
    *,
    draft: bool = False,
    dry_run: bool = False,
    contract_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> CloseResult:
    """Compute every invoice of ``period``: create what is missing, emit only the difference where a
    source changed, leave the rest. Runs under the period's lock; all or nothing (one transaction)."""
    _staff(principal)
    now = now or utcnow()
    sla_core.parse_period(period)
    result = CloseResult(period=period, dry_run=dry_run)
    if not dry_run:
        _lock_period(session, period, principal, now)
    vat = vat_table(session)
    fresh: list[_Fresh] = []
    contracts = billable_contracts(session, period, contract_ids)
    ends = contracts_service.service_ends(session, contracts)
    sources = None
    if contracts:
        bounds = [sla_core.month_bounds(period, c.timezone) for c in contracts]
        sources = sla.load_sources(
            session,
            min(b[0] for b in bounds),
            max(b[1] for b in bounds),
            None if contract_ids is None else [c.id for c in contracts],
        )
    existing: dict[int, list[Invoice]] = defaultdict(list)
    for doc in session.scalars(
        select(Invoice)
        .where(
            Invoice.period == period, Invoice.status != InvoiceStatus.void, Invoice.contract_id.is_not(None)
        )
        .order_by(Invoice.id)
    ):
        existing[doc.contract_id].append(doc)  # type: ignore[index]
    for contract in contracts:
        _, month_end = sla_core.month_bounds(period, contract.timezone)
        if month_end > now:
            if contract_ids:
                raise Unprocessable(
                    f"period {period} is not over yet in {contract.timezone}; close it after it ends"
                )
            continue
        lines = expected(session, contract, period, vat, end=ends[contract.id], sources=sources).lines
        if not lines:
            continue
        result.contracts += 1
        issued = core.issue_date(period, contract.timezone)
        due = core.due_date(issued, contract.payment_terms_days)
        docs = existing.get(contract.id, [])
        original = next((d for d in docs if d.kind is DocKind.invoice and d.corrects_id is None), None)
        if original is None:
            result.created += 1
            result.add(contract.currency, lines)
            if not dry_run:
                fresh.append(_Fresh(contract, lines, issued, due))
            continue
        if original.status is InvoiceStatus.draft and len(docs) == 1:
            # A draft is still ours to change: recompute it in place.
            if [_key(ln) for ln in map(_as_line, original.lines)] == [_key(ln) for ln in lines]:
                result.unchanged += 1
            else:
                result.adjusted += 1
                result.add(contract.currency, lines)
                if not dry_run:
                    _set_lines(original, lines)
            if not dry_run and not draft:
                _finalize(session, original, issued, now)
                result.finalized += 1
            continue
        billed = [_as_line(ln) for d in docs if d.status is not InvoiceStatus.draft for ln in d.lines]
        change = core.adjustment(lines, billed)
        if change.empty:
            result.unchanged += 1
            continue
        result.adjusted += 1
        result.add(contract.currency, (*change.credit, *change.charge))
        if dry_run:
            continue
        on = max(now.astimezone(sla_core.zone(contract.timezone)).date(), issued)
        for kind, part in ((DocKind.credit_note, change.credit), (DocKind.invoice, change.charge)):
            if not part:
                continue
            doc = _document(
                session, original, kind, part, f"recomputed {period}: a source changed after the invoice"
            )
            if kind is DocKind.invoice:
                doc.issued_on, doc.due_on = on, core.due_date(on, contract.payment_terms_days)
            session.flush()
            _finalize(session, doc, on, now)
            result.finalized += 1
            result.documents.append(doc.number or "")
    if fresh:
        _create(session, fresh, period, draft=draft, now=now, result=result)
    if not dry_run:
        row = session.get(BillingPeriod, period)
        assert row is not None
        row.summary = _jsonable(result.as_dict())
        result.warnings.extend(credit_warnings(session))
    session.flush()
    return result


@dataclass(frozen=True, slots=True)
class _Fresh:
    contract: Contract
    lines: tuple[core.Line, ...]
    issued: date
    due: date


def _create(
    session: Session, fresh: list[_Fresh], period: str, *, draft: bool, now: datetime, result: CloseResult
) -> None:
    """Insert the month's new invoices in bulk: numbers taken as one range per year, advances applied,
    lines, ledger postings and audit entries written with one statement each. A close creates thousands
    of invoices; one ORM flush per invoice would take minutes."""
    numbers: dict[int, list[str]] = {}
    advances: dict[tuple[int, str], Decimal] = {}
    if not draft:
        for year in sorted({f.issued.year for f in fresh}):
            count = sum(1 for f in fresh if f.issued.year == year)
            numbers[year] = _take_numbers(session, DocKind.invoice, year, count)[::-1]
        advances = advance_balances(session)
    rows: list[dict[str, Any]] = []
    for f in fresh:
        t = core.totals(f.lines)
        key = (f.contract.customer_id, f.contract.currency)
        paid = ZERO if draft else max(min(advances.get(key, ZERO), t.gross), ZERO)
        if paid:
            advances[key] -= paid
        if draft:
            status = InvoiceStatus.draft
        else:
            status = core.status_of(InvoiceStatus.finalized, t.gross, paid, None, f.issued)
        rows.append(
            {
                "kind": DocKind.invoice,
                "number": None if draft else numbers[f.issued.year].pop(),
                "status": status,
                "contract_id": f.contract.id,
                "customer_id": f.contract.customer_id,
                "period": period,
                "corrects_id": None,
                "currency": f.contract.currency,
                "issued_on": f.issued,
                "due_on": f.due,
                "net": t.net,
                "tax": t.tax,
                "gross": t.gross,
                "paid": paid,
                "credited": ZERO,
                "reason": "",
                "finalized_at": None if draft else now,
                "voided_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    table = Invoice.__table__
    ids = list(
        session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars()
    )
    line_rows: list[dict[str, Any]] = []
    ledger_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    actor = str(session.info.get("actor", "system"))
    for invoice_id, row, f in zip(ids, rows, fresh, strict=True):
        for position, ln in enumerate(f.lines, start=1):
            line_rows.append(
                {
                    "invoice_id": invoice_id,
                    "position": position,
                    "kind": ln.kind,
                    "category": ln.category,
                    "description": ln.description,
                    "quantity": ln.quantity,
                    "unit": ln.unit,
                    "unit_price": ln.unit_price,
                    "net": ln.net,
                    "rate": ln.rate,
                    "tax": ln.tax,
                    "gross": ln.gross,
                    "evidence": dict(ln.evidence) if ln.evidence is not None else None,
                }
            )
        journals = []
        if not draft:
            journals.append(core.document_journal(row["number"], f.issued, row["currency"], f.lines))
            if row["paid"]:
                journals.append(
                    core.advance_journal(f"advance {row['number']}", f.issued, row["currency"], row["paid"])
                )
        for journal in journals:
            ledger_rows.extend(
                {
                    "journal": journal.memo[:80],
                    "posted_on": journal.on,
                    "account": str(p.account),
                    "currency": p.currency,
                    "amount": p.amount,
                    "customer_id": row["customer_id"],
                    "invoice_id": invoice_id,
                    "payment_id": None,
                    "created_at": now,
                }
                for p in journal.postings
            )
        audit_rows.append(
            {
                "at": now,
                "actor": actor,
                "action": "create",
                "entity": Invoice.__tablename__,
                "entity_id": str(invoice_id),
                "before": None,
                "after": {
                    k: _jsonable(v if not isinstance(v, date | datetime) else v.isoformat())
                    for k, v in row.items()
                    if k not in ("created_at", "updated_at")
                },
            }
        )
        result.documents.append(row["number"] or f"draft:{invoice_id}")
    session.execute(insert(InvoiceLine.__table__), line_rows)
    if ledger_rows:
        session.execute(insert(LedgerEntry.__table__), ledger_rows)
    session.execute(insert(AuditEntry.__table__), audit_rows)
    if not draft:
        result.finalized += len(fresh)


def advance_balances(session: Session) -> dict[tuple[int, str], Decimal]:
    """Every customer's unapplied advances by currency (only those with something left)."""
    rows = session.execute(
        select(LedgerEntry.customer_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.account == str(core.Account.advances))
        .group_by(LedgerEntry.customer_id, LedgerEntry.currency)
    )
    return {(c, cur): -Decimal(v) for c, cur, v in rows if v is not None and Decimal(v) < 0}


def _key(ln: core.Line) -> tuple[Any, ...]:
    return (ln.kind, ln.category, ln.rate, ln.net, ln.tax, ln.gross, ln.quantity)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------- payments


def record_payment(
    session: Session,
    principal: Principal,
    *,
    customer_id: int,
    amount: Decimal,
    currency: str,
    received_on: date,
    reference: str,
    method: str = "bank_transfer",
    invoice_ids: Sequence[int] | None = None,
    note: str = "",
) -> tuple[Payment, bool]:
    """Record money received and apply it (oldest due first, or to ``invoice_ids`` in that order);
    the rest is kept as an advance. Idempotent by the bank ``reference``: the same payment sent again
    returns the first record (``False``: not created), a different one under the same reference is 409."""
    _staff(principal)
    if amount <= 0:
        raise Unprocessable(f"a payment must be positive, got {amount}")
    if not reference.strip():
        raise Unprocessable("give the payment's bank reference: it is what makes recording it safe to repeat")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise Unprocessable(f"customer {customer_id} does not exist")
    if currency not in CURRENCIES:
        raise Unprocessable(
            f"currency {currency!r} is not one we bill in; use one of {', '.join(CURRENCIES)}"
        )
    existing = session.scalar(
        select(Payment).where(Payment.customer_id == customer_id, Payment.reference == reference.strip())
    )
    if existing is not None:
        if (existing.amount, existing.currency, existing.received_on) != (amount, currency, received_on):
            raise Conflict(
                f"reference {reference!r} is already recorded for this customer as {existing.amount} "
                f"{existing.currency} on {existing.received_on}; use the bank's own reference of this payment"
            )
        return existing, False
    items = open_items(session, customer_id, currency)
    applied, left = core.allocate(amount, items, order=invoice_ids)
    payment = Payment(
        customer_id=customer_id,
        currency=currency,
        amount=amount,
        received_on=received_on,
        reference=reference.strip(),
        method=method,
        unapplied=left,
        note=note,
    )
    session.add(payment)
    session.flush()
    for invoice_id, part in applied:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        invoice.paid += part
        _refresh(invoice)
        session.add(
            InvoicePayment(payment_id=payment.id, invoice_id=invoice_id, amount=part, applied_on=received_on)
        )
    _post(
        session,
        core.payment_journal(f"payment {payment.reference}", received_on, currency, amount, amount - left),
        customer_id=customer_id,
        payment_id=payment.id,
    )
    session.flush()
    return payment, True


def open_items(session: Session, customer_id: int, currency: str) -> list[core.OpenItem]:
    stmt = select(Invoice).where(
        Invoice.customer_id == customer_id,
        Invoice.currency == currency,
        Invoice.kind == DocKind.invoice,
        Invoice.status.in_([InvoiceStatus.finalized, InvoiceStatus.partially_paid]),
    )
    return [
        core.OpenItem(i.id, i.due_on or i.issued_on or date.min, i.balance, i.number or "")
        for i in session.scalars(stmt)
        if i.balance > 0
    ]


# ------------------------------------------------------------------------------------------------ ageing


@dataclass
class AgeingRow:
    customer_id: int
    customer: str
    currency: str
    buckets: dict[str, Decimal]
    total: Decimal
    overdue: Decimal
    advances: Decimal
    credit_limit: Decimal
    exposure: Decimal
    over_limit: bool


def ageing(session: Session, principal: Principal, as_of: date | None = None) -> list[AgeingRow]:
    """Receivables by customer and currency in buckets (current, 1–30, 31–60, 61–90, >90 days past due),
    with each customer's exposure (open receivables less advances) against its credit limit."""
    as_of = as_of or utcnow().date()
    stmt = (
        readable_invoices(principal)
        .where(
            Invoice.kind == DocKind.invoice,
            Invoice.status.in_([InvoiceStatus.finalized, InvoiceStatus.partially_paid]),
        )
        .options(lazyload(Invoice.lines))  # balances only: a year of invoices' lines is not needed
    )
    by: dict[tuple[int, str], list[core.OpenItem]] = defaultdict(list)
    names: dict[int, Customer] = {}
    for inv in session.scalars(stmt):
        if inv.balance > 0:
            by[(inv.customer_id, inv.currency)].append(
                core.OpenItem(inv.id, inv.due_on or as_of, inv.balance)
            )
            names[inv.customer_id] = inv.customer
    rows = []
    for (customer_id, currency), items in sorted(by.items(), key=lambda kv: (names[kv[0][0]].name, kv[0][1])):
        buckets = core.ageing(items, as_of)
        total = sum(buckets.values(), ZERO)
        customer = names[customer_id]
        advances = advance_balance(session, customer_id, currency)
        exposure = total - advances
        # The limit is in the customer's currency; other currencies are shown, not compared.
        limited = currency == customer.currency and customer.credit_limit > 0
        rows.append(
            AgeingRow(
                customer_id=customer_id,
                customer=customer.name,
                currency=currency,
                buckets=buckets,
                total=total,
                overdue=total - buckets["current"],
                advances=advances,
                credit_limit=customer.credit_limit,
                exposure=exposure,
                over_limit=limited and exposure > customer.credit_limit,
            )
        )
    return rows


def credit_warnings(session: Session) -> list[str]:
    from computelease.auth.core import SYSTEM

    return [
        f"{r.customer}: exposure {r.exposure} {r.currency} is over its credit limit {r.credit_limit}"
        for r in ageing(session, SYSTEM)
        if r.over_limit
    ]


# ------------------------------------------------------------------------------------------------ ledger


def trial_balance(session: Session, principal: Principal) -> dict[str, dict[str, Decimal]]:
    _staff(principal)
    rows = session.execute(
        select(LedgerEntry.account, LedgerEntry.currency, func.sum(LedgerEntry.amount)).group_by(
            LedgerEntry.account, LedgerEntry.currency
        )
    )
    return core.trial_balance((a, c, Decimal(v)) for a, c, v in rows)


# ------------------------------------------------------------------------------------- fapiao, lessors


def fapiao(invoice: Invoice) -> dict[str, Any]:
    """The fields a 增值税发票 needs, line by line (amounts net of VAT, as the fapiao shows them)."""
    red = invoice.kind is DocKind.credit_note
    return {
        "number": invoice.number,
        "kind": "red" if red else "blue",  # 红字 / 蓝字
        "corrects": invoice.corrects.number if red and invoice.corrects_id and invoice.corrects else None,
        "issued_on": invoice.issued_on,
        "buyer": {"name": invoice.customer.name, "tax_id": invoice.customer.tax_id},
        "currency": invoice.currency,
        "lines": [
            {
                "item": core.FAPIAO_ITEM[ln.category],
                "spec": ln.description,
                "unit": ln.unit,
                "quantity": ln.quantity,
                "unit_price": (ln.net / ln.quantity).quantize(Decimal("0.000001")) if ln.quantity else ln.net,
                "amount": ln.net,
                "tax_rate": ln.rate,
                "tax": ln.tax,
            }
            for ln in invoice.lines
        ],
        "total_net": invoice.net,
        "total_tax": invoice.tax,
        "total_gross": invoice.gross,
    }


def earned_by_nodes(
    session: Session, node_ids: set[int], start: datetime, end: datetime
) -> dict[str, Decimal]:
    """Invoiced revenue (net of VAT, credits included) that ``node_ids`` earned in ``[start, end)``, by
    currency: each finalized document of a month is shared among the nodes that served its contract in
    proportion to their allocated GPU-hours that month, counting only the hours inside the window. No
    scoping: callers scope the nodes."""
    if not node_ids:
        return {}
    contract_ids = set(
        session.scalars(
            select(Allocation.contract_id).where(
                Allocation.node_id.in_(sorted(node_ids)), Allocation.start_at < end, Allocation.end_at > start
            )
        )
    )
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for contract_id in sorted(contract_ids):
        contract = session.get(Contract, contract_id)
        assert contract is not None
        docs = session.scalars(
            select(Invoice).where(
                Invoice.contract_id == contract_id,
                Invoice.status.notin_([InvoiceStatus.draft, InvoiceStatus.void]),
            )
        )
        by_period: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for d in docs:
            if d.period:
                by_period[d.period] += d.net
        for period, net in by_period.items():
            lo, hi = sla_core.month_bounds(period, contract.timezone)
            if hi <= start or lo >= end:
                continue
            # The nodes' GPU-hours inside the window over all the contract's GPU-hours of the month:
            # a window that cuts a month takes only its part of that month's invoice.
            mine = _gpu_hours(session, contract_id, max(lo, start), min(hi, end), node_ids)
            everyone = _gpu_hours(session, contract_id, lo, hi, None)
            if everyone > 0 and mine > 0:
                out[contract.currency] += core.fen(Fraction(net) * mine / everyone)
    return dict(out)


def _gpu_hours(
    session: Session, contract_id: int, lo: datetime, hi: datetime, node_ids: set[int] | None
) -> Fraction:
    stmt = (
        select(Allocation.start_at, Allocation.end_at, func.count(Gpu.id))
        .join(Gpu, Gpu.node_id == Allocation.node_id)
        .where(Allocation.contract_id == contract_id, Allocation.start_at < hi, Allocation.end_at > lo)
        .group_by(Allocation.id, Allocation.start_at, Allocation.end_at)
    )
    if node_ids is not None:
        stmt = stmt.where(Allocation.node_id.in_(sorted(node_ids)))
    total = Fraction(0)
    for a, b, n in session.execute(stmt):
        s, e = max(a, lo), min(b, hi)
        if e > s:
            total += n * Fraction(int((e - s).total_seconds()))
    return total
