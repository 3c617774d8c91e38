"""Telemetry API: heartbeat ingest, incidents, maintenance windows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from computelease.auth.deps import Caller, Session, Staff
from computelease.kit.pagination import Page, Paging, paginate
from computelease.telemetry import service
from computelease.telemetry.api_schemas import (
    IncidentClose,
    IncidentIn,
    IncidentOut,
    MaintenanceIn,
    MaintenanceOut,
)
from computelease.telemetry.models import Incident, IncidentStatus, MaintenanceWindow
from computelease.telemetry.schemas import IngestResult

router = APIRouter(tags=["telemetry"])


@router.post(
    "/telemetry/heartbeats",
    response_model=IngestResult,
    summary="Store a node agent's batch of heartbeats (idempotent by node and seq)",
)
def ingest(
    session: Session,
    caller: Staff,
    payload: Annotated[
        dict[str, Any], Body(description="a HeartbeatBatch; see computelease.telemetry.schemas")
    ],
) -> IngestResult:
    # Taken as a plain object: parse_batch validates each heartbeat on its own, so that one bad
    # heartbeat is rejected in the answer without FastAPI refusing the whole batch.
    return service.ingest(session, caller, payload)


@router.get("/incidents", response_model=Page[IncidentOut], summary="Incidents you may see")
def list_incidents(
    session: Session,
    caller: Caller,
    paging: Paging,
    status: IncidentStatus | None = None,
    node_id: int | None = None,
) -> Page[IncidentOut]:
    stmt = service.readable_incidents(caller)
    if status is not None:
        stmt = stmt.where(Incident.status == status)
    if node_id is not None:
        stmt = stmt.where(Incident.node_id == node_id)
    items, total = paginate(session, stmt.order_by(Incident.opened_at.desc(), Incident.id.desc()), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post("/incidents", response_model=IncidentOut, status_code=201, summary="Open an incident by hand")
def open_incident(session: Session, caller: Staff, data: IncidentIn) -> Incident:
    return service.open_incident(session, caller, **data.model_dump())


@router.get("/incidents/{incident_id}", response_model=IncidentOut, summary="One incident")
def get_incident(session: Session, caller: Caller, incident_id: int) -> Incident:
    return service.get_incident(session, caller, incident_id)


@router.post("/incidents/{incident_id}/close", response_model=IncidentOut, summary="Close an incident")
def close_incident(
    session: Session, caller: Staff, incident_id: int, data: Annotated[IncidentClose | None, Body()] = None
) -> Incident:
    return service.close_incident(session, caller, incident_id, at=data.at if data else None)


@router.get("/maintenance-windows", response_model=Page[MaintenanceOut], summary="Maintenance windows")
def list_maintenance(
    session: Session, caller: Caller, paging: Paging, node_id: int | None = None
) -> Page[MaintenanceOut]:
    stmt = service.readable_maintenance(caller)
    if node_id is not None:
        stmt = stmt.where(MaintenanceWindow.node_id == node_id)
    order = (MaintenanceWindow.starts_at.desc(), MaintenanceWindow.id.desc())
    items, total = paginate(session, stmt.order_by(*order), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/maintenance-windows", response_model=MaintenanceOut, status_code=201, summary="Announce maintenance"
)
def announce_maintenance(session: Session, caller: Staff, data: MaintenanceIn) -> MaintenanceWindow:
    return service.announce_maintenance(session, caller, **data.model_dump())
