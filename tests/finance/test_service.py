"""Leases, payments and credit lines through the service, on every backend.

Each test covers one use case end to end: a database test costs a fresh schema's worth of setup, so
they are few and thorough.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.demo import DemoWorld
from computelease.errors import Conflict, NotFound, Unprocessable
from computelease.finance import core, service
from computelease.finance import demo as finance_demo
from computelease.finance.ledger import InstalmentStatus
from computelease.finance.models import (
    CreditLine,
    Lease,
    LeaseInstalment,
    LeaseStatus,
    Lessor,
    PaymentAllocation,
)
from computelease.finance.schemas import CreditLineIn, CreditLinePatch, LeasePatch, PaymentIn
from computelease.fleet.models import Node

from .conftest import FIRST_RENT, lease_in, make_nodes, terms_in

D = Decimal


def lessor(world, which: str = "x") -> Principal:
    target = world.lessor_x if which == "x" else world.lessor_y
    return Principal(role=Role.lessor, actor="t", lessor_id=target.id)


CUSTOMER = Principal(role=Role.customer, actor="t", customer_id=1)


def pay(s, lease_id: int, on: date, amount: Decimal | str, **kw) -> object:
    return service.record_payment(s, SYSTEM, lease_id, PaymentIn(paid_on=on, amount=D(amount)), **kw)


def test_signing_stores_the_core_schedule_and_refuses_bad_terms(db, world, books):
    with db.transaction("test") as s:
        lease = service.get_lease(s, SYSTEM, books.lease_x)
        expected = core.build_schedule(
            service.terms_of(terms_in(), start=date.today(), kind=core.LeaseKind.direct)
        )
        assert [
            (i.period, i.due_date, i.opening, i.payment, i.interest, i.principal, i.closing)
            for i in lease.instalments
        ] == [tuple(r) for r in expected.rows]
        assert lease.instalments[0].payment == FIRST_RENT
        assert lease.end_date == date(2026, 1, 15) and lease.principal == D("1200000.00")
        # The stored terms are text and rebuild the same terms exactly.
        assert lease.terms["annual_rate"] == "0.06" and lease.terms["months"] == "12"
        assert service.terms_from_json(lease.terms) == expected.terms
        assert lease.penalty_daily_rate == D("0.000500")
        with pytest.raises(core.FinanceTermError) as exc:
            service.create_lease(
                s, SYSTEM, lease_in(world.lessor_x.id, "BAD", terms=terms_in(balloon="2000000"))
            )
        assert exc.value.term == "balloon" and exc.value.status == 400
        with pytest.raises(core.FinanceTermError) as exc:
            service.create_lease(
                s,
                SYSTEM,
                lease_in(world.lessor_x.id, "BAD", kind="direct", terms=terms_in(kind="sale_leaseback")),
            )
        assert exc.value.term == "kind"
        with pytest.raises(Conflict, match="LX-1"):
            service.create_lease(s, SYSTEM, lease_in(world.lessor_y.id, "LX-1"))
        with pytest.raises(Unprocessable, match="lessor_id"):
            service.create_lease(s, lessor(world, "x"), lease_in(world.lessor_y.id, "NEW"))
        assert s.scalar(select(Lease.id).where(Lease.code == "BAD")) is None


def test_a_node_secures_one_active_lease(db, world, books):
    # A lease whose second node is taken is refused whole: not signed without it.
    with pytest.raises(Conflict), db.transaction("test") as s:
        service.create_lease(
            s, SYSTEM, lease_in(world.lessor_y.id, "LY-3", node_ids=[books.nodes["H3"], books.nodes["H1"]])
        )
    with db.transaction("test") as s:
        assert s.scalar(select(Lease.id).where(Lease.code == "LY-3")) is None
        other = service.create_lease(s, SYSTEM, lease_in(world.lessor_y.id, "LY-2"))
        with pytest.raises(Conflict) as exc:
            service.add_asset(s, SYSTEM, other.id, books.nodes["H1"])
        assert exc.value.status == 409 and "H1" in exc.value.detail and "LX-1" in exc.value.detail
        with pytest.raises(Conflict, match="already secures lease LX-1"):
            service.add_asset(s, SYSTEM, books.lease_x, books.nodes["H1"])
        with pytest.raises(Unprocessable, match="node 999999 does not exist"):
            service.add_asset(s, SYSTEM, books.lease_x, 999999)
        service.add_asset(s, SYSTEM, books.lease_x, books.nodes["H3"])
        service.remove_asset(s, SYSTEM, books.lease_x, books.nodes["H3"])
        with pytest.raises(NotFound):
            service.remove_asset(s, SYSTEM, books.lease_x, books.nodes["H3"])
        # Once LX-1 has ended, its node may secure another lease; LX-1's assets are then fixed.
        service.update_lease(s, SYSTEM, books.lease_x, LeasePatch(status=LeaseStatus.closed))
        service.add_asset(s, SYSTEM, other.id, books.nodes["H1"])
        assert [a.node.serial for a in other.assets] == ["H1"]
        with pytest.raises(Conflict, match="closed"):
            service.remove_asset(s, SYSTEM, books.lease_x, books.nodes["H1"])
        with pytest.raises(Conflict, match="can move to: none"):
            service.update_lease(s, SYSTEM, books.lease_x, LeasePatch(status=LeaseStatus.active))


def test_scope_of_leases_credit_lines_and_nodes(db, world, books):
    with db.transaction("test") as s:
        assert [x.code for x in s.scalars(service.readable_leases(lessor(world, "x")))] == ["LX-1"]
        assert [x.code for x in s.scalars(service.readable_leases(lessor(world, "y")))] == ["LY-1"]
        assert list(s.scalars(service.readable_leases(CUSTOMER))) == []
        assert [x.name for x in s.scalars(service.readable_credit_lines(lessor(world, "x")))] == [
            "Line X own"
        ]
        assert list(s.scalars(service.readable_credit_lines(CUSTOMER))) == []
        with pytest.raises(NotFound):
            service.get_lease(s, lessor(world, "x"), books.lease_y)
        with pytest.raises(NotFound):
            service.record_payment(
                s, lessor(world, "x"), books.lease_y, PaymentIn(paid_on=date(2025, 2, 15), amount=D("1"))
            )

        def visible(p: Principal) -> set[int]:
            return set(s.scalars(select(Node.id).where(Node.id.in_(service.lessor_node_ids(p)))))

        assert visible(lessor(world, "x")) == {books.nodes["H1"]}
        assert visible(lessor(world, "y")) == {books.nodes["H2"]}
        assert visible(CUSTOMER) == set()
        assert visible(SYSTEM) == {books.nodes["H1"], books.nodes["H2"]}
        service.update_lease(s, SYSTEM, books.lease_x, LeasePatch(status=LeaseStatus.terminated))
        assert visible(lessor(world, "x")) == {books.nodes["H1"]}  # still recovering it
        service.update_lease(s, SYSTEM, books.lease_x, LeasePatch(status=LeaseStatus.closed))
        assert visible(lessor(world, "x")) == set()


def test_payments_are_split_stored_and_in_date_order(db, world, books):
    with db.transaction("test") as s:
        # Rent 1 paid 10 days late, with enough for its penalty and part of rent 2.
        p = pay(s, books.lease_x, date(2025, 2, 25), "150000.00")
        penalty = core.penalty_interest(FIRST_RENT, "2025-02-15", "2025-02-25", "0.0005")
        assert penalty == D("516.40")
        shares = [
            (a.instalment.period, a.penalty, a.interest, a.principal, a.days_late) for a in p.allocations
        ]
        assert shares[0] == (1, penalty, D("6000.00"), FIRST_RENT - D("6000.00"), 10)
        assert shares[1][0] == 2 and shares[1][1] == 0
        assert sum(a.penalty + a.interest + a.principal for a in p.allocations) == D("150000.00")
        assert p.unapplied == 0
        with pytest.raises(Conflict, match="date order"):
            pay(s, books.lease_x, date(2025, 2, 24), "10")
        with pytest.raises(Unprocessable, match="future"):
            pay(s, books.lease_x, date(2025, 4, 1), "10", on_today=date(2025, 3, 31))
        with pytest.raises(Unprocessable, match="before the lease starts"):
            pay(s, books.lease_y, date(2025, 1, 1), "10")
        with pytest.raises(Conflict, match="payments"):
            service.delete_lease(s, SYSTEM, books.lease_x)
        service.delete_lease(s, SYSTEM, books.lease_y)
        assert s.scalar(select(LeaseInstalment.id).where(LeaseInstalment.lease_id == books.lease_y)) is None
    with db.transaction("test") as s:
        lease = service.get_lease(s, SYSTEM, books.lease_x)
        pos = service.position(lease, date(2025, 3, 1))
        assert [x.status for x in pos.instalments[:3]] == [
            InstalmentStatus.paid,
            InstalmentStatus.partially_paid,
            InstalmentStatus.due,
        ]
        assert pos.outstanding_principal == D("1200000.00") - sum(
            a.principal for pay in lease.payments for a in pay.allocations
        )
        later = service.position(lease, date(2025, 3, 20))
        assert (
            later.instalments[1].status is InstalmentStatus.overdue and later.instalments[1].days_overdue == 5
        )
        assert later.overdue_count == 1 and later.overdue_total > later.instalments[1].outstanding
        # A closed lease takes no payment.
        service.update_lease(s, SYSTEM, books.lease_x, LeasePatch(status=LeaseStatus.closed))
        with pytest.raises(Conflict, match="closed"):
            pay(s, books.lease_x, date(2025, 3, 1), "10")


def test_termination_adds_arrears_and_credits_rent_paid_ahead(db, world, books):
    with db.transaction("test") as s:
        on = date(2025, 4, 20)
        nothing_paid = service.termination(s, SYSTEM, books.lease_x, on)
        # Three rents fell due and none was paid: all three are owed beside the buyout.
        assert nothing_paid.paid_through == 3
        assert nothing_paid.arrears == 3 * FIRST_RENT
        assert nothing_paid.penalty_owed > 0
        assert (
            nothing_paid.total_with_arrears
            == nothing_paid.total + nothing_paid.arrears + nothing_paid.penalty_owed
        )
        for paid_on in (date(2025, 2, 15), date(2025, 3, 15), date(2025, 4, 15)):
            pay(s, books.lease_x, paid_on, FIRST_RENT)
        pay(s, books.lease_x, on, "1000.00")  # towards rent 4, not yet due
        q = service.termination(s, SYSTEM, books.lease_x, on, fee_rate="0.01")
        assert q.arrears == 0 and q.penalty_owed == 0
        assert q.fee == (q.outstanding_principal * D("0.01")).quantize(D("0.01"))
        assert q.total_with_arrears == q.total - D("1000.00")


def test_credit_lines_are_never_overdrawn(db, world, books):
    with db.transaction("test") as s:
        with pytest.raises(Unprocessable, match="above the limit"):
            service.create_credit_line(
                s,
                SYSTEM,
                CreditLineIn(
                    lessor_id=world.lessor_x.id, name="over", limit=D("10"), drawn=D("11"), rate=D("0.04"),
                    expires_on=date(2027, 1, 1),
                ),
            )  # fmt: skip
        line = service.update_credit_line(s, SYSTEM, books.line_x, CreditLinePatch(drawn=D("50000000.00")))
        assert line.available == 0
        with pytest.raises(Conflict, match="exceed the limit"):
            service.update_credit_line(s, SYSTEM, books.line_x, CreditLinePatch(drawn=D("50000000.01")))
        with pytest.raises(Conflict, match="below"):
            service.update_credit_line(s, SYSTEM, books.line_x, CreditLinePatch(limit=D("1.00")))
        with pytest.raises(NotFound):
            service.update_credit_line(s, lessor(world, "x"), books.line_y, CreditLinePatch(drawn=D("1")))
    # The database refuses an overdrawn line too, whatever writes it.
    with pytest.raises(IntegrityError), db.transaction("test") as s:
        s.execute(update(CreditLine).where(CreditLine.id == books.line_y).values(drawn=D("60000000.00")))
        s.flush()


def test_demo_has_payments_and_exactly_one_overdue_instalment(db, world):
    with db.transaction("test") as s:
        ids = make_nodes(s, ("H1", "H2", "Z1", "Z2"))
        # As the fleet's demo seeder leaves them (the world fixture's own node is not in the demo).
        nodes = [s.get(Node, i) for i in ids.values()]
        demo_world = DemoWorld(
            lessors=list(s.scalars(select(Lessor).order_by(Lessor.id))), extra={"fleet": {"nodes": nodes}}
        )
        finance_demo.seed(s, demo_world)
        direct, slb = demo_world.extra["finance"]["leases"]
        assert (direct.kind, direct.principal) == (core.LeaseKind.direct, D("300000000.00"))
        assert (slb.kind, slb.principal, len(slb.instalments)) == (
            core.LeaseKind.sale_leaseback,
            D("29000000.00"),
            24,
        )
        assert {a.node.serial for a in direct.assets} == {"H1", "H2"}
        assert {a.node.serial for a in slb.assets} == {"Z1", "Z2"}
        positions = [service.position(x) for x in (direct, slb)]
        assert sum(p.overdue_count for p in positions) == 1
        assert positions[1].overdue[0].days_overdue >= 10 and positions[1].overdue[0].penalty_owed > 0
        assert all(p.paid_total > 0 for p in positions)
        # The late rent of the direct lease was paid with its penalty.
        assert s.scalar(select(PaymentAllocation.id).where(PaymentAllocation.penalty > 0)) is not None
        assert len(demo_world.extra["finance"]["credit_lines"]) == 2
