from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from computelease.audit.models import Audited
from computelease.db import Base, Record


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
