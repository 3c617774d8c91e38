"""Billing tables: invoices and credit notes with their lines, numbering, closes, payments, ledger."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.billing.core import DocKind, InvoiceStatus, LineKind, TaxCategory
from computelease.contracts.models import Contract, Customer
from computelease.db import Base, Exact, Record
from computelease.kit.time import utcnow


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=20, validate_strings=True)


class VatRateRow(Base):
    """An operator's dated VAT rate; applies on top of the shipped table (billing/data/vat_rates.toml)."""

    __tablename__ = "billing_vat_rate"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[TaxCategory] = mapped_column(_enum(TaxCategory, "tax_category"))
    rate: Mapped[Decimal] = mapped_column(Exact(4))
    valid_from: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invoice(Record, Audited, Base):
    """An invoice or a credit note. Immutable once finalized, except its settlement figures (``paid``,
    ``credited``) and a void; a correction is a new document that refers to it (``corrects_id``).

    ``period`` is the month billed (``YYYY-MM`` in the contract's time zone). The one original invoice
    of a contract's month is unique while not void; supplementary invoices and credit notes refer to it.
    """

    __tablename__ = "invoice"
    __table_args__ = (
        Index(
            "uq_invoice_original",
            "contract_id",
            "period",
            unique=True,
            sqlite_where=text("kind = 'invoice' AND corrects_id IS NULL AND status <> 'void'"),
            postgresql_where=text("kind = 'invoice' AND corrects_id IS NULL AND status <> 'void'"),
        ),
        Index("ix_invoice_customer_status", "customer_id", "status"),
    )

    kind: Mapped[DocKind] = mapped_column(_enum(DocKind, "doc_kind"), default=DocKind.invoice)
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    status: Mapped[InvoiceStatus] = mapped_column(
        _enum(InvoiceStatus, "invoice_status"), default=InvoiceStatus.draft, index=True
    )
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    period: Mapped[str | None] = mapped_column(String(7), index=True)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    issued_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    net: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    tax: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    gross: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    # Settled so far: payments and advances applied, and credit notes against it (their gross, positive).
    paid: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    credited: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    reason: Mapped[str] = mapped_column(Text, default="")
    finalized_at: Mapped[datetime | None] = mapped_column()
    voided_at: Mapped[datetime | None] = mapped_column()

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        order_by="InvoiceLine.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    contract: Mapped[Contract | None] = relationship(lazy="raise_on_sql")
    corrects: Mapped[Invoice | None] = relationship(remote_side="Invoice.id", lazy="raise_on_sql")

    @property
    def balance(self) -> Decimal:
        return self.gross - self.paid - self.credited


class InvoiceLine(Base):
    __tablename__ = "invoice_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[LineKind] = mapped_column(_enum(LineKind, "line_kind"))
    category: Mapped[TaxCategory] = mapped_column(_enum(TaxCategory, "tax_category"))
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Exact(6))
    unit: Mapped[str] = mapped_column(String(20))
    unit_price: Mapped[Decimal] = mapped_column(Exact(6))
    net: Mapped[Decimal] = mapped_column(Exact(2))
    rate: Mapped[Decimal] = mapped_column(Exact(4))
    tax: Mapped[Decimal] = mapped_column(Exact(2))
    gross: Mapped[Decimal] = mapped_column(Exact(2))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class DocumentSequence(Base):
    """The last number given per issuing entity, document kind and year. Numbers are taken inside the
    transaction that finalizes, under this row's lock, so a rollback gives the number back: no gaps."""

    __tablename__ = "document_sequence"

    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[DocKind] = mapped_column(_enum(DocKind, "doc_kind"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class BillingPeriod(Base):
    """One row per month closed; closing locks it, so two closes of a month run one after the other."""

    __tablename__ = "billing_period"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closes: Mapped[int] = mapped_column(Integer, default=0)
    last_closed_at: Mapped[datetime | None] = mapped_column()
    last_closed_by: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Payment(Record, Audited, Base):
    """Money received from a customer; ``reference`` (the bank's) makes recording it idempotent."""

    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("customer_id", "reference", name="uq_payment_reference"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Exact(2))
    received_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(30), default="bank_transfer")
    unapplied: Mapped[Decimal] = mapped_column(Exact(2))
    note: Mapped[str] = mapped_column(Text, default="")

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    allocations: Mapped[list[InvoicePayment]] = relationship(
        back_populates="payment", lazy="selectin", order_by="InvoicePayment.id"
    )


class InvoicePayment(Base):
    __tablename__ = "invoice_payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id", ondelete="RESTRICT"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[Decimal] = mapped_column(Exact(2))
    applied_on: Mapped[date] = mapped_column(Date)

    payment: Mapped[Payment] = relationship(back_populates="allocations")


class LedgerEntry(Base):
    """One posting of a balanced journal; append-only. ``amount`` > 0 debits, < 0 credits."""

    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    journal: Mapped[str] = mapped_column(String(80), index=True)
    posted_on: Mapped[date] = mapped_column(Date, index=True)
    account: Mapped[str] = mapped_column(String(40), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Exact(2))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="RESTRICT"), index=True
    )
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="RESTRICT"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
