"""Fleet API: sites and racks, nodes, their state changes and history, CSV import and export."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Select

from computelease.auth.core import Principal
from computelease.auth.deps import Caller, Session, Staff
from computelease.errors import AppError, Unprocessable
from computelease.fleet import service
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node, Site
from computelease.fleet.schemas import (
    ImportOut,
    NodeEventOut,
    NodeIn,
    NodeOut,
    NodePatch,
    RackIn,
    RackOut,
    SiteIn,
    SiteOut,
    SitePatch,
    StateIntervalOut,
    TransitionIn,
)
from computelease.kit.pagination import Page, Paging, paginate
from computelease.kit.time import utcnow

router = APIRouter(tags=["fleet"])

MAX_UPLOAD = 20 * 1024 * 1024  # ~100k node rows; a bigger fleet imports in parts


class TooLarge(AppError):
    status = 413


# ---------------------------------------------------------------------------------------- sites


@router.get("/sites", response_model=Page[SiteOut], summary="Sites you may see")
def list_sites(session: Session, caller: Caller, paging: Paging) -> Page[SiteOut]:
    items, total = paginate(session, service.readable_sites(caller).order_by(Site.code), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post("/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED)
def create_site(session: Session, caller: Staff, data: SiteIn) -> Site:
    return service.create_site(session, data)


@router.get("/sites/{site_id}", response_model=SiteOut)
def get_site(session: Session, caller: Caller, site_id: int) -> Site:
    return service.get_site(session, caller, site_id)


@router.patch("/sites/{site_id}", response_model=SiteOut)
def update_site(session: Session, caller: Staff, site_id: int, patch: SitePatch) -> Site:
    return service.update_site(session, caller, site_id, patch)


@router.delete("/sites/{site_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_site(session: Session, caller: Staff, site_id: int) -> None:
    service.delete_site(session, caller, site_id)


@router.post("/sites/{site_id}/racks", response_model=RackOut, status_code=status.HTTP_201_CREATED)
def add_rack(session: Session, caller: Staff, site_id: int, data: RackIn) -> object:
    return service.add_rack(session, caller, site_id, data)


# ---------------------------------------------------------------------------------------- nodes

SiteFilter = Annotated[int | None, Query(description="only nodes of this site")]
ModelFilter = Annotated[str | None, Query(description="accelerator id, e.g. nvidia-h100-sxm")]
FabricFilter = Annotated[str | None, Query(description="NVLink/InfiniBand domain")]
StateFilter = Annotated[list[NodeState] | None, Query(description="one or more states")]
SkuFilter = Annotated[str | None, Query(description="server SKU id")]
SerialFilter = Annotated[str | None, Query(description="part of the serial")]
CustomerFilter = Annotated[int | None, Query(description="nodes serving this customer's contracts now")]


def _filtered(
    caller: Principal,
    site_id: int | None,
    model: str | None,
    fabric: str | None,
    state: list[NodeState] | None,
    sku_id: str | None,
    serial: str | None,
    customer_id: int | None = None,
) -> Select[tuple[Node]]:
    return service.filter_nodes(
        service.readable_nodes(caller),
        site_id=site_id,
        model=model,
        fabric=fabric,
        states=state,
        sku_id=sku_id,
        serial=serial,
        customer_id=customer_id,
    )


@router.get("/nodes", response_model=Page[NodeOut], summary="Nodes you may see, filtered")
def list_nodes(
    session: Session,
    caller: Caller,
    paging: Paging,
    site_id: SiteFilter = None,
    model: ModelFilter = None,
    fabric: FabricFilter = None,
    state: StateFilter = None,
    sku_id: SkuFilter = None,
    serial: SerialFilter = None,
    customer_id: CustomerFilter = None,
) -> Page[NodeOut]:
    stmt = _filtered(caller, site_id, model, fabric, state, sku_id, serial, customer_id).order_by(Node.serial)
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post("/nodes", response_model=NodeOut, status_code=status.HTTP_201_CREATED)
def create_node(session: Session, caller: Staff, data: NodeIn) -> Node:
    """The node's GPUs are created from its SKU (GPUs per node); give UUIDs and serials where known."""
    return service.create_node(session, data)


class StateCountOut(BaseModel):
    state: NodeState
    nodes: int
    gpus: int


@router.get("/nodes/summary", response_model=list[StateCountOut], summary="Nodes and GPUs per state")
def nodes_summary(
    session: Session,
    caller: Caller,
    site_id: SiteFilter = None,
    model: ModelFilter = None,
    fabric: FabricFilter = None,
) -> list[service.StateCount]:
    return service.state_counts(session, caller, _filtered(caller, site_id, model, fabric, None, None, None))


@router.get(
    "/nodes/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the nodes as CSV (UTF-8 with BOM)"}},
    summary="Nodes as CSV, the columns `node import` reads",
)
def export_nodes(
    session: Session,
    caller: Caller,
    site_id: SiteFilter = None,
    model: ModelFilter = None,
    fabric: FabricFilter = None,
    state: StateFilter = None,
    sku_id: SkuFilter = None,
    serial: SerialFilter = None,
    customer_id: CustomerFilter = None,
) -> Response:
    data = service.export_nodes(
        session, caller, _filtered(caller, site_id, model, fabric, state, sku_id, serial, customer_id)
    )
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="nodes.csv"'},
    )


@router.post("/nodes/import", response_model=ImportOut, summary="Add the nodes of a CSV file, all or none")
def import_nodes(
    session: Session,
    caller: Staff,
    response: Response,
    file: Annotated[UploadFile, File(description="CSV with the columns `GET /nodes/export` writes")],
    dry_run: Annotated[bool, Query(description="check the file, write nothing")] = False,
) -> ImportOut:
    """A file with bad rows writes nothing; the 422 problem lists every bad row (`errors`: line, message)."""
    data = file.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise TooLarge(f"the file is over {MAX_UPLOAD // (1024 * 1024)} MB; split it and import the parts")
    result = service.import_nodes(session, data, dry_run=dry_run)
    response.status_code = status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED
    return ImportOut(
        created=len(result.nodes),
        dry_run=dry_run,
        racks_created=result.racks_created,
        nodes=[n.id for n in result.nodes],
    )


@router.get("/nodes/{node_id}", response_model=NodeOut)
def get_node(session: Session, caller: Caller, node_id: int) -> Node:
    return service.get_node(session, caller, node_id)


@router.patch("/nodes/{node_id}", response_model=NodeOut)
def update_node(session: Session, caller: Staff, node_id: int, patch: NodePatch) -> Node:
    return service.update_node(session, caller, node_id, patch)


@router.delete("/nodes/{node_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_node(session: Session, caller: Staff, node_id: int) -> None:
    service.delete_node(session, caller, node_id)


@router.get("/nodes/{node_id}/events", response_model=list[NodeEventOut], summary="The node's state history")
def node_events(session: Session, caller: Caller, node_id: int) -> list:
    return service.events(session, caller, node_id)


@router.post("/nodes/{node_id}/transitions", response_model=NodeEventOut, status_code=status.HTTP_201_CREATED)
def transition(session: Session, caller: Staff, node_id: int, data: TransitionIn) -> object:
    """Move the node to another state. A move the lifecycle forbids is a 409 whose problem names the
    current state, the requested one and the allowed ones (`current`, `requested`, `allowed`)."""
    return service.transition(session, caller, node_id, data.to, at=data.at, reason=data.reason)


@router.get(
    "/nodes/{node_id}/intervals",
    response_model=list[StateIntervalOut],
    summary="The node's states over a period (default: the last 30 days)",
)
def node_intervals(
    session: Session,
    caller: Caller,
    node_id: int,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
) -> list:
    end = end or utcnow()
    start = start or end - timedelta(days=30)
    if end < start:
        raise Unprocessable("end must not be before start")
    return service.node_intervals(session, caller, node_id, start, end)
