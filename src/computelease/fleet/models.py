"""Sites, racks, nodes, their GPUs and their state history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.db import Base, Exact, Record
from computelease.fleet.core import NodeState


class SiteKind(StrEnum):
    own_center = "own_center"  # self-built AI compute centre (自建智算中心)
    colocation = "colocation"  # racks rented in a third-party IDC (第三方IDC机房)


NodeStateType = Enum(NodeState, name="node_state", native_enum=False, length=20, validate_strings=True)


class Site(Record, Audited, Base):
    __tablename__ = "site"

    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[SiteKind] = mapped_column(
        Enum(SiteKind, name="site_kind", native_enum=False, length=20, validate_strings=True)
    )
    city: Mapped[str] = mapped_column(String(100))
    pue: Mapped[Decimal] = mapped_column(Exact(3))
    # Tariffs are quoted to the 0.0001 yuan per kWh.
    power_price_per_kwh: Mapped[Decimal] = mapped_column(Exact(4))
    rack_price_per_month: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    note: Mapped[str] = mapped_column(String(500), default="")

    racks: Mapped[list[Rack]] = relationship(
        back_populates="site", order_by="Rack.name", lazy="selectin", cascade="all, delete-orphan"
    )


class Rack(Record, Audited, Base):
    __tablename__ = "rack"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_rack_site_name"),)

    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    power_kw: Mapped[Decimal | None] = mapped_column(Exact(2))

    site: Mapped[Site] = relationship(back_populates="racks")


class Node(Record, Audited, Base):
    """A GPU server. ``state``/``state_since`` repeat its latest :class:`NodeEvent` for listing."""

    __tablename__ = "node"
    __table_args__ = (CheckConstraint("purchase_cost >= 0", name="purchase_cost_not_negative"),)

    serial: Mapped[str] = mapped_column(String(100), unique=True)
    sku_id: Mapped[str] = mapped_column(String(64), index=True)
    # The SKU's accelerator, kept on the row so fleets filter and group by model in SQL.
    model: Mapped[str] = mapped_column(String(64), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    rack_id: Mapped[int | None] = mapped_column(ForeignKey("rack.id"), index=True)
    fabric: Mapped[str | None] = mapped_column(String(100), index=True)
    state: Mapped[NodeState] = mapped_column(NodeStateType, index=True)
    state_since: Mapped[datetime]
    purchase_cost: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    purchase_date: Mapped[date]
    supplier: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(500), default="")

    site: Mapped[Site] = relationship(lazy="selectin")
    rack: Mapped[Rack | None] = relationship(lazy="selectin")
    gpus: Mapped[list[Gpu]] = relationship(
        back_populates="node", order_by="Gpu.index", lazy="selectin", cascade="all, delete-orphan"
    )
    events: Mapped[list[NodeEvent]] = relationship(
        back_populates="node",
        order_by="(NodeEvent.at, NodeEvent.id)",
        lazy="raise_on_sql",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def site_code(self) -> str:
        return self.site.code

    @property
    def rack_name(self) -> str | None:
        return self.rack.name if self.rack is not None else None

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)


class Gpu(Record, Audited, Base):
    __tablename__ = "gpu"
    __table_args__ = (UniqueConstraint("node_id", "index", name="uq_gpu_node_index"),)

    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    index: Mapped[int]
    # Unknown until someone reads them off the card (nvidia-smi); unique once known.
    uuid: Mapped[str | None] = mapped_column(String(64), unique=True)
    serial: Mapped[str | None] = mapped_column(String(100), unique=True)

    node: Mapped[Node] = relationship(back_populates="gpus")


class NodeEvent(Record, Base):
    """One state change. Append-only: the history is the record occupancy and SLA are computed from,
    so it is never edited (and needs no audit entries of its own)."""

    __tablename__ = "node_event"
    __table_args__ = (Index("ix_node_event_node_at", "node_id", "at"),)

    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    from_state: Mapped[NodeState | None] = mapped_column(NodeStateType)
    to_state: Mapped[NodeState] = mapped_column(NodeStateType)
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(200))

    node: Mapped[Node] = relationship(back_populates="events")
