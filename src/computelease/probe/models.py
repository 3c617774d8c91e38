"""Stored acceptance runs: every report `computelease probe --post` sends, kept as history.

A run is append-only, like a node's state events: it is the evidence a node was accepted on and the
measurement the SLA's "degraded" rule reads, so it is never edited. Who posted it is on the row
(``actor``), which is why it is not ``Audited`` (the audit log would repeat each whole report).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.db import Base, Exact, Record
from computelease.fleet.core import NodeState
from computelease.fleet.models import NodeStateType
from computelease.probe.schemas import Verdict

# Stored by value ("pass"), as the report writes it, not by member name ("PASS").
VerdictType = Enum(
    Verdict,
    name="probe_verdict",
    native_enum=False,
    length=10,
    validate_strings=True,
    values_callable=lambda enum: [m.value for m in enum],
)


class AcceptanceRun(Record, Base):
    __tablename__ = "acceptance_run"
    __table_args__ = (Index("ix_acceptance_run_node_finished", "node_id", "finished_at"),)

    # CASCADE only matters for an ordered node deleted as a mistake; every other node keeps its rows.
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    received_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    mode: Mapped[str] = mapped_column(String(10))
    verdict: Mapped[Verdict] = mapped_column(VerdictType, index=True)
    exit_code: Mapped[int]
    schema_version: Mapped[int]
    summary: Mapped[str] = mapped_column(Text, default="")
    # The stack the figures were measured on, copied out of the report so that runs can be compared
    # (a slow bf16 figure on an old CUDA stack is not a slow card) without reading the JSON.
    hostname: Mapped[str] = mapped_column(String(255), default="")
    driver: Mapped[str | None] = mapped_column(String(50))
    cuda_driver: Mapped[str | None] = mapped_column(String(50))
    cuda_runtime: Mapped[str | None] = mapped_column(String(50))
    torch: Mapped[str | None] = mapped_column(String(100))
    computelease: Mapped[str | None] = mapped_column(String(50))
    # The node's state when the report arrived and after it was handled: says whether this run accepted it.
    state_before: Mapped[NodeState] = mapped_column(NodeStateType)
    state_after: Mapped[NodeState] = mapped_column(NodeStateType)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(200))

    gpus: Mapped[list[AcceptanceGpu]] = relationship(
        back_populates="run",
        order_by="AcceptanceGpu.index",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class AcceptanceGpu(Record, Base):
    """One GPU of a run: the figures the SLA reads, so they are queryable without the JSON."""

    __tablename__ = "acceptance_gpu"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_acceptance_gpu_run_index"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("acceptance_run.id", ondelete="CASCADE"), index=True)
    # The probe's CUDA index; CUDA and NVML number GPUs differently, so it is not the fleet's index.
    index: Mapped[int]
    uuid: Mapped[str | None] = mapped_column(String(64), index=True)
    # Matched by UUID only (indices differ between CUDA and NVML); null when the fleet does not know it.
    gpu_id: Mapped[int | None] = mapped_column(ForeignKey("gpu.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(64))
    bf16_tflops: Mapped[Decimal | None] = mapped_column(Exact(2))
    rating_tflops: Mapped[Decimal | None] = mapped_column(Exact(2))
    sla_share: Mapped[Decimal | None] = mapped_column(Exact(4))
    verdict: Mapped[Verdict] = mapped_column(VerdictType)

    run: Mapped[AcceptanceRun] = relationship(back_populates="gpus")
