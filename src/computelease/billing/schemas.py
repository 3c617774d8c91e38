"""Billing as the API shows and takes it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from computelease.billing.core import DocKind, InvoiceStatus, LineKind, TaxCategory

Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]
Amount = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=2)]


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    kind: LineKind
    category: TaxCategory
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    rate: Decimal
    tax: Decimal
    gross: Decimal
    evidence: dict[str, Any] | None


class InvoiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: DocKind
    number: str | None
    status: InvoiceStatus = Field(description="as of today: overdue once past due with something owed")
    contract_id: int | None
    customer_id: int
    customer_name: str
    period: str | None
    corrects_id: int | None
    currency: str
    issued_on: date | None
    due_on: date | None
    net: Decimal
    tax: Decimal
    gross: Decimal
    paid: Decimal
    credited: Decimal
    balance: Decimal
    reason: str
    finalized_at: datetime | None
    created_at: datetime


class InvoiceDetail(InvoiceOut):
    lines: list[LineOut]


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Period
    draft: bool = Field(False, description="leave new invoices as drafts to review and finalize later")
    dry_run: bool = Field(False, description="compute and report, store nothing")


class CloseOut(BaseModel):
    period: str
    dry_run: bool
    contracts: int
    created: int
    adjusted: int
    unchanged: int
    finalized: int
    documents: list[str]
    totals: dict[str, dict[str, Decimal]]
    warnings: list[str]


class CreditNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount = Field(description="as the contract prices: VAT included unless it says otherwise")
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    on: date | None = None


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int
    amount: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    received_on: date
    reference: Annotated[str, Field(min_length=1, max_length=100, description="the bank's reference")]
    method: Annotated[str, Field(max_length=30)] = "bank_transfer"
    invoice_ids: list[int] | None = Field(None, description="apply to these invoices in this order")
    note: Annotated[str, Field(max_length=2000)] = ""


class PaymentApplied(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    invoice_id: int
    amount: Decimal
    applied_on: date


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    currency: str
    amount: Decimal
    received_on: date
    reference: str
    method: str
    unapplied: Decimal
    note: str
    allocations: list[PaymentApplied]
    created_at: datetime


class AgeingRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


class VatRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: TaxCategory
    rate: Annotated[Decimal, Field(ge=0, lt=1, max_digits=6, decimal_places=4, examples=["0.06"])]
    valid_from: date
    source: Annotated[str, Field(min_length=1, max_length=500, description="the circular it comes from")]


class VatRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    category: TaxCategory
    rate: Decimal
    valid_from: date
    valid_until: date | None
    source: str
