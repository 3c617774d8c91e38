"""Demo allocations: the demo contracts placed on the demo fleet by the allocator itself, so the
occupancy page and the dashboard show real figures. Runs after the fleet and contracts seeders."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from computelease.allocation import service
from computelease.auth.core import SYSTEM
from computelease.kit.time import as_utc


def seed(session: Session, world: Any) -> None:
    """Plans each signed or active demo contract as of its start, earliest first, so that a contract
    running since last year has a year of history; leaves ``world.extra["allocation"]`` = {"plans":
    [PlanResult, ...]}."""
    contracts = list(world.extra["contracts"]["contracts"].values())
    plans = []
    for contract in sorted(contracts, key=lambda c: (c.starts_at, c.id)):
        if contract.status not in service.PLANNED_STATUSES:
            continue
        plans.append(
            service.plan(session, SYSTEM, as_of=as_utc(contract.starts_at), contract_ids=[contract.id])
        )
    world.extra["allocation"] = {"plans": plans}
