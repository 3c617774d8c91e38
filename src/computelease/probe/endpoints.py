"""Acceptance API: the probe stores its report on the node (`computelease probe --post`), and staff and
whoever may see the node read the history.

The node is named by ``{node_ref}``: its serial (what the probe sends, percent-encoded) or its numeric
id. The parameter is not ``node_id`` because it is not always an integer; fleet's ``/nodes/{node_id}``
routes have no ``/acceptance`` segment, so the two never match the same path. It is a ``path``
parameter because a serial may hold a ``/``: the server sees the probe's ``%2F`` already decoded.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from computelease.auth.deps import Caller, Session, Staff
from computelease.fleet.core import NodeState
from computelease.kit.pagination import Page, Paging, paginate
from computelease.probe import service
from computelease.probe.models import AcceptanceRun
from computelease.probe.schemas import ProbeReport, Verdict

router = APIRouter(tags=["acceptance"])


class AcceptanceGpuOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int = Field(description="the probe's CUDA index (not the fleet's NVML index)")
    uuid: str | None
    gpu_id: int | None = Field(description="the fleet GPU with this UUID on this node; null when unknown")
    name: str
    model: str | None
    bf16_tflops: Decimal | None
    rating_tflops: Decimal | None
    sla_share: Decimal | None = Field(description="bf16_tflops / rating_tflops; the SLA uses min(1, share)")
    verdict: Verdict


class AcceptanceRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    received_at: datetime
    started_at: datetime
    finished_at: datetime
    mode: str
    verdict: Verdict
    exit_code: int
    summary: str
    hostname: str
    driver: str | None
    cuda_driver: str | None
    cuda_runtime: str | None
    torch: str | None
    computelease: str | None
    state_before: NodeState
    state_after: NodeState
    warnings: list[str]
    actor: str
    gpus: list[AcceptanceGpuOut]


class AcceptanceRunFull(AcceptanceRunOut):
    report: dict[str, Any] = Field(description="the report as the probe sent it (ProbeReport)")


class AcceptanceStored(AcceptanceRunOut):
    transitioned: bool = Field(description="true when this run moved the node from delivered to accepted")
    notes: list[str] = Field(description="what happened to the node's state, and why")


@router.post(
    "/nodes/{node_ref:path}/acceptance",
    response_model=AcceptanceStored,
    status_code=status.HTTP_201_CREATED,
    summary="Store a probe report as an acceptance run of the node (serial or id)",
)
def post_acceptance(session: Session, caller: Staff, node_ref: str, report: ProbeReport) -> AcceptanceStored:
    """Every run is kept. A **pass** on a node in state `delivered` moves it to `accepted`; nothing else
    changes a node's state (a fail on a node in service is reported in `notes`, and an operator decides).
    GPUs of the report the node does not hold (by UUID) are listed in `warnings`, not refused. A report
    whose `node` names another serial is a 422."""
    stored = service.store_report(session, caller, node_ref, report)
    out = AcceptanceRunOut.model_validate(stored.run)
    return AcceptanceStored(**out.model_dump(), transitioned=stored.transitioned, notes=stored.notes)


@router.get(
    "/nodes/{node_ref:path}/acceptance",
    response_model=Page[AcceptanceRunOut],
    summary="The node's acceptance runs, newest first",
)
def list_acceptance(
    session: Session, caller: Caller, node_ref: str, paging: Paging
) -> Page[AcceptanceRunOut]:
    node = service.resolve_node(session, caller, node_ref)
    stmt = (
        service.readable_runs(caller)
        .where(AcceptanceRun.node_id == node.id)
        .order_by(AcceptanceRun.finished_at.desc(), AcceptanceRun.id.desc())
    )
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.get(
    "/acceptance/{run_id}", response_model=AcceptanceRunFull, summary="One acceptance run, with its report"
)
def get_acceptance(session: Session, caller: Caller, run_id: int) -> AcceptanceRun:
    return service.get_run(session, caller, run_id)
