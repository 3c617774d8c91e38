from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.db import Base, Exact, Record
from computelease.finance.schedule import LeaseKind
from computelease.fleet.models import Node


class LessorKind(StrEnum):
    # 金融租赁公司: licensed and supervised like a bank (e.g. 信达金融租赁, 浙银金融租赁).
    financial_leasing = "financial_leasing"
    # 融资租赁公司: a commercial finance-lease company.
    finance_leasing = "finance_leasing"
    bank = "bank"


class Lessor(Record, Audited, Base):
    """An organisation that funds GPU servers by lease or credit line."""

    __tablename__ = "lessor"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[LessorKind] = mapped_column(
        Enum(LessorKind, name="lessor_kind", native_enum=False, length=30, validate_strings=True)
    )


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=30, validate_strings=True)


class LeaseStatus(StrEnum):
    active = "active"
    terminated = "terminated"  # ended early (default, buyout); arrears may still be collected
    closed = "closed"  # every rent settled, title passed or asset returned


# Where a lease may go from each status; a lease never becomes active again, because its nodes may
# meanwhile secure another lease.
LEASE_TRANSITIONS: dict[LeaseStatus, frozenset[LeaseStatus]] = {
    LeaseStatus.active: frozenset({LeaseStatus.terminated, LeaseStatus.closed}),
    LeaseStatus.terminated: frozenset({LeaseStatus.closed}),
    LeaseStatus.closed: frozenset(),
}


class Lease(Record, Audited, Base):
    """A finance lease as signed. ``terms`` holds the pure terms as text (``core.LeaseTerms`` fields),
    so the schedule can be rebuilt exactly; the instalments keep the rows that were signed, which stay
    the record even if the schedule maths is refined later."""

    __tablename__ = "lease"

    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[LeaseKind] = mapped_column(_enum(LeaseKind, "lease_kind"))
    lessor_id: Mapped[int] = mapped_column(ForeignKey("lessor.id", ondelete="RESTRICT"), index=True)
    # The operator company that leases the servers (承租人).
    lessee: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[LeaseStatus] = mapped_column(
        _enum(LeaseStatus, "lease_status"), default=LeaseStatus.active, index=True
    )
    principal: Mapped[Decimal] = mapped_column(Exact(2))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    # 万分之五 a day is the usual figure in Chinese lease contracts.
    penalty_daily_rate: Mapped[Decimal] = mapped_column(Exact(6), default=Decimal("0.0005"))
    note: Mapped[str] = mapped_column(Text, default="")

    lessor: Mapped[Lessor] = relationship(lazy="joined", innerjoin=True)
    instalments: Mapped[list[LeaseInstalment]] = relationship(
        back_populates="lease",
        order_by="LeaseInstalment.period",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    assets: Mapped[list[LeaseAsset]] = relationship(
        back_populates="lease",
        order_by="LeaseAsset.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    payments: Mapped[list[LeasePayment]] = relationship(
        back_populates="lease",
        order_by="(LeasePayment.paid_on, LeasePayment.id)",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class LeaseInstalment(Base):
    """One rent of the signed schedule. Written once at signing and never changed; audited through
    its lease, whose terms reproduce it."""

    __tablename__ = "lease_instalment"
    __table_args__ = (UniqueConstraint("lease_id", "period", name="uq_lease_instalment_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("lease.id", ondelete="CASCADE"), index=True)
    period: Mapped[int]
    due_date: Mapped[date] = mapped_column(Date)
    opening: Mapped[Decimal]
    payment: Mapped[Decimal]
    interest: Mapped[Decimal]
    principal: Mapped[Decimal]
    closing: Mapped[Decimal]
    # The residual the schedule settles with the last rent; nil on every other row.
    balloon: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))

    lease: Mapped[Lease] = relationship(back_populates="instalments")


class LeaseAsset(Record, Audited, Base):
    """A node that secures a lease. A node secures at most one active lease (checked by the service,
    under a lock on the node)."""

    __tablename__ = "lease_asset"
    __table_args__ = (UniqueConstraint("lease_id", "node_id", name="uq_lease_asset_node"),)

    lease_id: Mapped[int] = mapped_column(ForeignKey("lease.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="RESTRICT"), index=True)

    lease: Mapped[Lease] = relationship(back_populates="assets")
    node: Mapped[Node] = relationship(lazy="joined", innerjoin=True)


class LeasePayment(Record, Audited, Base):
    """Money received against a lease, split across instalments by :mod:`.ledger` when recorded.
    ``unapplied`` is what was left after every instalment was settled."""

    __tablename__ = "lease_payment"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    lease_id: Mapped[int] = mapped_column(ForeignKey("lease.id", ondelete="CASCADE"), index=True)
    paid_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal]
    reference: Mapped[str] = mapped_column(String(100), default="")
    unapplied: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))

    lease: Mapped[Lease] = relationship(back_populates="payments")
    allocations: Mapped[list[PaymentAllocation]] = relationship(
        back_populates="payment",
        order_by="PaymentAllocation.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class PaymentAllocation(Base):
    """The part of a payment that went to one instalment. Derived from the (audited) payment when it
    was recorded, and never changed: later payments are split around it."""

    __tablename__ = "lease_payment_allocation"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("lease_payment.id", ondelete="CASCADE"), index=True)
    instalment_id: Mapped[int] = mapped_column(
        ForeignKey("lease_instalment.id", ondelete="CASCADE"), index=True
    )
    penalty: Mapped[Decimal]
    interest: Mapped[Decimal]
    principal: Mapped[Decimal]
    days_late: Mapped[int] = mapped_column(default=0)

    payment: Mapped[LeasePayment] = relationship(back_populates="allocations")
    instalment: Mapped[LeaseInstalment] = relationship(lazy="joined", innerjoin=True)


class CreditLine(Record, Audited, Base):
    """A credit line (授信) a lender grants the operator: ``drawn`` never exceeds ``limit``."""

    __tablename__ = "credit_line"
    __table_args__ = (
        CheckConstraint("drawn >= 0", name="drawn_not_negative"),
        CheckConstraint("drawn <= limit_amount", name="drawn_within_limit"),
    )

    lessor_id: Mapped[int] = mapped_column(ForeignKey("lessor.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The company the line is granted to.
    borrower: Mapped[str] = mapped_column(String(200), default="")
    # "limit" is an SQL keyword; the column has a plainer name.
    limit: Mapped[Decimal] = mapped_column("limit_amount", Exact(2))
    drawn: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    rate: Mapped[Decimal] = mapped_column(Exact(6))
    expires_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    note: Mapped[str] = mapped_column(Text, default="")

    lessor: Mapped[Lessor] = relationship(lazy="joined", innerjoin=True)

    @property
    def available(self) -> Decimal:
        return self.limit - self.drawn

    @property
    def lessor_name(self) -> str:
        return self.lessor.name
