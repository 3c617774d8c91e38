"""Demo billing (appended to computelease.demo.SEEDERS, after telemetry): every month since the first
contract started is closed, so invoices carry the SLA credits the demo's incidents earned; customers pay
20 days after each invoice, except one AI cloud that stopped paying three months ago (an overdue
customer for the ageing page) and paid its last settled month only in part."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal, Role
from computelease.billing import service
from computelease.billing.core import DocKind, InvoiceStatus
from computelease.billing.models import Invoice
from computelease.contracts.models import Contract
from computelease.kit.time import utcnow
from computelease.sla.core import month_bounds, period_of

DEMO = Principal(role=Role.admin, actor="demo")
LATE_MONTHS = 3


def _months(first: str, last: str) -> list[str]:
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def seed(session: Session, world: Any) -> None:
    now = utcnow()
    contracts = list(session.scalars(select(Contract).where(Contract.status.in_(service.BILLED))))
    if not contracts:
        return
    first = min(period_of(c.starts_at, c.timezone) for c in contracts)
    this_month = period_of(now, "Asia/Shanghai")
    last = period_of(month_bounds(this_month, "Asia/Shanghai")[0] - timedelta(days=1), "Asia/Shanghai")
    for period in _months(first, last):
        service.close(session, DEMO, period, now=now)
    late_payer = world.customers[1].id if len(world.customers) > 1 else None
    today = now.date()
    late_from = today - timedelta(days=31 * LATE_MONTHS)
    invoices = session.scalars(
        select(Invoice)
        .where(Invoice.kind == DocKind.invoice, Invoice.status != InvoiceStatus.draft)
        .order_by(Invoice.issued_on, Invoice.id)
    )
    for inv in list(invoices):
        paid_on = inv.issued_on + timedelta(days=20)
        if paid_on > today or inv.balance <= 0:
            continue
        amount = inv.balance
        if inv.customer_id == late_payer and inv.issued_on >= late_from:
            continue
        if inv.customer_id == late_payer and inv.issued_on >= late_from - timedelta(days=31):
            amount = (amount / 2).quantize(amount)  # the month before it stopped: half paid
        service.record_payment(
            session,
            DEMO,
            customer_id=inv.customer_id,
            amount=amount,
            currency=inv.currency,
            received_on=paid_on,
            reference=f"DEMO-{inv.number}",
            invoice_ids=[inv.id],
        )
    world.extra["billing"] = {"closed": _months(first, last), "late_payer": late_payer}
