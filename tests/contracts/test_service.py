"""Contract use cases against the database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.contracts import service
from computelease.contracts.core import ContractStatus, IllegalTransition
from computelease.contracts.models import Contract, ContractEvent
from computelease.contracts.schemas import ContractIn, ContractPatch, CustomerIn, TransitionIn
from computelease.errors import Conflict, NotFound, Unprocessable

from .conftest import contract_terms


def customer_principal(customer_id: int) -> Principal:
    return Principal(role=Role.customer, actor=f"test:{customer_id}", customer_id=customer_id)


class TestCreate:
    def test_derived_columns_are_stored_exactly(self, db, world) -> None:
        with db.transaction("test") as s:
            c = service.create_contract(
                s,
                SYSTEM,
                ContractIn(
                    **contract_terms(
                        world.customer_a.id,
                        capacity=Decimal("8"),
                        pricing="per_gpu_hour",
                        price=Decimal("2.3456"),
                        currency="USD",
                        timezone="UTC",
                        start_date=date(2024, 2, 1),
                        end_date=date(2024, 2, 29),
                    )
                ),
            )
            contract_id = c.id
        with db.transaction("test") as s:
            c = s.get(Contract, contract_id)
            # Exact(4) must keep the fourth decimal on every backend (NUMERIC(20,4) on PostgreSQL).
            assert c.price == Decimal("2.3456")
            assert c.total_value == Decimal("13060.30")  # 2.3456 × 8 × 696 = 13,060.3008
            assert c.billable_gpus == 8 and c.status is ContractStatus.draft
            assert (c.starts_at, c.ends_at) == (
                datetime(2024, 2, 1, tzinfo=UTC),
                datetime(2024, 3, 1, tzinfo=UTC),
            )
            assert [(e.from_status, e.to_status, e.reason) for e in c.events] == [
                (None, ContractStatus.draft, "created")
            ]

    def test_billable_pflops_keep_six_decimals(self, db, world) -> None:
        with db.transaction("test") as s:
            c = service.create_contract(
                s,
                SYSTEM,
                ContractIn(
                    **contract_terms(world.customer_a.id, pricing="per_pflops_month", price=Decimal("5000"))
                ),
            )
            contract_id = c.id
        with db.transaction("test") as s:
            c = s.get(Contract, contract_id)
            assert c.billable_pflops == Decimal("7.915200")
            # 7.9152 × 5000 × 12 months
            assert c.total_value == Decimal("474912.00")

    REFUSED = (
        ({"customer_id": 999999}, "customer_id 999999 is not a customer"),
        ({"sla_policy_id": 999999}, "sla_policy_id 999999 is not an SLA policy"),
        ({"accelerator_model": "nvidia-h900"}, "no accelerator 'nvidia-h900'"),
        ({"end_date": date(2025, 1, 1)}, "end date 2025-01-01 is before start date"),
    )

    def test_refused_and_nothing_written(self, db, world) -> None:
        for overrides, message in self.REFUSED:
            with pytest.raises(Unprocessable, match=message), db.transaction("test") as s:
                service.create_contract(
                    s, SYSTEM, ContractIn(**{**contract_terms(world.customer_a.id), **overrides})
                )
        with db.transaction("test") as s:
            assert s.scalars(select(Contract)).all() == [] and s.scalars(select(ContractEvent)).all() == []


class TestUpdate:
    def test_draft_terms_change_and_value_follows(self, db, deals) -> None:
        with db.transaction("test") as s:
            c = service.update_contract(
                s,
                SYSTEM,
                deals.contract_a.id,
                ContractPatch(end_date=date(2026, 6, 30), price=Decimal("100.00")),
            )
            assert c.total_value == Decimal("600.00") and c.ends_at == datetime(2026, 6, 30, 16, tzinfo=UTC)

    def test_switching_to_a_minimum_spec_clears_the_model(self, db, deals) -> None:
        with db.transaction("test") as s:
            c = service.update_contract(
                s, SYSTEM, deals.contract_a.id, ContractPatch(min_memory_gb=Decimal("141"))
            )
            assert c.accelerator_model is None
            assert service.present(s, c).compatible_models == [
                "nvidia-b200",
                "nvidia-gb200",
                "nvidia-h200-sxm",
            ]

    def test_terms_are_fixed_once_signed(self, db, deals) -> None:
        with db.transaction("test") as s:
            service.transition(s, SYSTEM, deals.contract_a.id, TransitionIn(to="signed"))
        with (
            pytest.raises(
                Conflict, match=r"is signed; its terms \(capacity, price\) can change only in draft"
            ),
            db.transaction("test") as s,
        ):
            service.update_contract(
                s,
                SYSTEM,
                deals.contract_a.id,
                ContractPatch(price=Decimal("1.00"), capacity=Decimal("9")),
            )
        with db.transaction("test") as s:
            c = service.update_contract(
                s, SYSTEM, deals.contract_a.id, ContractPatch(name="Renamed", notes="n")
            )
            assert (c.name, c.notes, c.price) == ("Renamed", "n", Decimal("70000.0000"))
            # Sending a term unchanged is not a change.
            service.update_contract(s, SYSTEM, deals.contract_a.id, ContractPatch(price=Decimal("70000")))

    def test_required_terms_cannot_be_cleared(self, db, deals) -> None:
        with pytest.raises(Unprocessable, match="price cannot be cleared"), db.transaction("test") as s:
            service.update_contract(s, SYSTEM, deals.contract_a.id, ContractPatch(price=None))


class TestTransition:
    def test_the_whole_life_is_timestamped(self, db, deals) -> None:
        steps = [
            ("signed", datetime(2025, 12, 1, tzinfo=UTC), ""),
            ("active", datetime(2026, 1, 1, tzinfo=UTC), "handed over"),
            ("ended", datetime(2026, 6, 1, tzinfo=UTC), "done"),
        ]
        with db.transaction("test") as s:
            for to, at, reason in steps:
                service.transition(s, SYSTEM, deals.contract_a.id, TransitionIn(to=to, at=at, reason=reason))
        with db.transaction("test") as s:
            c = service.get_contract(s, SYSTEM, deals.contract_a.id)
            moves = [(e.from_status, e.to_status, e.at) for e in c.events if e.from_status]
            assert moves == [
                (ContractStatus.draft, ContractStatus.signed, steps[0][1]),
                (ContractStatus.signed, ContractStatus.active, steps[1][1]),
                (ContractStatus.active, ContractStatus.ended, steps[2][1]),
            ]
            assert c.status is ContractStatus.ended and {e.actor for e in c.events} == {"system"}

    def test_illegal_move_changes_nothing(self, db, deals) -> None:
        with (
            pytest.raises(IllegalTransition, match="a draft contract cannot become active"),
            db.transaction("test") as s,
        ):
            service.transition(s, SYSTEM, deals.contract_a.id, TransitionIn(to="active"))
        with db.transaction("test") as s:
            assert service.get_contract(s, SYSTEM, deals.contract_a.id).status is ContractStatus.draft
            assert len(s.scalars(select(ContractEvent)).all()) == 2  # the two creations

    def test_refusals(self, db, deals) -> None:
        cid = deals.contract_a.id
        with db.transaction("test") as s:
            service.transition(
                s, SYSTEM, cid, TransitionIn(to="signed", at=datetime(2025, 12, 1, tzinfo=UTC))
            )
        for to, at, reason, message in (
            ("active", datetime(2999, 1, 1, tzinfo=UTC), "", "is in the future"),
            ("active", datetime(2025, 11, 30, tzinfo=UTC), "", "before the contract's last status change"),
            ("active", datetime(1989, 12, 31, tzinfo=UTC), "", "is before 1990-01-01; check the year"),
            ("terminated", None, " ", "say why the contract is terminated"),
        ):
            with pytest.raises(Unprocessable, match=message), db.transaction("test") as s:
                service.transition(s, SYSTEM, cid, TransitionIn(to=to, at=at, reason=reason))
        with db.transaction("test") as s:
            assert service.get_contract(s, SYSTEM, cid).status is ContractStatus.signed


class TestScope:
    def test_each_principal_reads_its_own(self, db, deals, world) -> None:
        with db.transaction("test") as s:

            def names(principal: Principal) -> set[str]:
                return {c.name for c in s.scalars(service.readable_contracts(principal))}

            def policies(principal: Principal) -> set[str]:
                return {p.name for p in s.scalars(service.readable_sla_policies(principal))}

            a = customer_principal(world.customer_a.id)
            lessor = Principal(role=Role.lessor, actor="l", lessor_id=world.lessor_x.id)
            assert names(a) == {"Contract A own"} and policies(a) == {"SLA A own"}
            assert names(lessor) == set() and policies(lessor) == set()
            operator = Principal(role=Role.operator, actor="op")
            assert names(operator) == {"Contract A own", "Contract B FOREIGN-TO-A"}
            assert len(policies(operator)) == 2
            with pytest.raises(
                NotFound, match=f"contract {deals.contract_b.id} does not exist or is not visible"
            ):
                service.get_contract(s, a, deals.contract_b.id)
            with pytest.raises(NotFound):
                service.get_sla_policy(s, a, deals.policy_b.id)

    def test_list_filters(self, db, deals, world) -> None:
        with db.transaction("test") as s:
            service.transition(s, SYSTEM, deals.contract_b.id, TransitionIn(to="signed"))
            signed = s.scalars(service.list_contracts(SYSTEM, status=ContractStatus.signed)).all()
            of_a = s.scalars(service.list_contracts(SYSTEM, customer_id=world.customer_a.id)).all()
            assert [c.name for c in signed] == ["Contract B FOREIGN-TO-A"]
            assert [c.name for c in of_a] == ["Contract A own"]


def test_a_customer_with_contracts_cannot_be_deleted(db) -> None:
    with db.transaction("test") as s:
        customer = service.create(s, CustomerIn(name="Only contracts", segment="research"))
        service.create_contract(s, SYSTEM, ContractIn(**contract_terms(customer.id)))
    with pytest.raises(Conflict, match="still has contract records"), db.transaction("test") as s:
        service.delete(s, SYSTEM, customer.id)


def test_stored_contract_survives_a_catalog_that_cannot_size_it(db, deals, monkeypatch) -> None:
    from computelease.catalog.core import Catalog

    monkeypatch.setattr(service, "catalog", lambda session: Catalog())
    with db.transaction("test") as s:
        out = service.present(s, service.get_contract(s, SYSTEM, deals.contract_a.id))
        assert out.capacity_by_model == [] and "nvidia-h100-sxm" in (out.catalog_problem or "")
        assert out.total_value == Decimal("840000.00")  # as agreed, not recomputed


def test_demo_seed(db) -> None:
    from computelease.contracts import demo
    from computelease.demo import DemoWorld

    with db.transaction("test") as s:
        world = DemoWorld()
        world.customers = [
            service.create(s, CustomerIn(name="M", segment="model_maker")),
            service.create(s, CustomerIn(name="C", segment="ai_cloud")),
        ]
        demo.seed(s, world)
        seeded = world.extra["contracts"]
        assert len({c.segment for c in world.customers}) == 5 == len(seeded["customers"])
        deals = seeded["contracts"]
        assert {k: c.status.value for k, c in deals.items()} == {
            "flagship": "active",
            "by_nodes": "active",
            "usd": "active",
            "ended": "ended",
            "draft": "draft",
        }
        flagship = deals["flagship"]
        assert (flagship.total_value, flagship.billable_gpus, flagship.capacity) == (
            Decimal("55500000.00"),
            157,
            Decimal("154.5000"),
        )
        assert deals["usd"].currency == "USD" and deals["usd"].pricing.value == "per_gpu_hour"
        assert service.capacity_for(s, flagship, "nvidia-h100-sxm").nodes == 20
