"""Stored telemetry: heartbeats, compact GPU samples, GPU health intervals, incidents, maintenance.

Samples keep only what health and the SLA look at (the full wire format stays with the agent's spool);
a node's 8 GPUs at one heartbeat every 30 s are ~23k rows a day, so every column counts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.db import Base, Record
from computelease.fleet.models import Node
from computelease.kit.time import utcnow
from computelease.telemetry.health import Health

HealthType = Enum(Health, name="gpu_health", native_enum=False, length=20, validate_strings=True)


class IncidentStatus(StrEnum):
    open = "open"
    closed = "closed"


class IncidentSource(StrEnum):
    auto = "auto"  # opened and closed by health changes
    manual = "manual"  # opened by an operator


class Heartbeat(Base):
    """One heartbeat of one node, placed in time by ``at`` (the node's clock), not by arrival."""

    __tablename__ = "heartbeat"
    __table_args__ = (
        # The idempotency key: a resent heartbeat hits this and counts as a duplicate.
        UniqueConstraint("node_id", "seq", name="uq_heartbeat_node_seq"),
        Index("ix_heartbeat_node_at", "node_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    received_at: Mapped[datetime]
    interval_s: Mapped[int] = mapped_column(Integer)


class GpuSample(Base):
    """The health-relevant readings of one GPU in one heartbeat; None is unknown or unsupported."""

    __tablename__ = "gpu_sample"
    __table_args__ = (UniqueConstraint("heartbeat_id", "gpu_index", name="uq_gpu_sample_heartbeat_gpu"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    heartbeat_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("heartbeat.id", ondelete="CASCADE")
    )
    gpu_index: Mapped[int] = mapped_column(SmallInteger)
    gpu_uuid: Mapped[str | None] = mapped_column(String(100))
    xids: Mapped[list[int] | None] = mapped_column(JSON)
    ecc_dbe_volatile: Mapped[int | None] = mapped_column(BigInteger)
    ecc_dbe_aggregate: Mapped[int | None] = mapped_column(BigInteger)
    remap_pending: Mapped[bool | None] = mapped_column(Boolean)
    remap_failed: Mapped[bool | None] = mapped_column(Boolean)
    lost: Mapped[bool | None] = mapped_column(Boolean)
    # Measurements, not money: floats are what the card reports.
    utilization_pct: Mapped[float | None] = mapped_column(Float)
    power_w: Mapped[float | None] = mapped_column(Float)
    temperature_c: Mapped[float | None] = mapped_column(Float)


class NodeTelemetry(Base):
    """Per node: the newest heartbeat and whether the sweep found it down. Keeps the sweep and the
    'previous heartbeat' lookup to one row instead of a scan of the heartbeat table."""

    __tablename__ = "node_telemetry"

    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), primary_key=True)
    last_heartbeat_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime]
    interval_s: Mapped[int] = mapped_column(Integer)
    down: Mapped[bool] = mapped_column(Boolean, default=False)


class GpuHealthInterval(Base):
    """GPU ``gpu_index`` of ``node_id`` was in ``state`` over ``[start_at, end_at)``; open while
    ``end_at`` is None. The record SLA reads its unhealthy and down time from."""

    __tablename__ = "gpu_health_interval"
    __table_args__ = (
        Index("ix_gpu_health_interval_node_gpu", "node_id", "gpu_index", "start_at"),
        Index("ix_gpu_health_interval_open", "node_id", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    gpu_index: Mapped[int] = mapped_column(SmallInteger)
    gpu_uuid: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[Health] = mapped_column(HealthType)
    reasons: Mapped[str] = mapped_column(String(500), default="")
    start_at: Mapped[datetime]
    end_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id", ondelete="SET NULL"))


class Incident(Record, Audited, Base):
    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_node_status", "node_id", "status"),)

    node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id", ondelete="RESTRICT"))
    source: Mapped[IncidentSource] = mapped_column(
        Enum(IncidentSource, name="incident_source", native_enum=False, length=20, validate_strings=True)
    )
    status: Mapped[IncidentStatus] = mapped_column(
        Enum(IncidentStatus, name="incident_status", native_enum=False, length=20, validate_strings=True)
    )
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(1000), default="")
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    opened_by: Mapped[str] = mapped_column(String(200), default="")

    node: Mapped[Node | None] = relationship(lazy="joined")
    gpus: Mapped[list[IncidentGpu]] = relationship(
        back_populates="incident", order_by="IncidentGpu.gpu_index", lazy="selectin", cascade="all"
    )

    @property
    def node_serial(self) -> str | None:
        return self.node.serial if self.node is not None else None


class IncidentGpu(Base):
    __tablename__ = "incident_gpu"
    __table_args__ = (UniqueConstraint("incident_id", "gpu_index", name="uq_incident_gpu_incident_gpu"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    gpu_index: Mapped[int] = mapped_column(SmallInteger)
    gpu_uuid: Mapped[str | None] = mapped_column(String(100))
    reasons: Mapped[str] = mapped_column(String(500), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="gpus")


class MaintenanceWindow(Record, Audited, Base):
    """Planned work on one node (or, with ``node_id`` None, on every node), announced at
    ``notice_given_at``: the SLA excludes it within the policy's allowance and notice."""

    __tablename__ = "maintenance_window"

    node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    notice_given_at: Mapped[datetime]

    node: Mapped[Node | None] = relationship(lazy="joined")

    @property
    def node_serial(self) -> str | None:
        return self.node.serial if self.node is not None else None
