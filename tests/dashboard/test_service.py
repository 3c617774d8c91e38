"""The dashboard from real records: the SLA tests' contract (8 H100s at RMB 70,000/month, target 99.99%,
GPU 3 of TN-1 down 10 hours on 10 October) for customer A, and the matrix world's lease of lessor Y."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.sla.conftest import Served, outage, served_contract

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.billing import service as billing
from computelease.billing.models import Invoice
from computelease.contracts.models import Contract
from computelease.dashboard import service
from computelease.dashboard.core import Standing

OCT_20 = datetime(2026, 10, 20, tzinfo=UTC)
SEP_20 = datetime(2026, 9, 20, tzinfo=UTC)


def _served(db, world) -> Served:
    with db.transaction("test") as s:
        out = served_contract(s, world.customer_a.id)
        outage(s)
    return out


def test_an_outage_beyond_the_downtime_budget_misses_the_month(db, world) -> None:
    served = _served(db, world)
    with db.transaction("test") as s:
        got = service.summary(s, SYSTEM, now=OCT_20)
        (w,) = got.contracts
        assert w.contract_id == served.contract_id and w.period == "2026-10"
        # 10 GPU-hours lost against a budget of 0.01% of 8 GPUs × 744 h = 0.5952 GPU-hours.
        assert w.standing is Standing.breached and w.availability_pct < w.target_pct == Decimal("99.9900")
        assert w.budget_used is not None and w.budget_used > 16
        assert w.contracted_gpu_hours - w.delivered_gpu_hours == Decimal(10)
        assert w.credit > 0 and got.at_risk == [w]
        # What the month has earned so far is what the close would bill if the month ended now.
        contract = s.get(Contract, served.contract_id)
        lines = billing.expected(s, contract, "2026-10", billing.vat_table(s), end=OCT_20).lines
        assert w.accrued_net == sum(ln.net for ln in lines)
        assert any(ln.kind == "sla_credit" for ln in lines)


def test_a_clean_month_is_on_track(db, world) -> None:
    _served(db, world)
    with db.transaction("test") as s:
        (w,) = service.summary(s, SYSTEM, now=SEP_20).contracts
        assert w.standing is Standing.ok and w.availability_pct == Decimal("100.0000") and w.credit == 0
        assert w.budget_used == 0


def test_revenue_is_billed_where_the_month_is_closed_and_accrued_where_not(db, world) -> None:
    _served(db, world)
    with db.transaction("test") as s:
        billing.close(s, SYSTEM, "2026-09", now=datetime(2026, 10, 2, tzinfo=UTC))
    with db.transaction("test") as s:
        got = service.summary(s, SYSTEM, now=OCT_20)
        rows = {(r.period, r.currency): r for r in got.revenue}
        assert set(rows) == {("2026-10", "CNY"), ("2026-09", "CNY"), ("2026-08", "CNY")}
        september = s.scalars(select(Invoice).where(Invoice.period == "2026-09")).all()
        assert rows[("2026-09", "CNY")].basis == "billed"
        assert rows[("2026-09", "CNY")].net == sum(i.net for i in september) > 0
        assert rows[("2026-10", "CNY")].basis == "accrued"
        assert rows[("2026-10", "CNY")].net == got.contracts[0].accrued_net
        # August was never closed: it shows what the close would bill, a whole month at the same fee.
        assert rows[("2026-08", "CNY")].basis == "accrued"
        assert rows[("2026-08", "CNY")].net == rows[("2026-09", "CNY")].net
        assert rows[("2026-09", "CNY")].change == 0


def test_an_unpaid_invoice_past_due_is_overdue(db, world) -> None:
    _served(db, world)
    with db.transaction("test") as s:
        billing.close(s, SYSTEM, "2026-09", now=datetime(2026, 10, 2, tzinfo=UTC))
    with db.transaction("test") as s:
        (invoice,) = s.scalars(select(Invoice).where(Invoice.period == "2026-09")).all()
        late = datetime.combine(invoice.due_on, datetime.min.time(), UTC).replace(day=1)
        before = service.summary(s, SYSTEM, now=late)
        assert before.overdue == [] and before.open_receivables == {"CNY": invoice.gross}
        after = service.summary(s, SYSTEM, now=datetime(2026, 12, 20, tzinfo=UTC))
        (o,) = after.overdue
        assert (o.customer, o.overdue, o.currency) == ("Customer A own", invoice.gross, "CNY")
        assert after.overdue_total == {"CNY": invoice.gross}


def test_each_person_sees_their_own(db, world, matrix_world) -> None:
    served = _served(db, world)
    a = Principal(actor="t", role=Role.customer, customer_id=world.customer_a.id)
    b = Principal(actor="t", role=Role.customer, customer_id=world.customer_b.id)
    x = Principal(actor="t", role=Role.lessor, lessor_id=world.lessor_x.id)
    y = Principal(actor="t", role=Role.lessor, lessor_id=world.lessor_y.id)
    with db.transaction("test") as s:
        mine = service.summary(s, a, now=OCT_20)
        assert [w.contract_id for w in mine.contracts] == [served.contract_id]
        assert mine.organisation == "Customer A own" and mine.fleet is None and mine.revenue is None
        assert mine.lease_dues is None and mine.open_incidents is None
        other = service.summary(s, b, now=OCT_20)
        assert other.contracts == [] and other.organisation == "Customer B FOREIGN-TO-A"
        # Lessor Y's 12-month lease from January 2025: on 1 February 2025 one rent falls due within 30 days.
        lessor_y = service.summary(s, y, now=datetime(2025, 2, 1, tzinfo=UTC))
        assert lessor_y.contracts is None and lessor_y.fleet is None
        assert [d.code for d in lessor_y.lease_dues] == ["LEASE-Y-FOREIGN-TO-X"]
        assert not lessor_y.lease_dues[0].overdue and lessor_y.leases[0].outstanding_principal > 0
        late = service.summary(s, y, now=OCT_20)
        assert len(late.lease_dues) == 12 and all(d.overdue for d in late.lease_dues)
        assert late.leases[0].overdue_total > 0
        lessor_x = service.summary(s, x, now=OCT_20)
        assert lessor_x.lease_dues == [] and lessor_x.leases == []
        staff = service.summary(s, SYSTEM, now=OCT_20)
        assert staff.open_incidents == 1 and staff.incidents[0].title == "Incident FOREIGN-TO-ALL"
        assert sum(f.nodes for f in staff.fleet) == 2  # TN-1 and the matrix node


def test_the_api_gives_the_same_figures_to_their_owner_only(client: TestClient, db, world) -> None:
    served = _served(db, world)
    body = client.get("/api/v1/dashboard", headers=world.headers("customer_a")).json()
    assert body["role"] == "customer" and body["fleet"] is None
    assert [c["contract_id"] for c in body["contracts"]] == [served.contract_id]
    assert body["contracts"][0]["standing"] in {s.value for s in Standing}
    assert client.get("/api/v1/dashboard", headers=world.headers("customer_b")).json()["contracts"] == []
    staff = client.get("/api/v1/dashboard", headers=world.headers("operator")).json()
    assert [f["state"] for f in staff["fleet"]][:4] == ["ordered", "delivered", "accepted", "in_service"]
    assert client.get("/api/v1/dashboard").status_code == 401


def test_a_contract_terminated_this_month_still_counts_its_days(db, world) -> None:
    from computelease.contracts import service as contracts
    from computelease.contracts.schemas import TransitionIn

    served = _served(db, world)
    with db.transaction("test") as s:
        contracts.transition(s, SYSTEM, served.contract_id, TransitionIn(to="active", at=SEP_20))
        contracts.transition(
            s,
            SYSTEM,
            served.contract_id,
            TransitionIn(
                to="terminated", at=datetime(2026, 10, 15, tzinfo=UTC), reason="customer walked away"
            ),
        )
    with db.transaction("test") as s:
        (w,) = service.summary(s, SYSTEM, now=OCT_20).contracts
        contract = s.get(Contract, served.contract_id)
        end = contracts.service_end(s, contract)
        lines = billing.expected(s, contract, "2026-10", billing.vat_table(s), end=end).lines
        assert end == datetime(2026, 10, 15, tzinfo=UTC)
        assert w.accrued_net == sum(ln.net for ln in lines) > 0
        # Its SLA covers the days it served: 14.33 days × 8 GPUs, not the 19.33 gone by.
        assert (
            w.contracted_gpu_hours == 8 * (end - datetime(2026, 9, 30, 16, tzinfo=UTC)).total_seconds() / 3600
        )


def test_a_contract_without_an_sla_policy_is_watched_for_revenue_not_judged(db, world) -> None:
    served = _served(db, world)
    with db.transaction("test") as s:
        s.get(Contract, served.contract_id).sla_policy_id = None
    with db.transaction("test") as s:
        (w,) = service.summary(s, SYSTEM, now=OCT_20).contracts
        assert (w.standing, w.availability_pct, w.budget_used, w.credit) == (None, None, None, 0)
        assert w.accrued_net > 0 and w.contracted_gpus == 8
        assert service.summary(s, SYSTEM, now=OCT_20).at_risk == []
