"""Allocation API: allocations, planning, replacements, occupancy."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from computelease.allocation import service
from computelease.allocation.models import Replacement
from computelease.allocation.schemas import (
    AllocationOut,
    OccupancyOut,
    OccupancyRowOut,
    PlanIn,
    PlanOut,
    ReplacementOut,
)
from computelease.auth.deps import Caller, Session, Staff
from computelease.kit.pagination import Page, Paging, paginate
from computelease.kit.time import as_utc, utcnow

router = APIRouter(tags=["allocation"])


class GroupBy(StrEnum):
    site = "site"
    model = "model"
    fabric = "fabric"
    customer = "customer"
    contract = "contract"


@router.get("/allocations", response_model=Page[AllocationOut], summary="Allocations you may see")
def list_allocations(
    session: Session,
    caller: Caller,
    paging: Paging,
    contract_id: int | None = None,
    node_id: int | None = None,
    active_at: Annotated[
        AwareDatetime | None, Query(description="only those running at this instant")
    ] = None,
) -> Page[AllocationOut]:
    stmt = service.filter_allocations(
        service.readable_allocations(caller), contract_id=contract_id, node_id=node_id, active_at=active_at
    )
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post("/allocations/plan", response_model=PlanOut, summary="Allocate signed and active contracts")
def plan(session: Session, caller: Staff, data: PlanIn) -> service.PlanResult:
    return service.plan(
        session,
        caller,
        as_of=data.as_of,
        contract_ids=data.contract_ids,
        rebalance=data.rebalance,
        dry_run=data.dry_run,
    )


@router.get("/replacements", response_model=Page[ReplacementOut], summary="Replacements of faulty nodes")
def list_replacements(
    session: Session, caller: Caller, paging: Paging, contract_id: int | None = None
) -> Page[ReplacementOut]:
    stmt = service.readable_replacements(caller)
    if contract_id is not None:
        stmt = stmt.where(Replacement.contract_id == contract_id)
    items, total = paginate(session, stmt.order_by(Replacement.at, Replacement.id), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/occupancy", response_model=OccupancyOut, summary="Occupancy (出租率) of a period per group")
def get_occupancy(
    session: Session,
    caller: Caller,
    start: Annotated[datetime | None, Query(description="default: 30 days before end")] = None,
    end: Annotated[datetime | None, Query(description="default: now")] = None,
    group_by: Annotated[
        GroupBy | None, Query(description="default: site for staff, contract for customers")
    ] = None,
) -> OccupancyOut:
    end = _utc(end) if end is not None else utcnow()
    start = _utc(start) if start is not None else end - timedelta(days=30)
    lines = service.occupancy(session, caller, start, end, group_by.value if group_by else None)
    group = group_by.value if group_by else ("site" if caller.is_staff else "contract")
    return OccupancyOut(
        start=start,
        end=end,
        group_by=group,
        rows=[OccupancyRowOut.model_validate(line) for line in lines],
    )


def _utc(value: datetime) -> datetime:
    # A bare date or naive time from a query string is read as UTC.
    return as_utc(value)
