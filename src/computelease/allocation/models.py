"""Which node serves which contract, when; and every replacement of a faulty node."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.contracts.models import Contract
from computelease.db import Base, Record
from computelease.fleet.models import Node


class Allocation(Record, Audited, Base):
    """Node ``node_id`` serves contract ``contract_id`` over ``[start_at, end_at)`` (UTC)."""

    __tablename__ = "allocation"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_allocation_node_period", "node_id", "start_at", "end_at"),
        Index("ix_allocation_contract_period", "contract_id", "start_at", "end_at"),
    )

    # RESTRICT: an allocation is the record invoices and SLA are computed from; it outlives nothing.
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="RESTRICT"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]

    node: Mapped[Node] = relationship(lazy="joined", innerjoin=True)
    contract: Mapped[Contract] = relationship(lazy="joined", innerjoin=True)

    @property
    def node_serial(self) -> str:
        return self.node.serial

    @property
    def contract_name(self) -> str:
        return self.contract.name


class Replacement(Record, Base):
    """Contract ``contract_id`` moved from ``old_node_id`` to ``new_node_id`` at ``at``. Append-only
    (the allocations it changed are audited), so not audited itself."""

    __tablename__ = "replacement"

    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"), index=True)
    old_node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="RESTRICT"), index=True)
    new_node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="RESTRICT"), index=True)
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500), default="")

    contract: Mapped[Contract] = relationship(lazy="joined", innerjoin=True)
    old_node: Mapped[Node] = relationship(foreign_keys=[old_node_id], lazy="joined", innerjoin=True)
    new_node: Mapped[Node] = relationship(foreign_keys=[new_node_id], lazy="joined", innerjoin=True)
