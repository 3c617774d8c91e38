from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computelease.sla.core import (
    EC2_LIKE_TIERS,
    STATES,
    ContractWindow,
    CreditTier,
    GpuInterval,
    MaintenanceWindow,
    SlaInputError,
    SlaPolicy,
    SlaResult,
    compute_sla,
    credit_for,
    month_bounds,
    period_of,
)

# February 2026 in UTC: 28 days, 672 hours, no time-zone arithmetic in the way of the sums.
T0 = datetime(2026, 2, 1, tzinfo=UTC)
PERIOD = "2026-02"
HOURS = 672
POLICY = SlaPolicy(tiers=EC2_LIKE_TIERS, maintenance_allowance_hours=Decimal("4"))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def window(gpus: int = 2, fee: str = "1000.00", **changes: object) -> ContractWindow:
    fields: dict[str, object] = {
        "start": datetime(2026, 1, 1, tzinfo=UTC),
        "end": None,
        "contracted_gpus": gpus,
        "monthly_fee": Decimal(fee),
        "tz": "UTC",
    }
    fields.update(changes)
    return ContractWindow(**fields)  # type: ignore[arg-type]


def iv(
    gpu: str, start: float, end: float, state: str = "healthy", node: str = "n1", **extra: object
) -> GpuInterval:
    return GpuInterval(gpu_id=gpu, node_id=node, start=at(start), end=at(end), state=state, **extra)  # type: ignore[arg-type]


def full(gpu: str, state: str = "allocated", node: str = "n1", **extra: object) -> GpuInterval:
    return iv(gpu, 0, HOURS, state, node, **extra)


class TestPeriods:
    def test_december_rolls_into_next_year(self) -> None:
        assert month_bounds("2026-12", "Asia/Shanghai") == (
            datetime(2026, 11, 30, 16, tzinfo=UTC),
            datetime(2026, 12, 31, 16, tzinfo=UTC),
        )

    def test_default_zone_is_shanghai(self) -> None:
        assert month_bounds("2026-10")[0] == datetime(2026, 9, 30, 16, tzinfo=UTC)

    @pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-1", "202610", "October", "", None])
    def test_malformed_period_says_what_to_write(self, bad: object) -> None:
        with pytest.raises(SlaInputError, match="YYYY-MM") as info:
            month_bounds(bad)  # type: ignore[arg-type]
        assert info.value.status == 422

    def test_unknown_zone(self) -> None:
        with pytest.raises(SlaInputError, match="time zone"):
            month_bounds("2026-10", "Mars/Olympus")

    def test_period_of_uses_local_midnight(self) -> None:
        assert period_of(datetime(2026, 10, 31, 15, 59, tzinfo=UTC)) == "2026-10"
        assert period_of(datetime(2026, 10, 31, 16, 0, tzinfo=UTC)) == "2026-11"
        assert period_of(datetime(2026, 10, 31, 16, 0, tzinfo=UTC), "Europe/Berlin") == "2026-10"


class TestCredit:
    FEE = Decimal("1000.00")

    @pytest.mark.parametrize(
        ("availability", "pct", "amount"),
        [
            ("100", "0", "0.00"),
            ("99.99", "0", "0.00"),
            ("99.989999", "10", "100.00"),
            ("99.0", "10", "100.00"),
            ("98.999", "30", "300.00"),
            ("95.0", "30", "300.00"),
            ("94.9999", "100", "1000.00"),
            ("0", "100", "1000.00"),
        ],
    )
    def test_tiers_are_strictly_below(self, availability: str, pct: str, amount: str) -> None:
        credit = credit_for(POLICY, Decimal(availability), self.FEE)
        assert (credit.credit_pct, credit.amount) == (Decimal(pct), Decimal(amount))

    def test_exact_fraction_just_below_a_threshold_earns_the_tier(self) -> None:
        assert credit_for(POLICY, Fraction(9999, 100) - Fraction(1, 10**12), self.FEE).credit_pct == 10

    def test_tiers_are_data_in_any_order_or_as_pairs(self) -> None:
        policy = SlaPolicy(tiers=[("90", "50"), CreditTier(Decimal("99.5"), Decimal("5"))])
        assert policy.tiers == (
            CreditTier(Decimal("90"), Decimal("50")),
            CreditTier(Decimal("99.5"), Decimal("5")),
        )
        assert credit_for(policy, Decimal("95"), self.FEE).amount == Decimal("50.00")
        assert credit_for(policy, Decimal("89"), self.FEE).amount == Decimal("500.00")

    def test_cap(self) -> None:
        policy = SlaPolicy(tiers=EC2_LIKE_TIERS, cap_pct=Decimal("20"))
        credit = credit_for(policy, Decimal("98"), self.FEE)
        assert (credit.amount, credit.cap, credit.capped) == (Decimal("200.00"), Decimal("200.00"), True)
        assert not credit_for(policy, Decimal("99.5"), self.FEE).capped

    def test_amount_rounds_half_up_to_the_fen(self) -> None:
        assert credit_for(POLICY, Decimal("99.5"), Decimal("0.05")).amount == Decimal("0.01")
        assert credit_for(POLICY, Decimal("99.5"), Decimal("0.04")).amount == Decimal("0.00")

    def test_no_tiers_no_credit(self) -> None:
        assert credit_for(SlaPolicy(), Decimal("0"), self.FEE).amount == Decimal("0.00")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"tiers": [("99", "10"), ("99.0", "30")]},
            {"tiers": [("101", "10")]},
            {"tiers": [("99", "-1")]},
            {"cap_pct": "-1"},
            {"target_pct": "100.1"},
            {"maintenance_allowance_hours": "-2"},
            {"notice_hours": "nan"},
            {"tiers": ["99"]},
        ],
    )
    def test_bad_policy_is_refused(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(SlaInputError):
            SlaPolicy(**kwargs)  # type: ignore[arg-type]


class TestInputs:
    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(SlaInputError, match="timezone-aware"):
            GpuInterval(gpu_id="g", node_id="n", start=datetime(2026, 2, 1), end=datetime(2026, 2, 2))

    def test_unknown_state(self) -> None:
        with pytest.raises(SlaInputError, match="unknown GPU state"):
            iv("g", 0, 1, "idle")

    def test_interval_ending_before_it_starts(self) -> None:
        with pytest.raises(SlaInputError, match="ends before"):
            iv("g", 2, 1)

    def test_money_from_float_is_refused(self) -> None:
        with pytest.raises(SlaInputError, match="float"):
            ContractWindow(start=T0, end=None, contracted_gpus=1, monthly_fee=0.5)  # type: ignore[arg-type]
        with pytest.raises(SlaInputError, match="float"):
            compute_sla(POLICY, window(), PERIOD, [], period_fee=12.5)  # type: ignore[arg-type]

    def test_node_ids_as_one_string_is_refused(self) -> None:
        with pytest.raises(SlaInputError, match="node_ids"):
            MaintenanceWindow(start=at(0), end=at(1), notice_given_at=None, node_ids="n1")  # type: ignore[arg-type]

    def test_contract_ending_before_it_starts(self) -> None:
        with pytest.raises(SlaInputError, match="before its start"):
            window(start=at(5), end=at(1))

    def test_float_shares_are_read_at_their_shortest_repr(self) -> None:
        assert iv("g", 0, 1, delivered_share=0.8).delivered_share == Decimal("0.8")


class TestMerging:
    def test_health_outside_the_allocation_is_ignored(self) -> None:
        # g1 served this contract only for the first half; its later failure belongs to someone else.
        intervals = [
            full("g0"),
            iv("g1", 0, HOURS / 2, "allocated"),
            iv("g1", HOURS / 2, HOURS, "down", incident_id="elsewhere"),
            iv("g1", 0, HOURS, "healthy"),
            iv("g2", HOURS / 2, HOURS, "allocated"),
        ]
        result = compute_sla(POLICY, window(), PERIOD, intervals)
        assert result.availability_pct == Decimal("100.0000")
        assert result.incidents == ()

    def test_healthy_reports_outside_the_allocation_deliver_nothing(self) -> None:
        intervals = [full("g0"), iv("g1", 0, HOURS / 2, "allocated"), full("g1", "healthy")]
        result = compute_sla(POLICY, window(), PERIOD, intervals)
        assert result.availability_pct == Decimal("75.0000")
        assert {(e.state, e.start) for e in result.evidence} == {("shortfall", at(HOURS / 2))}

    def test_without_allocated_records_a_gpu_counts_where_its_records_are(self) -> None:
        result = compute_sla(
            POLICY, window(gpus=1), PERIOD, [iv("g0", 0, HOURS / 2), iv("g0", HOURS / 2, HOURS)]
        )
        assert result.availability_pct == Decimal("100.0000")

    def test_the_least_delivery_wins_an_overlap(self) -> None:
        intervals = [
            full("g0", "healthy", delivered_share=Decimal("0.9")),
            iv("g0", 10, 20, "degraded", delivered_share=Decimal("0.5")),
            iv("g0", 15, 30, "down"),
        ]
        result = compute_sla(POLICY, window(gpus=1), PERIOD, intervals)
        # 0.1 × (672 − 20) + 0.5 × 5 + 1 × 15 = 65.2 + 2.5 + 15
        assert result.counted_gpu_hours == Decimal("82.700000")
        assert [(e.state, e.start, e.end) for e in result.evidence] == [
            ("healthy", at(0), at(10)),
            ("degraded", at(10), at(15)),
            ("down", at(15), at(30)),
            ("healthy", at(30), at(HOURS)),
        ]

    def test_share_above_one_counts_as_one_and_no_share_counts_as_one(self) -> None:
        # A fast card must not make up for a slow one: 1.3 counts as 1, so 0.5 of a GPU is lost.
        intervals = [
            full("g0", delivered_share=Decimal("1.3")),
            full("g1", "degraded", delivered_share="0.5"),
        ]
        result = compute_sla(POLICY, window(), PERIOD, intervals)
        assert result.counted_gpu_hours == Decimal(HOURS) / 2
        unmeasured = compute_sla(POLICY, window(), PERIOD, [full("g0"), full("g1", "healthy")])
        assert unmeasured.delivered_gpu_hours == unmeasured.contracted_gpu_hours == Decimal(2 * HOURS)

    def test_records_outside_the_month_are_cut(self) -> None:
        intervals = [iv("g0", -100, HOURS + 100), iv("g0", -50, 2, "down")]
        result = compute_sla(POLICY, window(gpus=1), PERIOD, intervals)
        assert result.counted_gpu_hours == Decimal("2.000000")
        assert result.evidence[0].start == T0


class TestShortfallAndSpares:
    def test_missing_allocation_is_evidence_too(self) -> None:
        result = compute_sla(POLICY, window(gpus=2), PERIOD, [full("g0")])
        assert result.availability_pct == Decimal("50.0000")
        (evidence,) = result.evidence
        assert (evidence.gpu_id, evidence.state, evidence.gpu_hours) == (None, "shortfall", Decimal(HOURS))

    def test_spare_gpus_never_push_delivery_above_the_contract(self) -> None:
        intervals = [full(f"g{i}") for i in range(3)]
        result = compute_sla(POLICY, window(gpus=2), PERIOD, intervals)
        assert result.delivered_gpu_hours == result.contracted_gpu_hours
        assert result.evidence == ()

    def test_spares_cover_failures_up_to_their_number(self) -> None:
        intervals = [full(f"g{i}") for i in range(3)] + [iv("g0", 0, 10, "down"), iv("g1", 0, 10, "down")]
        result = compute_sla(POLICY, window(gpus=2), PERIOD, intervals)
        # Two lost, one spare: one GPU-worth lost for 10 h, shared by the two causes.
        assert result.counted_gpu_hours == Decimal("10.000000")
        assert [e.gpu_hours for e in result.evidence] == [Decimal("5.000000")] * 2

    def test_a_slow_gpu_costs_only_while_no_spare_covers_it(self) -> None:
        intervals = [
            full("g0", "degraded", delivered_share=Decimal("0.5")),
            full("g1"),
            iv("g2", 0, 100, "allocated"),
            iv("g2", 300, 400, "allocated"),
        ]
        result = compute_sla(POLICY, window(gpus=2), PERIOD, intervals)
        assert [(e.gpu_id, e.start, e.end, e.gpu_hours) for e in result.evidence] == [
            ("g0", at(100), at(300), Decimal("100.000000")),
            ("g0", at(400), at(HOURS), Decimal("136.000000")),
        ]
        assert result.counted_gpu_hours == Decimal("236.000000")


class TestMaintenanceRules:
    def announced(self, start: float, end: float, **extra: object) -> MaintenanceWindow:
        return MaintenanceWindow(start=at(start), end=at(end), notice_given_at=at(start - 100), **extra)  # type: ignore[arg-type]

    def test_a_window_on_one_node_does_not_excuse_another(self) -> None:
        intervals = [full("a", node="n1"), full("b", node="n2"), iv("a", 5, 7, "maintenance", node="n1")]
        intervals.append(iv("b", 5, 7, "down", node="n2"))
        result = compute_sla(POLICY, window(), PERIOD, intervals, [self.announced(5, 7, node_ids={"n1"})])
        assert (result.excluded_gpu_hours, result.counted_gpu_hours) == (
            Decimal("2.000000"),
            Decimal("2.000000"),
        )

    def test_shortfall_is_excused_only_by_a_window_on_every_node(self) -> None:
        intervals = [iv("a", 0, 5), iv("a", 7, HOURS)]
        scoped = compute_sla(
            POLICY, window(gpus=1), PERIOD, intervals, [self.announced(5, 7, node_ids={"n1"})]
        )
        everywhere = compute_sla(POLICY, window(gpus=1), PERIOD, intervals, [self.announced(5, 7)])
        assert scoped.counted_gpu_hours == Decimal("2.000000")
        assert everywhere.excluded_gpu_hours == Decimal("2.000000")

    def test_maintenance_never_hides_a_failure_that_a_spare_could_have_covered(self) -> None:
        # Two owed, three allocated: one in excluded maintenance, one failed. The spare is taken to
        # cover the maintenance, so the failure counts in full.
        intervals = [full("a"), full("b", node="n2"), full("c", node="n3")]
        intervals += [iv("a", 5, 7, "maintenance"), iv("b", 5, 7, "down", node="n2")]
        result = compute_sla(POLICY, window(), PERIOD, intervals, [self.announced(5, 7, node_ids={"n1"})])
        assert (result.excluded_gpu_hours, result.counted_gpu_hours) == (
            Decimal("0.000000"),
            Decimal("2.000000"),
        )

    def test_overlapping_announced_windows_use_the_allowance_once(self) -> None:
        intervals = [full("a"), iv("a", 10, 14, "maintenance")]
        windows = [self.announced(10, 13, maintenance_id="x"), self.announced(11, 14, maintenance_id="y")]
        result = compute_sla(POLICY, window(gpus=1), PERIOD, intervals, windows)
        assert result.maintenance_allowance_used_hours == Decimal("4.000000")
        assert result.counted_gpu_hours == Decimal("0.000000")

    def test_allowance_is_used_in_time_order(self) -> None:
        intervals = [full("a"), iv("a", 10, 13, "maintenance"), iv("a", 100, 103, "maintenance")]
        windows = [
            self.announced(100, 103, maintenance_id="late"),
            self.announced(10, 13, maintenance_id="early"),
        ]
        result = compute_sla(POLICY, window(gpus=1), PERIOD, intervals, windows)
        assert {(e.maintenance_id, e.maintenance): e.gpu_hours for e in result.evidence} == {
            ("early", "excluded"): Decimal("3.000000"),
            ("late", "excluded"): Decimal("1.000000"),
            ("late", "over_allowance"): Decimal("2.000000"),
        }

    def test_a_window_never_announced_is_late(self) -> None:
        intervals = [full("a"), iv("a", 10, 12, "maintenance")]
        unannounced = MaintenanceWindow(start=at(10), end=at(12), notice_given_at=None)
        result = compute_sla(POLICY, window(gpus=1), PERIOD, intervals, [unannounced])
        assert result.counted_gpu_hours == Decimal("2.000000")
        assert result.evidence[0].maintenance == "late_notice"

    def test_everything_excluded_reads_as_full_availability(self) -> None:
        intervals = [iv("a", 0, HOURS, "maintenance")]
        policy = replace(POLICY, maintenance_allowance_hours=Decimal(HOURS))
        result = compute_sla(policy, window(gpus=1), PERIOD, intervals, [self.announced(-1, HOURS + 1)])
        assert result.availability_pct == Decimal("100.0000")
        assert result.delivered_gpu_hours == Decimal("0.000000")


class TestWindowAndFee:
    def test_as_of_stops_the_contracted_clock(self) -> None:
        result = compute_sla(POLICY, window(gpus=1), PERIOD, [iv("a", 0, 24)], as_of=at(24))
        assert result.contracted_gpu_hours == Decimal("24.000000")
        assert result.availability_pct == Decimal("100.0000")
        assert result.period_fee == Decimal("1000.00")  # the fee is the month's, not the elapsed part's

    def test_contract_ending_mid_month(self) -> None:
        result = compute_sla(POLICY, window(gpus=1, end=at(7 * 24)), PERIOD, [full("a")])
        assert result.contracted_gpu_hours == Decimal("168.000000")
        assert result.period_fee == Decimal("250.00")
        assert result.service_end == at(7 * 24)

    def test_contract_outside_the_month(self) -> None:
        result = compute_sla(POLICY, window(gpus=4, start=at(HOURS + 1)), PERIOD, [full("a")])
        assert (result.contracted_gpu_hours, result.availability_pct) == (
            Decimal("0.000000"),
            Decimal("100.0000"),
        )
        assert (result.period_fee, result.credit, result.service_start) == (
            Decimal("0.00"),
            Decimal("0.00"),
            None,
        )

    def test_period_fee_override(self) -> None:
        result = compute_sla(POLICY, window(gpus=1), PERIOD, [iv("a", 0, 10)], period_fee=Decimal("333.333"))
        assert (result.period_fee, result.credit_pct, result.credit) == (
            Decimal("333.33"),
            Decimal("100"),
            Decimal("333.33"),
        )

    def test_displayed_availability_is_truncated_so_it_agrees_with_the_tier(self) -> None:
        # 241.944192 s lost of 2,419,200 s is 99.989999 %: rounding half-up would print 99.9900, yet it
        # earns the tier below 99.99.
        down = GpuInterval(
            gpu_id="a", node_id="n1", start=T0, end=T0 + timedelta(microseconds=241_944_192), state="down"
        )
        result = compute_sla(POLICY, window(gpus=1), PERIOD, [full("a"), down])
        assert result.availability_pct == Decimal("99.9899")
        assert result.credit_pct == Decimal("10")
        assert not result.met_target or POLICY.target_pct <= Decimal("99.9899")

    def test_to_dict_is_json_for_the_cli_and_api(self) -> None:
        result = compute_sla(
            POLICY, window(gpus=1), PERIOD, [full("a"), iv("a", 1, 2, "down", incident_id="I")]
        )
        data = json.loads(json.dumps(result.to_dict()))
        assert data["availability_pct"] == str(result.availability_pct)
        assert data["credit"] == "100.00"
        assert data["currency"] == "CNY"
        assert data["evidence"][0]["incident_id"] == "I"
        assert data["evidence"][0]["start"] == "2026-02-01T01:00:00+00:00"
        assert data["incidents"][0]["gpu_ids"] == ["a"]


# ------------------------------------------------------------------------------------------ invariants

GPUS = [("g0", "n0"), ("g1", "n0"), ("g2", "n1"), ("g3", "n1")]
MINUTES = HOURS * 60
# Decimals built from integers: hypothesis's own decimals strategy costs more than the SLA it feeds.
shares = st.none() | st.integers(0, 150).map(lambda n: Decimal(n) / 100)


@st.composite
def intervals_st(draw: st.DrawFn) -> GpuInterval:
    gpu, node = draw(st.sampled_from(GPUS))
    start = draw(st.integers(-600, MINUTES + 600))
    length = draw(st.integers(0, MINUTES // 2))
    return GpuInterval(
        gpu_id=gpu,
        node_id=node,
        start=T0 + timedelta(minutes=start),
        end=T0 + timedelta(minutes=start + length),
        state=draw(st.sampled_from(sorted(STATES))),
        delivered_share=draw(shares),
        incident_id=draw(st.none() | st.sampled_from(["i1", "i2"])),
    )


@st.composite
def maintenance_st(draw: st.DrawFn) -> MaintenanceWindow:
    start = draw(st.integers(-600, MINUTES))
    lead = draw(st.none() | st.integers(0, 200 * 60))
    return MaintenanceWindow(
        start=T0 + timedelta(minutes=start),
        end=T0 + timedelta(minutes=start + draw(st.integers(0, 24 * 60))),
        notice_given_at=None if lead is None else T0 + timedelta(minutes=start - lead),
        node_ids=draw(st.none() | st.sampled_from([frozenset({"n0"}), frozenset({"n1"})])),
        maintenance_id=draw(st.sampled_from(["m1", "m2", None])),
    )


pct = st.integers(0, 10_000).map(lambda n: Decimal(n) / 100)
policies = st.builds(
    SlaPolicy,
    target_pct=pct,
    tiers=st.lists(st.tuples(pct, pct), unique_by=lambda t: t[0], max_size=4),
    cap_pct=st.integers(0, 150).map(Decimal),
    maintenance_allowance_hours=st.integers(0, 12),
    notice_hours=st.integers(0, 96),
)


@st.composite
def contracts_st(draw: st.DrawFn) -> ContractWindow:
    start = T0 + timedelta(minutes=draw(st.integers(-MINUTES, MINUTES)))
    length = draw(st.none() | st.integers(0, 2 * MINUTES))
    return ContractWindow(
        start=start,
        end=None if length is None else start + timedelta(minutes=length),
        contracted_gpus=draw(st.integers(0, 5)),
        monthly_fee=Decimal(draw(st.integers(0, 10**9))) / 100,
        tz=draw(st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin"])),
    )


scenarios = st.tuples(
    policies, contracts_st(), st.lists(intervals_st(), max_size=12), st.lists(maintenance_st(), max_size=3)
)
fast = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(scenario: tuple[SlaPolicy, ContractWindow, list[GpuInterval], list[MaintenanceWindow]]) -> SlaResult:
    policy, contract, intervals, windows = scenario
    return compute_sla(policy, contract, PERIOD, intervals, windows)


class TestInvariants:
    @fast
    @given(scenarios)
    def test_capacity_time_is_conserved_and_credit_bounded(self, scenario) -> None:  # type: ignore[no-untyped-def]
        result = run(scenario)
        assert Decimal(0) <= result.delivered_gpu_hours <= result.contracted_gpu_hours
        assert result.contracted_gpu_hours == (
            result.delivered_gpu_hours + result.excluded_gpu_hours + result.counted_gpu_hours
        )
        assert result.unavailable_gpu_hours == result.excluded_gpu_hours + result.counted_gpu_hours
        assert min(result.excluded_gpu_hours, result.counted_gpu_hours) >= 0
        assert Decimal(0) <= result.availability_pct <= Decimal(100)
        evidence = sum((e.gpu_hours for e in result.evidence), Decimal(0))
        assert abs(evidence - result.unavailable_gpu_hours) <= Decimal("0.000001") * (
            len(result.evidence) + 3
        )
        excluded = sum((e.gpu_hours for e in result.evidence if e.excluded), Decimal(0))
        assert abs(excluded - result.excluded_gpu_hours) <= Decimal("0.000001") * (len(result.evidence) + 3)
        # ... and the credit never exceeds its cap or its tier.
        policy = scenario[0]
        assert Decimal(0) <= result.credit <= result.credit_cap
        assert result.credit_cap <= result.period_fee * policy.cap_pct / 100 + Decimal("0.005")
        assert result.credit <= result.period_fee * result.credit_pct / 100 + Decimal("0.005")

    @fast
    @given(scenarios, st.randoms(use_true_random=False))
    def test_any_order_gives_the_same_result(self, scenario, rnd) -> None:  # type: ignore[no-untyped-def]
        policy, contract, intervals, windows = scenario
        shuffled = intervals + intervals[: len(intervals) // 2]  # repeated reports change nothing either
        rnd.shuffle(shuffled)
        windows_shuffled = list(windows)
        rnd.shuffle(windows_shuffled)
        assert compute_sla(policy, contract, PERIOD, shuffled, windows_shuffled) == run(scenario)

    @fast
    @given(scenarios, st.data())
    def test_worse_service_never_raises_availability_or_lowers_credit(self, scenario, data) -> None:  # type: ignore[no-untyped-def]
        policy, contract, intervals, windows = scenario
        if not intervals:
            return
        victim = data.draw(st.sampled_from(intervals))
        # A failure inside time the GPU already had on record: it can only take delivery away.
        failure = replace(
            victim,
            state=data.draw(st.sampled_from(["down", "unhealthy", "degraded"])),
            delivered_share=Decimal("0.3"),
        )
        before = run(scenario)
        after = compute_sla(policy, contract, PERIOD, [*intervals, failure], windows)
        assert after.delivered_gpu_hours <= before.delivered_gpu_hours
        assert after.availability_pct <= before.availability_pct
        assert after.credit >= before.credit

    @fast
    @given(policies, pct, pct, st.integers(0, 10**9).map(lambda n: Decimal(n) / 100))
    def test_credit_is_monotone_in_availability(self, policy, a, b, fee) -> None:  # type: ignore[no-untyped-def]
        low, high = sorted((a, b))
        assert credit_for(policy, low, fee).amount >= credit_for(policy, high, fee).amount
