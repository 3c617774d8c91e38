"""The lease ledger, pure: instalment status on a date, penalty interest, payment allocation."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computelease.finance import core as c
from computelease.finance.ledger import Instalment, InstalmentStatus, Settled, allocate, position

D = Decimal
RATE = D("0.0005")  # 万分之五 a day


def plan() -> list[Instalment]:
    """Three monthly rents of 1,000.00 (interest 100.00 + principal 900.00) on a 2,700.00 lease."""
    return [Instalment(k, date(2025, k + 1, 15), D("100.00"), D("900.00")) for k in (1, 2, 3)]


def settle(instalments, payments, rate=RATE) -> list[Settled]:
    """Replays ``payments`` [(date, amount)] through :func:`allocate`, as the service does."""
    done: list[Settled] = []
    for paid_on, amount in payments:
        split = allocate(instalments, done, paid_on, amount, rate)
        done += [Settled(s.period, paid_on, s.penalty, s.interest, s.principal) for s in split.shares]
    return done


def statuses(pos) -> list[str]:
    return [p.status.value for p in pos.instalments]


class TestStatus:
    def test_nothing_paid_before_the_first_due_date(self):
        pos = position(plan(), [], date(2025, 2, 15), RATE, principal=D("2700.00"))
        assert statuses(pos) == ["due", "due", "due"]  # due today is not late yet
        assert pos.overdue_total == 0 and pos.outstanding_principal == D("2700.00")
        assert pos.next_due is not None and pos.next_due.period == 1 and pos.next_due.owed == D("1000.00")

    def test_unpaid_rent_is_overdue_with_days_and_daily_penalty(self):
        pos = position(plan(), [], date(2025, 2, 25), RATE, principal=D("2700.00"))
        first = pos.instalments[0]
        assert first.status is InstalmentStatus.overdue and first.days_overdue == 10
        # 1,000.00 × 0.0005 × 10 days
        assert (
            first.penalty_owed == D("5.00") == c.penalty_interest("1000.00", "2025-02-15", "2025-02-25", RATE)
        )
        assert pos.overdue_total == D("1005.00") and pos.overdue_count == 1
        assert pos.next_due is not None and pos.next_due.period == 2

    def test_paid_on_time_partly_paid_and_paid_late(self):
        done = settle(plan(), [(date(2025, 2, 15), D("1000.00")), (date(2025, 3, 10), D("400.00"))])
        pos = position(plan(), done, date(2025, 3, 12), RATE, principal=D("2700.00"))
        assert statuses(pos) == ["paid", "partially_paid", "due"]
        assert pos.instalments[1].outstanding == D("600.00")
        assert pos.outstanding_principal == D("2700.00") - D("900.00") - D("300.00")
        # Once the due date passes, the rest is overdue and the penalty runs on the 600.00 only.
        later = position(plan(), done, date(2025, 3, 25), RATE, principal=D("2700.00"))
        assert statuses(later) == ["paid", "overdue", "due"]
        assert later.instalments[1].penalty_owed == D("3.00")  # 600.00 × 0.0005 × 10

    def test_payments_after_the_date_are_ignored(self):
        done = settle(plan(), [(date(2025, 2, 15), D("1000.00"))])
        pos = position(plan(), done, date(2025, 2, 14), RATE, principal=D("2700.00"))
        assert statuses(pos)[0] == "due" and pos.paid_total == 0

    def test_a_capitalised_grace_row_owes_nothing_and_grows_the_balance(self):
        schedule = c.build_schedule(
            c.LeaseTerms(
                principal="12000",
                annual_rate="0.12",
                months=4,
                start="2025-01-31",
                grace_months=1,
                grace="capitalised",
            )
        )
        rows = [Instalment.of_row(r) for r in schedule.rows]
        assert rows[0].amount == 0 and rows[0].capitalised == D("120.00")
        pos = position(rows, [], date(2025, 2, 28), RATE, principal=D("12000.00"))
        assert pos.instalments[0].status is InstalmentStatus.paid
        assert pos.outstanding_principal == D("12120.00")

    def test_the_balloon_is_owed_with_the_last_rent(self):
        schedule = c.build_schedule(
            c.LeaseTerms(principal="10000", annual_rate="0.06", months=3, start="2025-01-15", balloon="4000")
        )
        last = schedule.rows[-1]
        inst = Instalment.of_row(last, balloon=schedule.totals.residual)
        assert inst.principal == last.principal + D("4000.00")
        rows = [Instalment.of_row(r) for r in schedule.rows[:-1]] + [inst]
        assert sum(i.principal for i in rows) == D("10000.00")  # principal is repaid whole


class TestAllocation:
    def test_oldest_first_and_penalty_interest_principal_within_one(self):
        # 20 days late on the first rent; the payment covers it and part of the second.
        split = allocate(plan(), [], date(2025, 3, 7), D("1150.00"), RATE)
        first, second = split.shares
        assert (first.period, first.penalty, first.interest, first.principal, first.days_late) == (
            1,
            D("10.00"),
            D("100.00"),
            D("900.00"),
            20,
        )
        assert (second.period, second.penalty, second.interest, second.principal) == (
            2,
            D("0.00"),
            D("100.00"),
            D("40.00"),
        )
        assert split.unapplied == 0

    def test_a_small_payment_goes_to_penalty_first(self):
        split = allocate(plan(), [], date(2025, 3, 7), D("30.00"), RATE)
        assert [(s.penalty, s.interest, s.principal) for s in split.shares] == [
            (D("10.00"), D("20.00"), D("0.00"))
        ]

    def test_penalty_runs_stretch_by_stretch_on_what_is_unpaid(self):
        # 500.00 paid 10 days late (penalty 5.00 first, so 495.00 of rent); 505.00 unpaid for 10 more days.
        done = settle(plan(), [(date(2025, 2, 25), D("500.00"))])
        split = allocate(plan(), done, date(2025, 3, 7), D("2000.00"), RATE)
        first = split.shares[0]
        assert first.penalty == D("2.53")  # 505.00 × 0.0005 × 10, rounded to the fen
        assert first.interest == 0 and first.principal == D("505.00")

    def test_overpayment_is_left_unapplied(self):
        split = allocate(plan(), [], date(2025, 2, 15), D("3500.00"), RATE)
        assert sum(s.total for s in split.shares) == D("3000.00") and split.unapplied == D("500.00")

    def test_rents_paid_early_count_as_paid(self):
        done = settle(plan(), [(date(2025, 2, 1), D("2000.00"))])
        pos = position(plan(), done, date(2025, 3, 20), RATE, principal=D("2700.00"))
        assert statuses(pos) == ["paid", "paid", "due"] and pos.overdue_total == 0

    @pytest.mark.parametrize(
        ("amount", "rate", "term"),
        [
            ("0", RATE, "amount"),
            ("-5", RATE, "amount"),
            ("1.001", RATE, "amount"),
            ("10", "1.5", "daily_rate"),
        ],
    )
    def test_bad_inputs_name_the_term(self, amount, rate, term):
        with pytest.raises(c.FinanceTermError) as exc:
            allocate(plan(), [], date(2025, 2, 15), amount, rate)
        assert exc.value.term == term


payments = st.lists(st.tuples(st.integers(0, 120), st.integers(1, 150_000)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payments)
def test_money_is_conserved_and_never_over_applied(events):
    """Whatever arrives when, every payment is fully split or left unapplied; no instalment is paid more
    than its rent, and principal paid never exceeds the amount financed."""
    instalments = plan()
    start = date(2025, 2, 1)
    done: list[Settled] = []
    day = 0
    for gap, cents in events:
        day += gap
        paid_on = start + timedelta(days=day)
        amount = D(cents).scaleb(-2)
        split = allocate(instalments, done, paid_on, amount, RATE)
        assert sum(s.total for s in split.shares) + split.unapplied == amount
        assert all(s.penalty >= 0 and s.interest >= 0 and s.principal >= 0 for s in split.shares)
        done += [Settled(s.period, paid_on, s.penalty, s.interest, s.principal) for s in split.shares]
    for inst in instalments:
        mine = [s for s in done if s.period == inst.period]
        assert sum(s.interest for s in mine) <= inst.interest
        assert sum(s.principal for s in mine) <= inst.principal
    pos = position(instalments, done, start + timedelta(days=day), RATE, principal=D("2700.00"))
    assert D("0") <= pos.outstanding_principal <= D("2700.00")
    assert pos.paid_total == sum(s.penalty + s.interest + s.principal for s in done)
