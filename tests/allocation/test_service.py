"""plan() persists what the pure allocator decides; occupancy sums the stored record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from computelease.allocation import service
from computelease.allocation.models import Allocation
from computelease.auth.core import SYSTEM, Principal, Role
from computelease.contracts import service as contracts
from computelease.contracts.schemas import ContractIn
from computelease.errors import Forbidden, Unprocessable

JAN = datetime(2026, 1, 1, tzinfo=UTC)


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Allocation))


def test_dry_run_then_plan_then_nothing_more(session, world, small) -> None:
    preview = service.plan(session, SYSTEM, as_of=JAN, dry_run=True)
    assert count(session) == 0
    assert sorted(a.contract_id for a in preview.assignments) == sorted(
        [small.contract_a.id, small.contract_b.id]
    )
    assert preview.shortfalls == [] and all(a.id is None for a in preview.assignments)

    done = service.plan(session, SYSTEM, as_of=JAN)
    assert count(session) == 2 and all(a.id for a in done.assignments)
    # The dry run showed exactly what was then recorded.
    assert [(a.node_id, a.contract_id) for a in done.assignments] == [
        (a.node_id, a.contract_id) for a in preview.assignments
    ]
    nodes = {a.node_id for a in done.assignments}
    assert len(nodes) == 2  # never one node for two contracts
    row = session.scalar(select(Allocation).where(Allocation.contract_id == small.contract_a.id))
    assert row.start_at == JAN and row.end_at == small.contract_a.ends_at

    again = service.plan(session, SYSTEM, as_of=JAN + timedelta(days=3))
    assert again.assignments == [] and again.shortfalls == [] and count(session) == 2


def test_shortfall_names_contract_amount_and_reason(session, world, small) -> None:
    big = contracts.create_contract(
        session,
        SYSTEM,
        ContractIn(
            customer_id=world.customer_a.id,
            name="Too big",
            capacity_unit="gpus",
            capacity="40",
            accelerator_model="nvidia-h100-sxm",
            start_date=JAN.date(),
            end_date=datetime(2026, 6, 30).date(),
            pricing="monthly_fee",
            price="1000.00",
        ),
    )
    from tests.allocation.conftest import sign

    sign(session, big.id)
    result = service.plan(session, SYSTEM, as_of=JAN)
    (short,) = result.shortfalls
    # 32 GPUs exist, so 8 are missing; and without allow_partial it gets none of them.
    assert (short.contract_id, short.missing, short.unit) == (big.id, 8, "gpus")
    assert short.reason == "insufficient_capacity" and "only 32" in short.detail
    assert {a.contract_id for a in result.assignments} == {small.contract_a.id, small.contract_b.id}


def test_only_signed_or_active_contracts_are_planned(session, world, small) -> None:
    terms = ContractIn.model_validate(
        {**_terms(world.customer_a.id), "name": "Still a draft", "capacity": "8"}
    )
    draft = contracts.create_contract(session, SYSTEM, terms)
    result = service.plan(session, SYSTEM, as_of=JAN)
    assert draft.id not in {a.contract_id for a in result.assignments}
    assert {a.contract_id for a in result.assignments} == {small.contract_a.id, small.contract_b.id}
    only_b = service.plan(session, SYSTEM, as_of=JAN, contract_ids=[small.contract_b.id], dry_run=True)
    assert only_b.assignments == []  # b already holds its node
    with pytest.raises(Unprocessable, match="not signed or active"):
        service.plan(session, SYSTEM, as_of=JAN, contract_ids=[draft.id])


def _terms(customer_id: int) -> dict:
    return {
        "customer_id": customer_id,
        "capacity_unit": "gpus",
        "accelerator_model": "nvidia-h100-sxm",
        "start_date": JAN.date(),
        "end_date": datetime(2026, 6, 30).date(),
        "pricing": "monthly_fee",
        "price": "1000.00",
    }


def test_rebalance_releases_from_as_of(session, world, small) -> None:
    service.plan(session, SYSTEM, as_of=JAN)
    later = datetime(2026, 4, 1, tzinfo=UTC)
    result = service.plan(session, SYSTEM, as_of=later, rebalance=True)
    assert len(result.released) == 2 and all(r.new_end_at == later for r in result.released)
    rows = session.scalars(select(Allocation).order_by(Allocation.start_at)).all()
    # History before as_of stays; the plan from as_of on is new rows.
    assert sorted(r.end_at for r in rows if r.start_at == JAN) == [later, later]
    assert len([r for r in rows if r.start_at == later]) == 2


def test_only_staff_plan(session, world, small) -> None:
    customer = Principal(Role.customer, "c", customer_id=world.customer_a.id)
    with pytest.raises(Forbidden):
        service.plan(session, customer, as_of=JAN)


def test_occupancy_by_site_and_contract(session, world, small) -> None:
    service.plan(session, SYSTEM, as_of=JAN)
    day = datetime(2026, 2, 1, tzinfo=UTC)
    rows = {r.key: r for r in service.occupancy(session, SYSTEM, day, day + timedelta(days=1), "site")}
    qy = rows["qy-1"]
    assert qy.in_service_gpu_hours == pytest.approx(4 * 8 * 24)
    assert qy.allocated_gpu_hours == pytest.approx(2 * 8 * 24)
    assert qy.occupancy_pct == pytest.approx(50.0) and len(qy.idle_nodes) == 2

    customer = Principal(Role.customer, "c", customer_id=world.customer_a.id)
    mine = service.occupancy(session, customer, day, day + timedelta(days=1), "contract")
    assert [r.key for r in mine] == [str(small.contract_a.id)]
    assert mine[0].allocated_gpu_hours == pytest.approx(8 * 24) and mine[0].idle_nodes == ()
    with pytest.raises(Forbidden):
        service.occupancy(session, customer, day, day + timedelta(days=1), "site")


class TestConfiguredSpares:
    @pytest.fixture
    def spares(self, monkeypatch):
        from computelease.config import get_settings

        def set_spares(n: int) -> None:
            monkeypatch.setenv("COMPUTELEASE_SPARE_NODES_PER_FABRIC", str(n))
            get_settings.cache_clear()

        yield set_spares
        monkeypatch.delenv("COMPUTELEASE_SPARE_NODES_PER_FABRIC", raising=False)
        get_settings.cache_clear()

    def test_one_spare_per_fabric_keeps_the_lone_node_free(self, session, world, small, spares) -> None:
        spares(1)
        done = service.plan(session, SYSTEM, as_of=JAN)
        assert done.shortfalls == []
        assert small.nodes["B1"] not in {a.node_id for a in done.assignments}

    def test_too_many_spares_leave_a_contract_short_and_say_why(self, session, world, small, spares) -> None:
        spares(2)
        result = service.plan(session, SYSTEM, as_of=JAN, dry_run=True)
        assert len(result.assignments) == 1
        assert [s.reason for s in result.shortfalls] == ["spares_reserved"]
