"""Telemetry API: heartbeat ingest, a node's live health, incidents, maintenance windows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from starlette.concurrency import run_in_threadpool

from computelease.auth.deps import Caller, Session, Staff
from computelease.kit.pagination import Page, Paging, paginate
from computelease.telemetry import service
from computelease.telemetry.api_schemas import (
    IncidentClose,
    IncidentIn,
    IncidentOut,
    MaintenanceIn,
    MaintenanceOut,
    NodeHealthOut,
)
from computelease.telemetry.models import Incident, IncidentStatus, MaintenanceWindow
from computelease.telemetry.schemas import IngestResult, RelayResult

router = APIRouter(tags=["telemetry"])


MAX_BODY = 32 * 1024 * 1024  # bytes; MAX_RELAY_HEARTBEATS 8-GPU heartbeats are about 13 MB of JSON

_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": 'one node\'s HeartbeatBatch, or a relay request {"batches": [HeartbeatBatch, '
                "…]}; see computelease.telemetry.schemas",
            }
        }
    },
}


@router.post(
    "/telemetry/heartbeats",
    response_model=IngestResult | RelayResult,
    summary="Store heartbeats: one node agent's batch, or a relay's batches of many nodes "
    "(idempotent by node and seq)",
    openapi_extra={"requestBody": _BODY},
)
async def ingest(request: Request, session: Session, caller: Staff) -> Response:
    # The body is taken as bytes: a valid one is validated in one pass straight from JSON, and any other
    # heartbeat by heartbeat, so that one bad heartbeat (or node batch) is rejected in the answer without
    # refusing the rest. The work itself is synchronous database work, so it runs in the thread pool.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise service.RequestTooLarge(f"the body has {declared} bytes; at most {MAX_BODY} per request")
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise service.RequestTooLarge(
                f"the body is over {MAX_BODY} bytes; send fewer heartbeats per request"
            )
        parts.append(chunk)
    result = await run_in_threadpool(service.ingest_body, session, caller, b"".join(parts))
    return Response(result.model_dump_json(), media_type="application/json")


@router.get(
    "/nodes/{node_id}/health", response_model=NodeHealthOut, summary="A node's GPUs now: health, readings"
)
def node_health(session: Session, caller: Caller, node_id: int) -> service.NodeNow:
    return service.node_health(session, caller, node_id)


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
