"""A node that turns faulty through the fleet's own transition is replaced at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from computelease.allocation import service
from computelease.allocation.models import Allocation, Replacement
from computelease.auth.core import SYSTEM
from computelease.fleet import service as fleet

JAN = datetime(2026, 1, 1, tzinfo=UTC)
BREAKS = datetime(2026, 3, 1, 6, tzinfo=UTC)
LATER = datetime(2026, 6, 1, tzinfo=UTC)


def serving(session, contract_id: int, at: datetime) -> list[Allocation]:
    stmt = service.filter_allocations(
        service.readable_allocations(SYSTEM), contract_id=contract_id, active_at=at
    )
    return list(session.scalars(stmt))


def test_faulty_node_is_replaced_and_capacity_kept(session, world, small) -> None:
    service.plan(session, SYSTEM, as_of=JAN)
    (before,) = serving(session, small.contract_a.id, LATER)
    other = {a.node_id for a in serving(session, small.contract_b.id, LATER)}

    fleet.transition(session, SYSTEM, before.node_id, "faulty", at=BREAKS, reason="XID 79")

    (rep,) = session.scalars(select(Replacement)).all()
    assert (rep.contract_id, rep.old_node_id, rep.at) == (small.contract_a.id, before.node_id, BREAKS)
    assert rep.new_node_id not in other | {before.node_id}  # a free spare, not b's node
    assert "faulty" in rep.reason
    old = session.get(Allocation, before.id)
    assert old.end_at == BREAKS and old.start_at == JAN  # history up to the fault stays
    (after,) = serving(session, small.contract_a.id, LATER)
    assert after.node_id == rep.new_node_id and after.start_at == BREAKS
    assert after.end_at == small.contract_a.ends_at

    # Going on to repair finds nothing left to move.
    fleet.transition(session, SYSTEM, before.node_id, "repair", at=LATER)
    assert len(session.scalars(select(Replacement)).all()) == 1


def test_no_spare_leaves_the_allocation_and_reports(session, world, small) -> None:
    service.plan(session, SYSTEM, as_of=JAN)
    held = {a.node_id for c in (small.contract_a, small.contract_b) for a in serving(session, c.id, LATER)}
    for node_id in set(small.nodes.values()) - held:
        fleet.transition(session, SYSTEM, node_id, "maintenance", at=BREAKS)
    (victim,) = serving(session, small.contract_a.id, LATER)
    outcome = service.heal(session, victim.node_id, LATER)
    assert outcome.replacements == []
    (short,) = outcome.shortfalls
    assert short.contract_id == small.contract_a.id and short.reason == "overlapping_allocations"
    assert session.get(Allocation, victim.id).end_at == small.contract_a.ends_at
