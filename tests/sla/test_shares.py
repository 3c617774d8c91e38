"""Acceptance shares in the SLA: a GPU measured below its calibrated rating delivers that share of its
allocated time, and is labelled degraded below the contract's threshold."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from tests.sla.conftest import served_contract
from tests.telemetry.conftest import build

from computelease.allocation.models import Allocation
from computelease.auth.core import SYSTEM
from computelease.contracts import service as contracts
from computelease.contracts.models import Contract
from computelease.contracts.schemas import ContractIn, SlaPolicyIn, TransitionIn
from computelease.fleet.core import NodeState
from computelease.fleet.models import Gpu
from computelease.probe.models import AcceptanceGpu, AcceptanceRun
from computelease.probe.schemas import Verdict
from computelease.sla import service

# October 2026 in Asia/Shanghai: 744 h; the contract's 8 GPUs promise 5,952 GPU-hours.
CONTRACTED = Decimal("5952.000000")


def measured(s, node_id: int, shares: dict[int, str | None], *, at: datetime, uuids: bool = True) -> None:
    """An acceptance run on the node; ``shares`` maps the probe's CUDA index to the GPU's sla_share.
    With ``uuids`` the probe GPU ``i`` is the fleet GPU ``7 - i`` (CUDA and NVML count differently)."""
    run = AcceptanceRun(
        node_id=node_id,
        received_at=at,
        started_at=at,
        finished_at=at,
        mode="quick",
        verdict=Verdict.WARN,
        exit_code=0,
        schema_version=1,
        summary="test run",
        hostname="h",
        state_before=NodeState.in_service,
        state_after=NodeState.in_service,
        warnings=[],
        report={},
        actor="test",
    )
    run.gpus = [
        AcceptanceGpu(
            index=i,
            uuid=f"GPU-T{7 - i}" if uuids else None,
            name="NVIDIA H100 80GB HBM3",
            model="nvidia-h100-sxm",
            sla_share=None if share is None else Decimal(share),
            verdict=Verdict.WARN,
        )
        for i, share in shares.items()
    ]
    s.add(run)
    s.flush()


def name_gpus(s, node_id: int) -> None:
    for gpu in s.scalars(select(Gpu).where(Gpu.node_id == node_id)):
        gpu.uuid = f"GPU-T{gpu.index}"
    s.flush()


def test_a_slow_gpu_lowers_availability_and_earns_a_credit(db, world):
    with db.transaction(actor="test") as s:
        served = served_contract(s, world.customer_a.id)
        name_gpus(s, served.node_id)
        # Probe GPU 2 is fleet GPU 5 (matched by UUID): 0.9 of its rating.
        measured(s, served.node_id, {0: "1.0312", 1: "1", 2: "0.9"}, at=datetime(2026, 9, 20, tzinfo=UTC))
        result = service.report(s, SYSTEM, served.contract_id, "2026-10")
    # 0.1 of 744 h lost on one GPU: 74.4 GPU-hours; 5,877.6 / 5,952 = 98.75% < 99: the 30% tier.
    assert result.contracted_gpu_hours == CONTRACTED
    assert result.delivered_gpu_hours == Decimal("5877.600000")
    assert result.counted_gpu_hours == Decimal("74.400000")
    assert result.availability_pct == Decimal("98.7500")
    assert (result.met_target, result.credit_pct, result.credit) == (
        False,
        Decimal("30"),
        Decimal("21000.00"),
    )
    (evidence,) = result.evidence
    assert (evidence.gpu_id, evidence.state, evidence.delivered_share) == (
        "TN-1#5",
        "degraded",
        Decimal("0.9"),
    )
    assert "measured throughput share 0.9" in evidence.reason and "below 1" in evidence.reason
    assert evidence.incident_id is None and not result.incidents


def test_the_latest_run_wins_and_an_unrated_card_counts_in_full(db, world):
    with db.transaction(actor="test") as s:
        served = served_contract(s, world.customer_a.id)
        name_gpus(s, served.node_id)
        measured(s, served.node_id, {2: "0.5", 3: "0.5"}, at=datetime(2026, 9, 1, tzinfo=UTC))
        # Later: GPU 5 recovers to 0.99, GPU 4 could not be rated (no figure supersedes the old one).
        measured(s, served.node_id, {2: "0.99", 3: None}, at=datetime(2026, 9, 2, tzinfo=UTC))
        result = service.report(s, SYSTEM, served.contract_id, "2026-10")
    # 0.01 × 744 = 7.44 GPU-hours: 99.875% < 99.99, the 10% tier.
    assert result.counted_gpu_hours == Decimal("7.440000")
    assert result.availability_pct == Decimal("99.8750")
    assert result.credit == Decimal("7000.00")
    assert [e.gpu_id for e in result.evidence] == ["TN-1#5"]


def test_without_uuids_the_node_and_index_match(db, world):
    with db.transaction(actor="test") as s:
        served = served_contract(s, world.customer_a.id)
        measured(s, served.node_id, {6: "0.75"}, at=datetime(2026, 9, 20, tzinfo=UTC), uuids=False)
        result = service.report(s, SYSTEM, served.contract_id, "2026-10")
    assert result.counted_gpu_hours == Decimal("186.000000")  # 0.25 × 744
    assert [(e.gpu_id, e.state) for e in result.evidence] == [("TN-1#6", "degraded")]


def test_shares_and_outages_take_the_least_delivery_not_both(db, world):
    from tests.sla.conftest import outage

    with db.transaction(actor="test") as s:
        served = served_contract(s, world.customer_a.id)
        outage(s)  # GPU 3 unhealthy for 10 h
        measured(s, served.node_id, {3: "0.8"}, at=datetime(2026, 9, 20, tzinfo=UTC), uuids=False)
        result = service.report(s, SYSTEM, served.contract_id, "2026-10")
    # GPU 3: 734 h at 0.8 (146.8 lost) and 10 h unhealthy (10 lost, not 10 + 2).
    assert result.counted_gpu_hours == Decimal("156.800000")
    states = sorted({(e.state, e.incident_id is not None) for e in result.evidence})
    assert states == [("degraded", False), ("unhealthy", True)]
    (incident,) = result.incidents
    assert incident.counted_gpu_hours == Decimal("10.000000")


def _spec_contract(s, customer_id: int) -> tuple[int, int]:
    """8 GPUs of at least 900 dense BF16 TFLOPS (no named model), served by TN-1."""
    fleet = build(s)
    policy = contracts.create_sla_policy(
        s, SlaPolicyIn(name="spec", target_pct="99.9", credit_tiers=[{"below": "99.9", "credit_pct": "10"}])
    )
    contract = contracts.create_contract(
        s,
        SYSTEM,
        ContractIn(
            customer_id=customer_id,
            name="Spec contract",
            capacity_unit="gpus",
            capacity="8",
            min_tflops="900",
            min_tflops_precision="bf16",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            pricing="monthly_fee",
            price="70000.00",
            sla_policy_id=policy.id,
        ),
    )
    contracts.transition(
        s, SYSTEM, contract.id, TransitionIn(to="signed", at=datetime(2025, 12, 1, tzinfo=UTC))
    )
    node_id = fleet.nodes["TN-1"]
    s.add(
        Allocation(
            node_id=node_id, contract_id=contract.id, start_at=contract.starts_at, end_at=contract.ends_at
        )
    )
    s.flush()
    return contract.id, node_id


def test_the_contracts_minimum_spec_sets_the_degraded_threshold(db, world):
    with db.transaction(actor="test") as s:
        contract_id, node_id = _spec_contract(s, world.customer_a.id)
        contract = s.get(Contract, contract_id)
        threshold = service.degraded_below(s, contract, "nvidia-h100-sxm")
        # 900 of the H100 SXM's 989.4 dense BF16 TFLOPS.
        assert threshold.quantize(Decimal("0.000001")) == Decimal("0.909642")
        assert service.degraded_below(s, contract, "no-such-card") == service.DEFAULT_DEGRADED_BELOW
        measured(s, node_id, {0: "0.95", 1: "0.85"}, at=datetime(2026, 9, 20, tzinfo=UTC), uuids=False)
        result = service.report(s, SYSTEM, contract_id, "2026-10")
    # Both cards deliver their share (0.05 and 0.15 of 744 h lost); only the one below 0.9096 is degraded.
    assert result.counted_gpu_hours == Decimal("148.800000")
    by_gpu = {e.gpu_id: e for e in result.evidence}
    assert by_gpu["TN-1#0"].state == "allocated" and by_gpu["TN-1#0"].reason == "delivered share 0.95"
    assert by_gpu["TN-1#1"].state == "degraded" and "below 0.9096" in by_gpu["TN-1#1"].reason


def test_a_share_holds_from_its_run_on_and_never_rewrites_a_past_month(db, world):
    with db.transaction(actor="test") as s:
        served = served_contract(s, world.customer_a.id)
        name_gpus(s, served.node_id)
        before = service.report(s, SYSTEM, served.contract_id, "2026-10")
        # Measured at 0.9 at 00:00 Shanghai on 16 October: the last 16 of 31 days run at 0.9.
        measured(s, served.node_id, {2: "0.9"}, at=datetime(2026, 10, 15, 16, tzinfo=UTC))
        half = service.report(s, SYSTEM, served.contract_id, "2026-10")
        # A run in November says nothing about October.
        measured(s, served.node_id, {2: "0.5"}, at=datetime(2026, 11, 20, tzinfo=UTC))
        after = service.report(s, SYSTEM, served.contract_id, "2026-10")
    assert before.delivered_gpu_hours == CONTRACTED
    # 0.1 × 16 days × 24 h = 38.4 GPU-hours lost
    assert half.delivered_gpu_hours == CONTRACTED - Decimal("38.4")
    assert after.delivered_gpu_hours == half.delivered_gpu_hours
