"""The dashboard's pure judgements: SLA standing from the downtime budget, revenue per month, dues."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from computelease.dashboard import core
from computelease.dashboard.core import Standing

OCT = (datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC))  # Asia/Shanghai


class TestBudget:
    def test_a_whole_month_in_service(self) -> None:
        assert core.service_hours(*OCT, datetime(2026, 1, 1, tzinfo=UTC), None) == D(744)

    def test_a_contract_starting_mid_month_counts_from_its_start(self) -> None:
        start = datetime(2026, 10, 16, 16, tzinfo=UTC)  # 17 October, Shanghai midnight
        assert core.service_hours(*OCT, start, datetime(2027, 1, 1, tzinfo=UTC)) == D(15 * 24)

    def test_a_contract_over_before_the_month_has_no_hours(self) -> None:
        end = datetime(2026, 9, 1, tzinfo=UTC)
        assert core.service_hours(*OCT, datetime(2026, 1, 1, tzinfo=UTC), end) == 0

    def test_budget_is_what_the_target_lets_the_month_lose(self) -> None:
        # 99.9% of 8 GPUs × 744 h: 5.952 GPU-hours may be lost; excluded maintenance is out of the count.
        assert core.downtime_budget(D("99.9"), 8, D(744), D(0)) == D("5.952")
        assert core.downtime_budget(D("99.9"), 8, D(744), D(24)) == D("5.928")
        assert core.downtime_budget(D("100"), 8, D(744), D(0)) == 0


class TestStanding:
    def judge(self, availability: str, counted: str, budget: str = "5.952", target: str = "99.9"):
        return core.standing(
            availability_pct=D(availability),
            target_pct=D(target),
            counted_gpu_hours=D(counted),
            budget_gpu_hours=D(budget),
        )

    def test_nothing_lost_is_on_track(self) -> None:
        assert self.judge("100", "0") == (Standing.ok, D("0.0000"))

    def test_half_the_budget_spent_raises_the_alarm(self) -> None:
        assert self.judge("99.99", "2.975")[0] is Standing.ok
        assert self.judge("99.99", "2.976") == (Standing.at_risk, D("0.5000"))

    def test_below_target_so_far_while_the_month_could_still_recover(self) -> None:
        # Early in the month: 5 of 5.952 GPU-hours lost out of the few hours gone by.
        assert self.judge("99.2", "5") == (Standing.below_target, D("0.8401"))

    def test_more_than_the_budget_spent_misses_the_month_whatever_comes(self) -> None:
        assert self.judge("99.95", "5.952")[0] is Standing.at_risk  # exactly the budget still meets it
        assert self.judge("99.7", "6")[0] is Standing.breached

    def test_a_hundred_percent_target_is_missed_by_any_loss(self) -> None:
        assert self.judge("100", "0", budget="0", target="100") == (Standing.ok, None)
        assert self.judge("99.999", "0.01", budget="0", target="100") == (Standing.breached, None)

    def test_the_alarm_is_a_parameter(self) -> None:
        got = core.standing(
            availability_pct=D("99.95"),
            target_pct=D("99.9"),
            counted_gpu_hours=D("2"),
            budget_gpu_hours=D("5.952"),
            alarm=D("0.25"),
        )
        assert got[0] is Standing.at_risk


class TestRevenue:
    def test_months_back_crosses_the_year(self) -> None:
        assert core.months_back("2026-02", 3) == ["2026-02", "2026-01", "2025-12"]

    def test_credit_notes_reduce_their_month_per_currency(self) -> None:
        docs = [
            core.Document("2026-10", "CNY", D("66037.74")),
            core.Document("2026-10", "CNY", D("-6603.77")),  # an SLA adjustment's credit note
            core.Document("2026-10", "USD", D("1000.00")),
            core.Document("2026-09", "CNY", D("66037.74")),
        ]
        assert core.revenue_by_period(docs) == {
            ("2026-10", "CNY"): D("59433.97"),
            ("2026-10", "USD"): D("1000.00"),
            ("2026-09", "CNY"): D("66037.74"),
        }

    @pytest.mark.parametrize(
        ("now", "before", "expected"),
        [
            ("110", "100", D("0.1000")),
            ("90", "100", D("-0.1000")),
            ("5", "-10", D("1.5000")),
            ("1", "0", None),
        ],
    )
    def test_change(self, now: str, before: str, expected) -> None:
        assert core.change(D(now), D(before)) == expected


class TestDues:
    def test_overdue_and_the_next_thirty_days_with_something_to_pay(self) -> None:
        today = date(2026, 11, 27)
        dues = [
            core.Due(date(2026, 10, 15), D("100"), D("5")),
            core.Due(date(2026, 11, 15), D("0"), D("0")),  # paid
            core.Due(date(2026, 12, 27), D("100"), D("0")),  # day 30: in
            core.Due(date(2026, 12, 28), D("100"), D("0")),  # day 31: out
            core.Due(date(2026, 11, 1), D("0"), D("2.50")),  # the rent paid late: its penalty is owed
        ]
        got = core.dues_within(dues, today)
        assert [d.due for d in got] == [date(2026, 10, 15), date(2026, 11, 1), date(2026, 12, 27)]
        assert [d.overdue(today) for d in got] == [True, True, False]
        assert not core.Due(today, D("100"), D("0")).overdue(today)  # due today is not late yet
