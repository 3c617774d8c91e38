"""Invoices and ageing as CSV and Excel for finance staff (金额 to the fen, dates ISO)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from computelease.billing.core import BUCKETS
from computelease.billing.models import Invoice
from computelease.billing.service import AgeingRow, status_of
from computelease.web.download import csv_text, safe_cell

INVOICE_COLUMNS = (
    "number",
    "kind",
    "status",
    "customer",
    "contract_id",
    "period",
    "currency",
    "issued_on",
    "due_on",
    "net",
    "tax",
    "gross",
    "paid",
    "credited",
    "balance",
    "corrects_id",
)
AGEING_COLUMNS = (
    "customer",
    "currency",
    *BUCKETS,
    "total",
    "advances",
    "exposure",
    "credit_limit",
    "over_limit",
)


def invoice_rows(invoices: Iterable[Invoice], as_of: date) -> list[tuple[object, ...]]:
    return [
        (
            i.number or f"draft-{i.id}",
            str(i.kind),
            str(status_of(i, as_of)),
            i.customer.name,
            i.contract_id,
            i.period,
            i.currency,
            i.issued_on,
            i.due_on,
            i.net,
            i.tax,
            i.gross,
            i.paid,
            i.credited,
            i.balance,
            i.corrects_id,
        )
        for i in invoices
    ]


def ageing_rows(rows: Iterable[AgeingRow]) -> list[tuple[object, ...]]:
    return [
        (
            r.customer,
            r.currency,
            *(r.buckets[b] for b in BUCKETS),
            r.total,
            r.advances,
            r.exposure,
            r.credit_limit,
            r.over_limit,
        )
        for r in rows
    ]


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    return csv_text(columns, rows)


def to_xlsx(sheet: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(list(columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([safe_cell(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, Decimal):
                cell.number_format = "#,##0.00"
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
