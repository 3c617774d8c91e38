from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from computelease.telemetry.health import (
    IGNORED_XIDS,
    GpuReading,
    Health,
    HealthInputError,
    HealthPolicy,
    classify_gpu,
    classify_node,
    missed_intervals,
)

GPU = "GPU-0"
CLEAN = GpuReading(
    gpu_id=GPU, ecc_dbe_volatile=0, ecc_dbe_aggregate=0, remap_pending=False, remap_failed=False
)


def reading(**changes: object) -> GpuReading:
    fields = {
        "gpu_id": GPU,
        "ecc_dbe_volatile": 0,
        "ecc_dbe_aggregate": 0,
        "remap_pending": False,
        "remap_failed": False,
    }
    fields.update(changes)
    return GpuReading(**fields)  # type: ignore[arg-type]


def codes(health) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.code for r in health.reasons]


class TestHealthy:
    def test_clean_reading(self) -> None:
        health = classify_gpu(GPU, CLEAN, CLEAN)
        assert (health.state, health.reasons, health.drain, health.summary) == (
            Health.HEALTHY,
            (),
            False,
            "healthy",
        )

    def test_unsupported_counters_never_count_against_a_card(self) -> None:
        blank = GpuReading(gpu_id=GPU)
        assert classify_gpu(GPU, blank, blank).state is Health.HEALTHY


class TestXid:
    @pytest.mark.parametrize("xid", sorted(IGNORED_XIDS))
    def test_application_xids_are_ignored(self, xid: int) -> None:
        assert classify_gpu(GPU, reading(xids=(xid,)), CLEAN).state is Health.HEALTHY

    def test_the_ignored_set_is_the_device_plugins(self) -> None:
        assert frozenset({13, 31, 43, 45, 68}) == IGNORED_XIDS

    @pytest.mark.parametrize(
        ("xid", "drain"), [(79, True), (48, True), (94, True), (119, False), (62, False)]
    )
    def test_other_xids_are_critical(self, xid: int, drain: bool) -> None:
        health = classify_gpu(GPU, reading(xids=(xid,)), CLEAN)
        assert health.state is Health.UNHEALTHY
        assert [(r.code, r.detail) for r in health.reasons] == [("xid", f"XID {xid}")]
        assert health.drain is drain

    def test_only_the_critical_xids_are_reasons_each_once(self) -> None:
        health = classify_gpu(GPU, reading(xids=(13, 79, 43, 79, 31, 74)), CLEAN)
        assert [r.detail for r in health.reasons] == ["XID 74", "XID 79"]

    def test_policy_can_ignore_more(self) -> None:
        policy = HealthPolicy(ignored_xids=IGNORED_XIDS | {119})
        assert classify_gpu(GPU, reading(xids=(119,)), CLEAN, policy=policy).state is Health.HEALTHY

    def test_xids_must_be_integers(self) -> None:
        with pytest.raises(HealthInputError, match="integers"):
            reading(xids=("79",))


class TestEcc:
    def test_a_new_uncorrected_error_makes_the_gpu_unhealthy(self) -> None:
        health = classify_gpu(GPU, reading(ecc_dbe_aggregate=3), reading(ecc_dbe_aggregate=2))
        assert health.state is Health.UNHEALTHY
        assert [(r.code, r.detail) for r in health.reasons] == [
            ("ecc_dbe", "1 new uncorrected (DBE) ECC error(s)")
        ]

    def test_old_errors_are_not_new(self) -> None:
        old = reading(ecc_dbe_aggregate=2, ecc_dbe_volatile=1)
        assert classify_gpu(GPU, old, old).state is Health.HEALTHY

    def test_without_a_previous_reading_the_counters_are_the_baseline(self) -> None:
        assert classify_gpu(GPU, reading(ecc_dbe_aggregate=5), None).state is Health.HEALTHY

    def test_volatile_counter_reset_by_a_driver_reload_counts_what_came_after(self) -> None:
        before = reading(ecc_dbe_volatile=4, ecc_dbe_aggregate=None)
        assert (
            classify_gpu(GPU, reading(ecc_dbe_volatile=0, ecc_dbe_aggregate=None), before).state
            is Health.HEALTHY
        )
        after = classify_gpu(GPU, reading(ecc_dbe_volatile=2, ecc_dbe_aggregate=None), before)
        assert after.reasons[0].detail.startswith("2 new")

    def test_a_counter_unsupported_on_either_side_is_skipped(self) -> None:
        health = classify_gpu(
            GPU, reading(ecc_dbe_aggregate=9, ecc_dbe_volatile=None), reading(ecc_dbe_aggregate=None)
        )
        assert health.state is Health.HEALTHY

    def test_negative_counts_are_malformed(self) -> None:
        with pytest.raises(HealthInputError, match="ecc_dbe_volatile"):
            reading(ecc_dbe_volatile=-1)


class TestRowRemap:
    @pytest.mark.parametrize(
        ("field", "code"), [("remap_pending", "remap_pending"), ("remap_failed", "remap_failed")]
    )
    def test_pending_or_failed_remap_is_unhealthy(self, field: str, code: str) -> None:
        health = classify_gpu(GPU, reading(**{field: True}), CLEAN)
        assert (health.state, codes(health)) == (Health.UNHEALTHY, [code])

    def test_unsupported_remap_is_not_a_fault(self) -> None:
        assert (
            classify_gpu(GPU, reading(remap_pending=None, remap_failed=None), CLEAN).state is Health.HEALTHY
        )


class TestDegraded:
    POLICY = HealthPolicy(degraded_below_share=Decimal("0.9"))

    def test_below_the_contract_threshold(self) -> None:
        health = classify_gpu(GPU, CLEAN, CLEAN, measured_share=Decimal("0.80"), policy=self.POLICY)
        assert health.state is Health.DEGRADED
        assert health.summary == "throughput share 0.80 below 0.9"

    def test_at_the_threshold_is_healthy(self) -> None:
        assert classify_gpu(GPU, CLEAN, CLEAN, measured_share=0.9, policy=self.POLICY).state is Health.HEALTHY

    def test_no_measurement_or_no_threshold(self) -> None:
        assert classify_gpu(GPU, CLEAN, CLEAN, policy=self.POLICY).state is Health.HEALTHY
        assert classify_gpu(GPU, CLEAN, CLEAN, measured_share=Decimal("0.1")).state is Health.HEALTHY

    def test_unhealthy_outranks_degraded_and_keeps_both_reasons(self) -> None:
        health = classify_gpu(
            GPU, reading(xids=(79,)), CLEAN, measured_share=Decimal("0.5"), policy=self.POLICY
        )
        assert (health.state, codes(health)) == (Health.UNHEALTHY, ["xid", "throughput"])

    def test_malformed_share(self) -> None:
        with pytest.raises(HealthInputError, match="share"):
            classify_gpu(GPU, CLEAN, CLEAN, measured_share="fast", policy=self.POLICY)  # type: ignore[arg-type]


class TestMissingAndDown:
    def test_gpu_missing_from_the_heartbeat(self) -> None:
        health = classify_gpu(GPU, None, CLEAN)
        assert (health.state, codes(health)) == (Health.UNHEALTHY, ["missing"])

    def test_down_after_the_configured_missed_intervals(self) -> None:
        policy = HealthPolicy(down_after_missed=3)
        assert classify_gpu(GPU, CLEAN, CLEAN, missed=2, policy=policy).state is Health.HEALTHY
        health = classify_gpu(GPU, CLEAN, CLEAN, missed=3, policy=policy)
        assert (health.state, health.summary) == (Health.DOWN, "no heartbeat for 3 intervals")

    @pytest.mark.parametrize(
        ("elapsed", "missed"),
        [
            (timedelta(0), 0),
            (timedelta(seconds=-5), 0),
            (timedelta(seconds=30), 0),  # the next beat is due now, not late
            (timedelta(seconds=30, microseconds=1), 1),
            (timedelta(seconds=90), 2),
            (timedelta(seconds=90, microseconds=1), 3),
        ],
    )
    def test_missed_intervals(self, elapsed: timedelta, missed: int) -> None:
        seen = datetime(2026, 10, 1, tzinfo=UTC)
        assert missed_intervals(seen, seen + elapsed, 30) == missed
        assert missed_intervals(seen, seen + elapsed, timedelta(seconds=30)) == missed

    def test_interval_must_be_positive(self) -> None:
        with pytest.raises(HealthInputError):
            missed_intervals(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), 0)

    def test_policy_needs_at_least_one_missed_interval(self) -> None:
        with pytest.raises(HealthInputError):
            HealthPolicy(down_after_missed=0)


class TestNode:
    EXPECTED = tuple(f"GPU-{i}" for i in range(4))

    def beat(self, *gpu_ids: str, **changes: object) -> list[GpuReading]:
        return [reading(gpu_id=g, **changes) for g in gpu_ids]

    def test_all_present_and_clean(self) -> None:
        node = classify_node(self.EXPECTED, self.beat(*self.EXPECTED))
        assert node.state is Health.HEALTHY
        assert tuple(g.gpu_id for g in node.gpus) == self.EXPECTED

    def test_a_missing_gpu_makes_the_node_unhealthy(self) -> None:
        node = classify_node(self.EXPECTED, self.beat("GPU-0", "GPU-1", "GPU-3"))
        assert node.state is Health.UNHEALTHY
        assert {g.gpu_id: g.state for g in node.gpus}["GPU-2"] is Health.UNHEALTHY
        assert [g.gpu_id for g in node.gpus if g.state is not Health.HEALTHY] == ["GPU-2"]

    def test_unknown_gpu_is_classified_too(self) -> None:
        node = classify_node(["GPU-0"], [*self.beat("GPU-0"), reading(gpu_id="GPU-9", xids=(79,))])
        assert [(g.gpu_id, g.state) for g in node.gpus] == [
            ("GPU-0", Health.HEALTHY),
            ("GPU-9", Health.UNHEALTHY),
        ]
        assert node.drain

    def test_node_takes_its_worst_gpu(self) -> None:
        previous = {g.gpu_id: g for g in self.beat(*self.EXPECTED)}
        readings = [*self.beat("GPU-0", "GPU-1", "GPU-2"), reading(gpu_id="GPU-3", ecc_dbe_aggregate=1)]
        shares = {"GPU-0": Decimal("0.5")}
        policy = HealthPolicy(degraded_below_share=Decimal("0.9"))
        node = classify_node(self.EXPECTED, readings, previous, shares=shares, policy=policy)
        states = {g.gpu_id: g.state for g in node.gpus}
        assert states == {
            "GPU-0": Health.DEGRADED,
            "GPU-1": Health.HEALTHY,
            "GPU-2": Health.HEALTHY,
            "GPU-3": Health.UNHEALTHY,
        }
        assert node.state is Health.UNHEALTHY

    def test_down_node_marks_every_expected_gpu_down(self) -> None:
        node = classify_node(self.EXPECTED, [], missed=5)
        assert node.state is Health.DOWN
        assert {g.state for g in node.gpus} == {Health.DOWN}
        assert len(node.gpus) == 4

    def test_duplicate_gpu_in_one_heartbeat(self) -> None:
        with pytest.raises(HealthInputError, match="twice"):
            classify_node(self.EXPECTED, self.beat("GPU-0", "GPU-0"))

    def test_reading_passed_under_the_wrong_id(self) -> None:
        with pytest.raises(HealthInputError):
            classify_gpu("GPU-1", CLEAN)
