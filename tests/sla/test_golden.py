"""Golden SLA cases: input intervals → expected capacity-time, availability and credit.

The fleet: two nodes of 8 GPUs each on one contract of 16 GPUs, RMB 140,000 a month, in Asia/Shanghai.
October 2026 has 31 days, so the contract promises 16 × 744 = 11,904 GPU-hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from computelease.sla.core import (
    EC2_LIKE_TIERS,
    ContractWindow,
    GpuInterval,
    MaintenanceWindow,
    SlaPolicy,
    SlaResult,
    compute_sla,
)

SH = ZoneInfo("Asia/Shanghai")
PERIOD = "2026-10"
NODES = {"n1": [f"n1-g{i}" for i in range(8)], "n2": [f"n2-g{i}" for i in range(8)]}
POLICY = SlaPolicy(
    target_pct=Decimal("99.9"),
    tiers=EC2_LIKE_TIERS,
    cap_pct=Decimal("100"),
    maintenance_allowance_hours=Decimal("4"),
    notice_hours=Decimal("72"),
)


def sh(day: int, hour: int = 0, month: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SH)


MONTH_START, MONTH_END = sh(1), sh(1, month=11)


def contract(**changes: object) -> ContractWindow:
    fields: dict[str, object] = {
        "start": sh(1, month=9),
        "end": None,
        "contracted_gpus": 16,
        "monthly_fee": Decimal("140000.00"),
        "contract_id": "C-1",
    }
    fields.update(changes)
    return ContractWindow(**fields)  # type: ignore[arg-type]


def allocated(nodes: dict[str, list[str]] = NODES, start: datetime = MONTH_START, end: datetime = MONTH_END):
    return [
        GpuInterval(gpu_id=g, node_id=node, start=start, end=end, state="allocated")
        for node, gpus in nodes.items()
        for g in gpus
    ]


def node_state(node: str, start: datetime, end: datetime, state: str, **extra: object) -> list[GpuInterval]:
    return [
        GpuInterval(gpu_id=g, node_id=node, start=start, end=end, state=state, **extra)  # type: ignore[arg-type]
        for g in NODES.get(node, [f"{node}-g{i}" for i in range(8)])
    ]


def assert_figures(result: SlaResult, **expected: str) -> None:
    got = {name: str(getattr(result, name)) for name in expected}
    assert got == expected


class TestCleanMonth:
    def test_full_delivery_earns_no_credit(self) -> None:
        result = compute_sla(POLICY, contract(), PERIOD, allocated())
        assert_figures(
            result,
            contracted_gpu_hours="11904.000000",
            delivered_gpu_hours="11904.000000",
            unavailable_gpu_hours="0.000000",
            availability_pct="100.0000",
            credit_pct="0",
            credit="0.00",
            period_fee="140000.00",
        )
        assert result.met_target
        assert result.evidence == ()
        assert result.incidents == ()


class TestSingleNodeOutage:
    def test_five_hours_of_one_node(self) -> None:
        outage = node_state("n1", sh(10, 2), sh(10, 7), "down", reason="XID 79", incident_id="INC-1")
        result = compute_sla(POLICY, contract(), PERIOD, allocated() + outage)
        # 8 GPUs × 5 h = 40 GPU-h; 11,864 / 11,904 = 99.66398 %: below 99.99, not below 99.0 → 10 %.
        assert_figures(
            result,
            delivered_gpu_hours="11864.000000",
            counted_gpu_hours="40.000000",
            excluded_gpu_hours="0.000000",
            availability_pct="99.6639",
            credit_pct="10",
            credit="14000.00",
        )
        assert not result.met_target
        assert [(e.gpu_id, e.start, e.end, e.gpu_hours) for e in result.evidence] == [
            (g, sh(10, 2), sh(10, 7), Decimal("5.000000")) for g in NODES["n1"]
        ]
        assert {(e.state, e.reason, e.incident_id, e.excluded) for e in result.evidence} == {
            ("down", "XID 79", "INC-1", False)
        }
        (incident,) = result.incidents
        assert incident.incident_id == "INC-1"
        assert incident.gpu_ids == tuple(NODES["n1"])
        assert (incident.start, incident.end) == (sh(10, 2), sh(10, 7))
        assert incident.counted_gpu_hours == Decimal("40.000000")

    def test_overlapping_and_repeated_reports_count_each_gpu_second_once(self) -> None:
        outage = node_state("n1", sh(10, 2), sh(10, 7), "down", reason="XID 79", incident_id="INC-1")
        second = GpuInterval(
            gpu_id="n1-g0",
            node_id="n1",
            start=sh(10, 4),
            end=sh(10, 9),
            state="unhealthy",
            reason="ECC DBE",
            incident_id="INC-2",
        )
        intervals = allocated() + outage + outage + [second]
        result = compute_sla(POLICY, contract(), PERIOD, intervals)
        # n1-g0 is lost from 02:00 to 09:00 (7 h), the other seven for 5 h: 42 GPU-h, not 40 + 5 + 40.
        assert result.counted_gpu_hours == Decimal("42.000000")
        g0 = [e for e in result.evidence if e.gpu_id == "n1-g0"]
        assert sum(e.gpu_hours for e in g0) == Decimal("7")
        # Down outranks unhealthy where the two overlap, so INC-2 owns only the two hours after INC-1.
        assert [(e.incident_id, e.start, e.end) for e in g0] == [
            ("INC-1", sh(10, 2), sh(10, 7)),
            ("INC-2", sh(10, 7), sh(10, 9)),
        ]
        assert compute_sla(POLICY, contract(), PERIOD, list(reversed(intervals))) == result

    def test_outage_across_the_month_boundary_is_split_at_local_midnight(self) -> None:
        late = sh(31, 22)
        early = sh(1, 3, month=11)
        outage = node_state("n1", late, early, "down", incident_id="INC-9")
        intervals = allocated(start=sh(1), end=sh(1, month=12)) + outage
        october = compute_sla(POLICY, contract(), "2026-10", intervals)
        november = compute_sla(POLICY, contract(), "2026-11", intervals)
        assert october.counted_gpu_hours == Decimal("16.000000")  # 22:00-24:00 local on 31 October
        assert november.counted_gpu_hours == Decimal("24.000000")  # 00:00-03:00 local on 1 November
        assert max(e.end for e in october.evidence) == datetime(2026, 10, 31, 16, tzinfo=UTC)
        assert min(e.start for e in november.evidence) == datetime(2026, 10, 31, 16, tzinfo=UTC)


class TestDegradedGpu:
    def test_eighty_percent_share_for_the_whole_month(self) -> None:
        slow = GpuInterval(
            gpu_id="n2-g3",
            node_id="n2",
            start=MONTH_START,
            end=MONTH_END,
            state="degraded",
            delivered_share=Decimal("0.80"),
        )
        result = compute_sla(POLICY, contract(), PERIOD, [*allocated(), slow])
        # 0.2 × 744 h = 148.8 GPU-h lost; 11,755.2 / 11,904 = 98.75 % → below 99.0 → 30 %.
        assert_figures(
            result,
            delivered_gpu_hours="11755.200000",
            counted_gpu_hours="148.800000",
            availability_pct="98.7500",
            credit_pct="30",
            credit="42000.00",
        )
        (evidence,) = result.evidence
        assert (evidence.gpu_id, evidence.state, evidence.delivered_share) == (
            "n2-g3",
            "degraded",
            Decimal("0.80"),
        )
        assert evidence.reason == "delivered share 0.80"
        assert evidence.gpu_hours == Decimal("148.800000")

    def test_a_reachable_gpu_that_is_not_measured_counts_in_full(self) -> None:
        result = compute_sla(
            POLICY, contract(), PERIOD, allocated() + node_state("n2", sh(3), sh(4), "healthy")
        )
        assert result.availability_pct == Decimal("100.0000")


class TestMaintenance:
    def window(self, start: datetime, end: datetime, notice: timedelta) -> MaintenanceWindow:
        return MaintenanceWindow(
            start=start,
            end=end,
            notice_given_at=start - notice,
            node_ids=frozenset({"n1"}),
            maintenance_id="M-1",
        )

    def run(self, start: datetime, end: datetime, notice: timedelta) -> SlaResult:
        work = node_state("n1", start, end, "maintenance", reason="firmware update")
        return compute_sla(POLICY, contract(), PERIOD, allocated() + work, [self.window(start, end, notice)])

    def test_announced_maintenance_is_excluded(self) -> None:
        result = self.run(sh(20, 1), sh(20, 4), timedelta(days=7))
        # 8 GPUs × 3 h = 24 GPU-h excluded: 11,880 / (11,904 − 24) = 100 %.
        assert_figures(
            result,
            delivered_gpu_hours="11880.000000",
            excluded_gpu_hours="24.000000",
            counted_gpu_hours="0.000000",
            availability_pct="100.0000",
            credit="0.00",
            maintenance_allowance_used_hours="3.000000",
        )
        assert {(e.excluded, e.maintenance, e.maintenance_id) for e in result.evidence} == {
            (True, "excluded", "M-1")
        }

    def test_late_notice_maintenance_is_counted(self) -> None:
        result = self.run(sh(20, 1), sh(20, 4), timedelta(hours=24))
        # 11,880 / 11,904 = 99.79839 % → 10 %.
        assert_figures(
            result,
            excluded_gpu_hours="0.000000",
            counted_gpu_hours="24.000000",
            availability_pct="99.7983",
            credit="14000.00",
            maintenance_allowance_used_hours="0.000000",
        )
        assert {(e.excluded, e.maintenance) for e in result.evidence} == {(False, "late_notice")}

    def test_notice_of_exactly_the_required_hours_is_enough(self) -> None:
        assert self.run(sh(20, 1), sh(20, 4), timedelta(hours=72)).counted_gpu_hours == Decimal("0.000000")
        one_second_short = timedelta(hours=72) - timedelta(seconds=1)
        assert self.run(sh(20, 1), sh(20, 4), one_second_short).counted_gpu_hours == Decimal("24.000000")

    def test_maintenance_of_exactly_the_allowance_is_all_excluded(self) -> None:
        result = self.run(sh(20, 1), sh(20, 5), timedelta(days=7))
        assert_figures(result, excluded_gpu_hours="32.000000", counted_gpu_hours="0.000000")

    def test_maintenance_beyond_the_allowance_is_counted(self) -> None:
        result = self.run(sh(20, 1), sh(20, 7), timedelta(days=7))
        # 4 h × 8 excluded, the last 2 h × 8 counted: 11,856 / (11,904 − 32) = 99.86523 % → 10 %.
        assert_figures(
            result,
            excluded_gpu_hours="32.000000",
            counted_gpu_hours="16.000000",
            availability_pct="99.8652",
            credit="14000.00",
            maintenance_allowance_used_hours="4.000000",
        )
        spans = sorted({(e.start, e.end, e.maintenance) for e in result.evidence})
        assert spans == [(sh(20, 1), sh(20, 5), "excluded"), (sh(20, 5), sh(20, 7), "over_allowance")]


class TestCreditCap:
    def test_a_hundred_percent_tier_is_cut_to_the_cap(self) -> None:
        policy = SlaPolicy(
            target_pct=Decimal("99.9"),
            tiers=EC2_LIKE_TIERS,
            cap_pct=Decimal("25"),
            notice_hours=Decimal("72"),
        )
        outage = node_state("n1", sh(5), sh(9), "down", incident_id="INC-3")
        result = compute_sla(policy, contract(), PERIOD, allocated() + outage)
        # 96 h × 8 = 768 GPU-h; 11,136 / 11,904 = 93.548 % → 100 % tier = 140,000, capped at 25 %.
        assert_figures(
            result,
            counted_gpu_hours="768.000000",
            availability_pct="93.5483",
            credit_pct="100",
            credit_cap="35000.00",
            credit="35000.00",
        )
        assert result.capped


class TestContractStartingMidMonth:
    def test_contracted_time_and_fee_are_prorated(self) -> None:
        start = sh(16)
        before = node_state("n1", sh(3), sh(4), "down", incident_id="INC-0")  # before the contract: ignored
        outage = node_state("n1", sh(20, 10), sh(20, 15), "down", incident_id="INC-4")
        result = compute_sla(POLICY, contract(start=start), PERIOD, allocated() + before + outage)
        # 16 days × 24 h × 16 GPUs = 6,144 GPU-h; fee 140,000 × 16 / 31 = 72,258.06;
        # 6,104 / 6,144 = 99.34896 % → 10 % of 72,258.06 = 7,225.806 → 7,225.81.
        assert_figures(
            result,
            contracted_gpu_hours="6144.000000",
            counted_gpu_hours="40.000000",
            availability_pct="99.3489",
            period_fee="72258.06",
            credit="7225.81",
        )
        assert result.service_start == datetime(2026, 10, 15, 16, tzinfo=UTC)
        assert [i.incident_id for i in result.incidents] == ["INC-4"]


class TestReplacementNode:
    def test_replacement_counts_from_the_moment_it_serves(self) -> None:
        n1_before = allocated({"n1": NODES["n1"]}, end=sh(12, 16))
        failure = node_state("n1", sh(12, 10), sh(12, 16), "down", reason="XID 79", incident_id="INC-7")
        n3 = allocated({"n3": [f"n3-g{i}" for i in range(8)]}, start=sh(12, 12))
        intervals = n1_before + allocated({"n2": NODES["n2"]}) + failure + n3
        result = compute_sla(POLICY, contract(), PERIOD, intervals)
        # Lost from 10:00 until n3 serves at 12:00: 2 h × 8; after that n3 covers n1 (24 GPUs, 16 owed).
        assert_figures(result, counted_gpu_hours="16.000000", availability_pct="99.8655", credit="14000.00")
        assert {(e.start, e.end) for e in result.evidence} == {(sh(12, 10), sh(12, 12))}
        assert result.delivered_gpu_hours <= result.contracted_gpu_hours


class TestPeriodBoundsAcrossZones:
    @pytest.mark.parametrize(
        ("tz", "period", "start", "end", "hours"),
        [
            (
                "Asia/Shanghai",
                "2026-03",
                datetime(2026, 2, 28, 16, tzinfo=UTC),
                datetime(2026, 3, 31, 16, tzinfo=UTC),
                744,
            ),
            # Berlin springs forward on 29 March 2026: the month is an hour short.
            (
                "Europe/Berlin",
                "2026-03",
                datetime(2026, 2, 28, 23, tzinfo=UTC),
                datetime(2026, 3, 31, 22, tzinfo=UTC),
                743,
            ),
            # ... and falls back on 25 October 2026: an hour long.
            (
                "Europe/Berlin",
                "2026-10",
                datetime(2026, 9, 30, 22, tzinfo=UTC),
                datetime(2026, 10, 31, 23, tzinfo=UTC),
                745,
            ),
            (
                "Asia/Shanghai",
                "2026-10",
                datetime(2026, 9, 30, 16, tzinfo=UTC),
                datetime(2026, 10, 31, 16, tzinfo=UTC),
                744,
            ),
        ],
    )
    def test_clean_month_of_eight_gpus(
        self, tz: str, period: str, start: datetime, end: datetime, hours: int
    ) -> None:
        window = contract(tz=tz, contracted_gpus=8, start=datetime(2026, 1, 1, tzinfo=UTC))
        gpus = {"n1": NODES["n1"]}
        intervals = allocated(
            gpus, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2027, 1, 1, tzinfo=UTC)
        )
        result = compute_sla(POLICY, window, period, intervals)
        assert (result.period_start, result.period_end) == (start, end)
        assert result.contracted_gpu_hours == Decimal(8 * hours)
        assert result.availability_pct == Decimal("100.0000")
