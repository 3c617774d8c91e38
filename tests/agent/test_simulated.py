"""The simulated fleet: Llama 3 failure rates, determinism, and telemetry that health rules read right."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from computelease.agent.clock import SimClock
from computelease.agent.runner import run_simulation
from computelease.agent.simulated import APPLICATION_XIDS, Cause, FailureModel, NodeSpec, SimulatedFleet
from computelease.telemetry.health import IGNORED_XIDS, Health, classify_gpu

START = datetime(2026, 1, 1, tzinfo=UTC)


def fleet(nodes: int = 4, *, seed: int = 0, failures: FailureModel | None = None, **kw) -> SimulatedFleet:  # type: ignore[no-untyped-def]
    return SimulatedFleet(nodes, seed=seed, clock=SimClock(START), failures=failures, **kw)


def test_interruption_rate_and_mix_match_llama3() -> None:
    # 256 nodes x 8 GPUs for 1,000 days = 2.048M GPU-days; at 0.47 per 1,000 GPU-days ≈ 963 expected.
    # Tolerance ±10% of the rate (≈3 Poisson standard deviations) and ±3 standard deviations of each
    # share; the run is seeded, so the check is exact to repeat, not flaky.
    f = fleet(256)
    f.advance(START + timedelta(days=1000))
    gpu_days = 256 * 8 * 1000
    injected = len(f.incidents)
    rate = injected / gpu_days * 1000
    assert rate == pytest.approx(0.47, rel=0.10)
    assert f.counts["skipped"] < 0.01 * f.counts["interruptions"]  # failures of already broken parts
    for cause, share in ((Cause.FAULTY_GPU, 0.301), (Cause.HBM3, 0.172), (Cause.NETWORK, 0.084)):
        seen = sum(1 for i in f.incidents if i.cause is cause) / injected
        assert abs(seen - share) < 3 * math.sqrt(share * (1 - share) / injected), cause
    # Everything that failed long enough ago has been repaired.
    assert all(i.end is not None for i in f.incidents if i.start < START + timedelta(days=990))


def test_same_seed_same_fleet_and_sampling_does_not_change_failures() -> None:
    quiet, busy = fleet(8, seed=7), fleet(8, seed=7)
    end = START + timedelta(days=200)
    quiet.advance(end)  # one jump
    t = START
    while t < end:  # sampled daily on the way
        t += timedelta(hours=24)
        busy.clock.set(t)  # type: ignore[attr-defined]
        for i in range(len(busy.nodes)):
            busy.sample(i)
    assert quiet.incidents == busy.incidents and len(quiet.incidents) > 0
    other = fleet(8, seed=8)
    other.advance(end)
    assert other.incidents != quiet.incidents


def test_same_seed_same_heartbeats() -> None:
    def run() -> list[str]:
        f = fleet(3, seed=3, failures=FailureModel(interruptions_per_1000_gpu_days=300))
        beats = []
        for _ in range(200):
            f.clock.sleep(600)  # type: ignore[attr-defined]
            for i in range(3):
                sample = f.sample(i)
                beats.append("down" if sample is None else str([g.model_dump() for g in sample.gpus]))
        return beats

    assert run() == run()


def test_application_xids_are_present_and_healthy_failures_are_not() -> None:
    # Rates raised far above Llama 3's so that a few simulated days show every kind of event.
    failures = FailureModel(interruptions_per_1000_gpu_days=400, app_xids_per_1000_gpu_days=3000)
    f = fleet(4, seed=11, failures=failures)
    previous: dict[str, object] = {}
    seen = {"app_only_healthy": 0, "critical_unhealthy": 0, "lost_missing": 0, "missed": 0}
    for _ in range(3 * 24 * 6):  # three days, every 10 minutes
        f.clock.sleep(600)  # type: ignore[attr-defined]
        for i in range(len(f.nodes)):
            sample = f.sample(i)
            if sample is None:
                seen["missed"] += 1
                continue
            for gpu in sample.gpus:
                reading = gpu.to_reading()
                if reading is None:
                    assert gpu.lost
                    seen["lost_missing"] += 1
                    continue
                health = classify_gpu(gpu.gpu_id, reading, previous.get(gpu.gpu_id))  # type: ignore[arg-type]
                previous[gpu.gpu_id] = reading
                critical = set(gpu.xids) - IGNORED_XIDS
                if gpu.xids and not critical and not gpu.remap_pending and not gpu.remap_failed:
                    assert set(gpu.xids) <= set(APPLICATION_XIDS)
                    assert health.state is Health.HEALTHY, health
                    seen["app_only_healthy"] += 1
                if critical:
                    assert health.state is Health.UNHEALTHY
                    seen["critical_unhealthy"] += 1
                if gpu.remap_pending:
                    assert health.state is Health.UNHEALTHY  # until the reset repairs it
    assert all(count > 0 for count in seen.values()), seen


def test_repairs_restore_the_gpu() -> None:
    f = fleet(40, seed=5, failures=FailureModel(interruptions_per_1000_gpu_days=100))
    f.advance(START + timedelta(days=30))
    hbm = next(i for i in f.incidents if i.cause is Cause.HBM3 and i.end is not None and not i.remap_failed)
    assert hbm.xid in (48, 94, 95)
    node = next(n for n in f.nodes if n.serial == hbm.node)
    gpu = node.gpus[hbm.gpu_index]  # type: ignore[index]
    assert not gpu.remap_pending and gpu.dbe_volatile == 0  # a reset applied the remap, cleared volatile
    assert hbm.end - hbm.start <= timedelta(hours=3)  # type: ignore[operator]


def test_nodes_from_the_fleet_keep_their_identities() -> None:
    spec = NodeSpec("QYA-H100-0001", "H20", ("GPU-aaa", "GPU-bbb"), ("1", "2"))
    f = SimulatedFleet([spec], clock=SimClock(START))
    sample = f.sample(0)
    assert sample is not None
    assert [(g.uuid, g.serial) for g in sample.gpus] == [("GPU-aaa", "1"), ("GPU-bbb", "2")]
    assert sample.gpus[0].name == "NVIDIA H20" and sample.gpus[0].memory_total_mb == 97_871


def test_network_losses_arrive_late_and_host_losses_are_missed(server) -> None:
    from computelease.agent.sender import Sender

    failures = FailureModel(
        interruptions_per_1000_gpu_days=150,
        mix={Cause.NETWORK: 0.5, Cause.HOST: 0.5},  # type: ignore[arg-type]
    )
    f = fleet(4, seed=2, failures=failures, gpus_per_node=2)
    sender = Sender("http://test", "secret", transport=server.transport(), retries=0)
    report = run_simulation(f, end=START + timedelta(days=4), interval_s=600, sender=sender, first_seq=1)
    causes = {i.cause for i in f.incidents}
    assert causes == {Cause.NETWORK, Cause.HOST}
    assert report.missed > 0
    assert report.heartbeats + report.missed == 4 * 4 * 24 * 6
    # Made while cut off, heartbeats arrive when the link is back; only a link down at the end keeps some.
    still_cut = {i.node for i in f.incidents if i.cause is Cause.NETWORK and i.end is None}
    assert len(server.arrivals) + report.pending == report.heartbeats
    assert report.pending == 0 or still_cut
    for node in f.nodes:
        seqs = server.seqs(node.serial)
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_failure_rates_scale_for_demos() -> None:
    demo = FailureModel().scaled(100)
    assert demo.interruptions_per_1000_gpu_days == pytest.approx(47)
    assert demo.mix == FailureModel().mix and demo.repair_hours == FailureModel().repair_hours
    with pytest.raises(ValueError, match="add up to 1"):
        FailureModel(mix={Cause.HOST: 0.5})  # type: ignore[dict-item]
