"""A contract that ends or is terminated gives its nodes back from that moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from tests.sla.conftest import served_contract

from computelease.allocation import service
from computelease.allocation.models import Allocation
from computelease.auth.core import SYSTEM
from computelease.contracts import service as contracts
from computelease.contracts.schemas import TransitionIn

AT = datetime(2026, 10, 15, 4, tzinfo=UTC)


def test_termination_ends_the_allocations_then(db, world) -> None:
    with db.transaction("test") as s:
        served = served_contract(s, world.customer_a.id)  # TN-1 through 2026
        later = Allocation(  # a later booking of the node, from January 2027: never begun
            node_id=served.node_id,
            contract_id=served.contract_id,
            start_at=datetime(2027, 1, 1, tzinfo=UTC),
            end_at=datetime(2027, 6, 1, tzinfo=UTC),
        )
        s.add(later)
        s.flush()
        contracts.transition(
            s, SYSTEM, served.contract_id, TransitionIn(to="active", at=AT - timedelta(days=30))
        )
        contracts.transition(
            s, SYSTEM, served.contract_id, TransitionIn(to="terminated", at=AT, reason="customer walked away")
        )
    with db.transaction("test") as s:
        rows = s.scalars(select(Allocation).where(Allocation.contract_id == served.contract_id)).all()
        assert [(a.start_at.year, a.end_at) for a in rows] == [(2025, AT)]
        day = AT + timedelta(days=1)
        (line,) = service.occupancy(s, SYSTEM, day, day + timedelta(days=1), "site")
        assert line.allocated_gpu_hours == 0 and line.in_service_gpu_hours == 8 * 24  # TN-1 is free


def test_activation_leaves_the_allocations_alone(db, world) -> None:
    with db.transaction("test") as s:
        served = served_contract(s, world.customer_a.id)
        contracts.transition(s, SYSTEM, served.contract_id, TransitionIn(to="active", at=AT))
        (a,) = s.scalars(select(Allocation).where(Allocation.contract_id == served.contract_id)).all()
        assert a.end_at.year == 2026 and a.end_at.month == 12
