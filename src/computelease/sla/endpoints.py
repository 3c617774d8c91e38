"""SLA API: a contract's month, measured from delivered compute."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from computelease.auth.deps import Caller, Session
from computelease.sla import service

router = APIRouter(tags=["sla"])


@router.get("/contracts/{contract_id}/sla", summary="A contract's SLA for a month, with evidence")
def get_sla(
    session: Session,
    caller: Caller,
    contract_id: int,
    period: Annotated[
        str | None,
        Query(
            pattern=r"^\d{4}-\d{2}$", description="YYYY-MM in the contract's time zone; default: this month"
        ),
    ] = None,
) -> dict[str, Any]:
    return service.report(session, caller, contract_id, period).to_dict()
