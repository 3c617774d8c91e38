"""The heartbeat wire format: bounds, strictness, the bad field named, and per-heartbeat rejection."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from computelease.telemetry.health import Health, classify_gpu
from computelease.telemetry.schemas import (
    MAX_BATCH,
    GpuSample,
    Heartbeat,
    HeartbeatBatch,
    IngestResult,
    describe,
    parse_batch,
)

GPU: dict[str, Any] = {
    "index": 0,
    "uuid": "GPU-4b3c9a1e-0d7f-4c2a-9e55-1f0b7c3d2a10",
    "serial": "1650123456789",
    "name": "NVIDIA H100 80GB HBM3",
    "memory_total_mb": 81559,
    "memory_used_mb": 70000,
    "utilization_pct": 97,
    "power_w": 612.5,
    "temperature_c": 61,
    "sm_clock_mhz": 1980,
    "ecc_sbe_volatile": 0,
    "ecc_dbe_volatile": 0,
    "ecc_sbe_aggregate": 3,
    "ecc_dbe_aggregate": 0,
    "remap_pending": False,
    "remap_failed": False,
    "pcie_gen": 5,
    "pcie_width": 16,
    "throttle_reasons": ["sw_power_cap"],
    "xids": [],
}


def heartbeat(seq: int = 1, **changes: Any) -> dict[str, Any]:
    hb = {"seq": seq, "at": "2026-10-01T08:00:30Z", "interval_s": 30, "gpus": [copy.deepcopy(GPU)]}
    hb.update(changes)
    return hb


def batch(*heartbeats: dict[str, Any]) -> dict[str, Any]:
    return {
        "node": "QYA-H100-0001",
        "agent": {"version": "0.1.0", "backend": "nvml", "host": "gpu-17"},
        "heartbeats": list(heartbeats) or [heartbeat()],
    }


def gpu(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(GPU), **changes}


def test_a_full_batch_round_trips() -> None:
    parsed = HeartbeatBatch.model_validate(batch(heartbeat(1), heartbeat(2, unsupported=["serial"])))
    assert parsed.heartbeats[0].at.isoformat() == "2026-10-01T08:00:30+00:00"
    again = HeartbeatBatch.model_validate_json(parsed.model_dump_json())
    assert again == parsed


def test_every_reading_is_optional() -> None:
    sample = GpuSample.model_validate({"index": 3})
    assert sample.temperature_c is None and sample.xids == [] and sample.gpu_id == "#3"
    assert GpuSample(index=0, serial="S1").gpu_id == "S1"


def test_times_are_normalised_to_utc() -> None:
    hb = Heartbeat.model_validate(heartbeat(at="2026-10-01T16:00:30+08:00"))
    assert hb.at.isoformat() == "2026-10-01T08:00:30+00:00"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"gpus": [gpu(temperature_c=-60)]}, "gpus.0.temperature_c", "greater than or equal to -50"),
        ({"gpus": [gpu(temperature_c=151)]}, "gpus.0.temperature_c", "less than or equal to 150"),
        ({"gpus": [gpu(utilization_pct=101)]}, "gpus.0.utilization_pct", "less than or equal to 100"),
        ({"gpus": [gpu(power_w=-1)]}, "gpus.0.power_w", "greater than or equal to 0"),
        ({"gpus": [gpu(ecc_dbe_volatile=-1)]}, "gpus.0.ecc_dbe_volatile", "greater than or equal to 0"),
        ({"gpus": [gpu(ecc_sbe_aggregate=True)]}, "gpus.0.ecc_sbe_aggregate", "valid integer"),
        ({"gpus": [gpu(sm_clock_mhz="1980")]}, "gpus.0.sm_clock_mhz", "valid integer"),
        ({"gpus": [gpu(remap_pending=1)]}, "gpus.0.remap_pending", "valid boolean"),
        ({"gpus": [gpu(pcie_width=64)]}, "gpus.0.pcie_width", "less than or equal to 32"),
        ({"gpus": [gpu(fan_pct=40)]}, "gpus.0.fan_pct", "Extra inputs are not permitted"),
        ({"gpus": [gpu(xids=[79, 79])]}, "gpus.0.xids", "must not repeat"),
        ({"gpus": [gpu(xids=[-1])]}, "gpus.0.xids.0", "greater than or equal to 0"),
        (
            {"gpus": [gpu(throttle_reasons=["Power Cap"])]},
            "gpus.0.throttle_reasons.0",
            "should match pattern",
        ),
        ({"gpus": [gpu(uuid="GPU-\n1")]}, "gpus.0.uuid", "should match pattern"),
        ({"gpus": [gpu(memory_used_mb=90_000)]}, "gpus.0", "exceeds memory_total_mb"),
        ({"gpus": [gpu(), gpu()]}, "heartbeat", "GPU index repeats"),
        ({"gpus": [gpu(index=64)]}, "gpus.0.index", "less than 64"),
        ({"unsupported": ["fan_pct"]}, "unsupported.0", "Input should be 'serial'"),
        ({"at": "2026-10-01T08:00:30"}, "at", "timezone"),
        ({"at": "1970-01-01T00:00:10Z"}, "at", "the node's clock is wrong"),
        ({"seq": 0}, "seq", "greater than or equal to 1"),
        ({"interval_s": 0}, "interval_s", "greater than or equal to 1"),
        ({"extra": 1}, "extra", "Extra inputs are not permitted"),
    ],
)
def test_bad_fields_are_rejected_with_the_field_named(change, field, message) -> None:
    with pytest.raises(ValidationError) as caught:
        Heartbeat.model_validate(heartbeat(**change))
    reason = describe(caught.value)
    assert reason.startswith(f"{field}: ") and message in reason, reason


def test_batch_limits_and_order() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        HeartbeatBatch.model_validate({**batch(), "heartbeats": []})
    too_many = [heartbeat(i) for i in range(1, MAX_BATCH + 2)]
    with pytest.raises(ValidationError, match=f"at most {MAX_BATCH} items"):
        HeartbeatBatch.model_validate(batch(*too_many))
    with pytest.raises(ValidationError, match="strictly increasing seq"):
        HeartbeatBatch.model_validate(batch(heartbeat(2), heartbeat(1)))
    with pytest.raises(ValidationError, match=r"agent\.backend"):
        HeartbeatBatch.model_validate({**batch(), "agent": {"version": "1", "backend": "NVML!", "host": "h"}})


def test_parse_batch_rejects_one_heartbeat_not_the_batch() -> None:
    payload = batch(
        heartbeat(5),
        heartbeat(6, gpus=[gpu(temperature_c=400)]),
        {"at": "2026-10-01T08:01:30Z", "interval_s": 30},  # no seq at all
        heartbeat(5),  # repeats a seq of this batch
        heartbeat(4),  # out of order is fine: the server places it in time
    )
    parsed = parse_batch(payload)
    assert [h.seq for h in parsed.heartbeats] == [5, 4]
    assert [(r.seq, r.index) for r in parsed.rejected] == [(6, 1), (None, 2), (5, 3)]
    assert parsed.rejected[0].reason.startswith(
        "gpus.0.temperature_c: Input should be less than or equal to 150"
    )
    assert parsed.rejected[1].reason.startswith("seq: Field required")
    assert parsed.rejected[2].reason == "seq 5 repeats"


def test_parse_batch_refuses_a_bad_envelope() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_batch({"node": "", "agent": {}, "heartbeats": [heartbeat()]})
    assert describe(caught.value).startswith("node: String should have at least 1 character")


def test_describe_is_short() -> None:
    bad = heartbeat(
        gpus=[
            gpu(temperature_c=999, power_w=-1, utilization_pct=200, pcie_gen=0, pcie_width=0, sm_clock_mhz=-1)
        ]
    )
    with pytest.raises(ValidationError) as caught:
        Heartbeat.model_validate(bad)
    reason = describe(caught.value)
    assert reason.endswith("; and 1 more") and "\n" not in reason


def test_ingest_result_is_strict() -> None:
    answer = {"accepted": 3, "duplicates": 1, "rejected": [{"seq": 9, "index": 4, "reason": "unknown GPU"}]}
    assert IngestResult.model_validate(answer).rejected[0].seq == 9
    with pytest.raises(ValidationError, match="accepted"):
        IngestResult.model_validate({**answer, "accepted": -1})
    with pytest.raises(ValidationError, match="Extra inputs"):
        IngestResult.model_validate({**answer, "stored": 3})


def test_samples_map_onto_the_health_rules() -> None:
    app_error = GpuSample.model_validate(gpu(xids=[13, 43]))
    assert classify_gpu(app_error.gpu_id, app_error.to_reading()).state is Health.HEALTHY
    fell_off = GpuSample(index=2, uuid="GPU-x", lost=True, xids=[79])
    health = classify_gpu("GPU-x", fell_off.to_reading())
    assert health.state is Health.UNHEALTHY and health.drain
    still_lost = GpuSample(index=2, uuid="GPU-x", lost=True)
    assert still_lost.to_reading() is None  # missing from the node
    assert classify_gpu("GPU-x", still_lost.to_reading()).state is Health.UNHEALTHY
    before = GpuSample.model_validate(gpu()).to_reading()
    after = GpuSample.model_validate(gpu(ecc_dbe_aggregate=1, remap_pending=True)).to_reading()
    reasons = {r.code for r in classify_gpu(GPU["uuid"], after, before).reasons}
    assert reasons == {"ecc_dbe", "remap_pending"}
