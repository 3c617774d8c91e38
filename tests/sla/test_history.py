"""A contract's capacity per day and SLA per month, as its page shows them: the same measure as the
month's report, day by day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.errors import NotFound
from computelease.sla import service

NOV_1_SHANGHAI = datetime(2026, 10, 31, 16, tzinfo=UTC)


def test_days_add_up_to_the_month(db, served) -> None:
    with db.transaction("test") as s:
        days = service.daily(s, SYSTEM, served.contract_id, days=32, as_of=NOV_1_SHANGHAI)
        month = service.report(s, SYSTEM, served.contract_id, "2026-10")
    assert [d.day for d in days] == [date(2026, 10, i) for i in range(1, 32)]
    assert all(d.hours == 24 and d.contracted_gpu_hours == 192 for d in days)
    delivered = sum(d.delivered_gpu_hours for d in days)
    assert abs(delivered - month.delivered_gpu_hours) < Decimal("0.0001")
    # GPU 3's 10 hours (08:00-18:00 UTC on 10 October) fall 8 on the 10th and 2 on the 11th, Shanghai time.
    by_day = {d.day: d for d in days}
    assert by_day[date(2026, 10, 10)].delivered_gpu_hours == 184
    assert by_day[date(2026, 10, 11)].delivered_gpu_hours == 190
    assert by_day[date(2026, 10, 12)].delivered_gpus == 8


def test_today_counts_up_to_now_and_nothing_before_the_start(db, served) -> None:
    with db.transaction("test") as s:
        days = service.daily(s, SYSTEM, served.contract_id, days=3, as_of=datetime(2026, 1, 2, 4, tzinfo=UTC))
    # The contract starts on 1 January, Shanghai time; "now" is 12:00 on the 2nd there.
    assert [(d.day, d.hours) for d in days] == [(date(2026, 1, 1), 24), (date(2026, 1, 2), 12)]


def test_months_newest_first_from_the_start(db, served) -> None:
    with db.transaction("test") as s:
        got = service.months(s, SYSTEM, served.contract_id, as_of=datetime(2026, 11, 15, tzinfo=UTC))
    assert [r.period for r in got] == [f"2026-{m:02d}" for m in range(11, 0, -1)]
    october = next(r for r in got if r.period == "2026-10")
    assert october.availability_pct == Decimal("99.8319") and october.credit == Decimal("7000.00")


def test_another_customer_sees_neither(db, served, world) -> None:
    other = Principal(actor="t", role=Role.customer, customer_id=world.customer_b.id)
    with db.transaction("test") as s:
        for call in (service.daily, service.months):
            try:
                call(s, other, served.contract_id)
            except NotFound:
                continue
            raise AssertionError(f"{call.__name__} showed customer B a contract of customer A")


def test_a_terminated_contract_is_measured_up_to_its_termination(db, served) -> None:
    # As billing bills it: the month's report, its days and its months stop where service stopped.
    from computelease.billing import service as billing
    from computelease.contracts import service as contracts
    from computelease.contracts.models import Contract
    from computelease.contracts.schemas import TransitionIn

    end = datetime(2026, 10, 20, 16, tzinfo=UTC)  # 21 October, Shanghai midnight
    with db.transaction("test") as s:
        contracts.transition(
            s,
            SYSTEM,
            served.contract_id,
            TransitionIn(to="terminated", at=end, reason="customer walked away"),
        )
    with db.transaction("test") as s:
        month = service.report(s, SYSTEM, served.contract_id, "2026-10")
        billed = billing.expected(s, s.get(Contract, served.contract_id), "2026-10", billing.vat_table(s)).sla
        days = service.daily(s, SYSTEM, served.contract_id, days=40, as_of=NOV_1_SHANGHAI)
        months = service.months(s, SYSTEM, served.contract_id, as_of=datetime(2026, 12, 15, tzinfo=UTC))
    assert month.contracted_gpu_hours == 8 * 20 * 24  # 1–20 October
    assert (month.availability_pct, month.contracted_gpu_hours) == (
        billed.availability_pct,
        billed.contracted_gpu_hours,
    )
    assert days[-1].day == date(2026, 10, 20) and months[0].period == "2026-10"
