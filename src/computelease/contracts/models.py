from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from computelease.audit.models import Audited
from computelease.db import Base, Record


class Segment(StrEnum):
    model_maker = "model_maker"
    ai_cloud = "ai_cloud"
    enterprise = "enterprise"
    government_center = "government_center"
    research = "research"


class Customer(Record, Audited, Base):
    __tablename__ = "customer"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    segment: Mapped[Segment] = mapped_column(
        Enum(Segment, name="segment", native_enum=False, length=30, validate_strings=True)
    )
    credit_limit: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
