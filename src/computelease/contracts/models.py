from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.contracts.core import CapacityUnit, ContractStatus, Placement, Pricing
from computelease.db import Base, Exact, Record
from computelease.kit.time import utcnow


class Segment(StrEnum):
    model_maker = "model_maker"
    ai_cloud = "ai_cloud"
    enterprise = "enterprise"
    government_center = "government_center"
    research = "research"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=30, validate_strings=True)


class Customer(Record, Audited, Base):
    __tablename__ = "customer"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    segment: Mapped[Segment] = mapped_column(
        Enum(Segment, name="segment", native_enum=False, length=30, validate_strings=True)
    )
    credit_limit: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # 统一社会信用代码 (or an older taxpayer number): printed on the fapiao; none for a foreign buyer.
    tax_id: Mapped[str | None] = mapped_column(String(20), default=None)


class SlaPolicy(Record, Audited, Base):
    """Reusable SLA terms. Never edited once created: signed contracts refer to them, and a change
    would rewrite what was agreed; make a new policy instead."""

    __tablename__ = "sla_policy"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    target_pct: Mapped[Decimal] = mapped_column(Exact(4))
    # [{"below": "99.99", "credit_pct": "10"}, ...]: thresholds falling, credits rising, as strings so
    # that no percentage passes through a float (checked by core.validate_sla_policy)
    credit_tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cap_pct: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("100.00"))
    maintenance_allowance_hours: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    notice_hours: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("72.00"))
    description: Mapped[str] = mapped_column(Text, default="")


class Contract(Record, Audited, Base):
    """A capacity contract. Terms change only in draft; ``total_value``, ``billable_gpus`` and
    ``billable_pflops`` are derived from the terms (contracts.core.evaluate) whenever they change, so
    they stay as signed even if the catalog's figures change later."""

    __tablename__ = "contract"
    __table_args__ = (Index("ix_contract_period", "starts_at", "ends_at"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[ContractStatus] = mapped_column(
        _enum(ContractStatus, "contract_status"), default=ContractStatus.draft, index=True
    )
    capacity_unit: Mapped[CapacityUnit] = mapped_column(_enum(CapacityUnit, "capacity_unit"))
    capacity: Mapped[Decimal] = mapped_column(Exact(4))
    precision: Mapped[str | None] = mapped_column(String(8))
    accelerator_model: Mapped[str | None] = mapped_column(String(64))
    min_memory_gb: Mapped[Decimal | None] = mapped_column(Exact(2))
    min_tflops: Mapped[Decimal | None] = mapped_column(Exact(3))
    min_tflops_precision: Mapped[str | None] = mapped_column(String(8))
    placement: Mapped[Placement] = mapped_column(_enum(Placement, "placement"), default=Placement.any)
    # Dates in the contract's time zone, both inclusive; starts_at/ends_at are the same term in UTC,
    # [local midnight of start_date, local midnight after end_date), for queries by instant.
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    pricing: Mapped[Pricing] = mapped_column(_enum(Pricing, "pricing"))
    price: Mapped[Decimal] = mapped_column(Exact(4))
    om_monthly_fee: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    deposit: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    prepayment: Mapped[Decimal] = mapped_column(Exact(2), default=Decimal("0.00"))
    payment_terms_days: Mapped[int] = mapped_column(default=30)
    # GPU-hours allocated beyond the contract are billed at this rate; None: not billed.
    on_demand_rate: Mapped[Decimal | None] = mapped_column(Exact(4))
    # Chinese contracts quote prices with VAT included (含税价); False: VAT is added on top.
    prices_include_vat: Mapped[bool] = mapped_column(default=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    sla_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policy.id", ondelete="RESTRICT"), index=True
    )
    notes: Mapped[str] = mapped_column(Text, default="")
    billable_gpus: Mapped[int | None] = mapped_column()
    billable_pflops: Mapped[Decimal | None] = mapped_column(Exact(6))
    total_value: Mapped[Decimal] = mapped_column(Exact(2))

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    sla_policy: Mapped[SlaPolicy | None] = relationship(lazy="joined")
    events: Mapped[list[ContractEvent]] = relationship(
        back_populates="contract", order_by="(ContractEvent.at, ContractEvent.id)", lazy="selectin"
    )


class ContractEvent(Base):
    """One status change of a contract (creation included, from ``None``): the timeline. Append-only,
    and a log in itself, so not audited again."""

    __tablename__ = "contract_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[ContractStatus | None] = mapped_column(_enum(ContractStatus, "contract_status"))
    to_status: Mapped[ContractStatus] = mapped_column(_enum(ContractStatus, "contract_status"))
    at: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    contract: Mapped[Contract] = relationship(back_populates="events")
