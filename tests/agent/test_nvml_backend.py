"""The NVML backend against a fake pynvml: readings, partial support, bytes, XIDs, lost GPUs."""

from __future__ import annotations

import sys

import pytest

from computelease.agent.backends import INSTALL_HINT, NvmlBackend, decode_throttle, make_gpu
from computelease.agent.errors import BackendUnavailable
from computelease.telemetry.health import Health, classify_gpu, classify_node
from computelease.telemetry.schemas import GPU_READINGS


def backend(nvml) -> NvmlBackend:  # type: ignore[no-untyped-def]
    return NvmlBackend(nvml, sleep=lambda s: None)


def test_readings_are_mapped_to_the_wire_format(nvml_kit, fake_gpus) -> None:
    b = backend(nvml_kit.make(fake_gpus))
    sample = b.sample()
    assert sample is not None and sample.unsupported == []
    g = sample.gpus[0]
    assert g.index == 0 and g.uuid == fake_gpus[0].uuid and g.serial == "1650000000000"
    assert g.name == "NVIDIA H100 80GB HBM3"
    assert (g.memory_total_mb, g.memory_used_mb) == (81_559, 1024)
    assert (g.utilization_pct, g.power_w, g.temperature_c, g.sm_clock_mhz) == (97, 612.3, 61, 1980)
    assert (g.ecc_sbe_volatile, g.ecc_dbe_volatile, g.ecc_sbe_aggregate, g.ecc_dbe_aggregate) == (2, 0, 9, 0)
    assert (g.remap_pending, g.remap_failed, g.pcie_gen, g.pcie_width) == (False, False, 5, 16)
    assert g.throttle_reasons == ["sw_power_cap", "bit_11"]
    assert g.xids == [] and g.lost is False and g.errors == []
    assert [x.index for x in sample.gpus] == [0, 1, 2, 3]
    b.close()


def test_bytes_from_old_bindings_read_like_str(nvml_kit, fake_gpus) -> None:
    new = backend(nvml_kit.make(fake_gpus)).sample()
    old = backend(nvml_kit.make(fake_gpus, as_bytes=True)).sample()
    assert new is not None and old is not None
    assert [g.model_dump() for g in old.gpus] == [g.model_dump() for g in new.gpus]
    assert isinstance(old.gpus[0].uuid, str) and "\x00" not in old.gpus[0].name  # type: ignore[operator]


@pytest.mark.parametrize("subclass_errors", [True, False], ids=["NVMLError_NotSupported", "value=3"])
def test_unsupported_calls_are_recorded_not_errors(nvml_kit, fake_gpus, subclass_errors) -> None:
    # A consumer card: no serial, no ECC, no row remapper; an old binding without the renamed call.
    for gpu in fake_gpus:
        gpu.fails = {
            "Serial": nvml_kit.NOT_SUPPORTED,
            "TotalEccErrors": nvml_kit.NOT_SUPPORTED,
            "RemappedRows": nvml_kit.NOT_SUPPORTED,
            "CurrPcieLinkWidth": nvml_kit.FUNCTION_NOT_FOUND,  # the driver predates the call
        }
    b = backend(nvml_kit.make(fake_gpus, event_reasons=False, subclass_errors=subclass_errors))
    sample = b.sample()
    assert sample is not None
    assert sample.unsupported == [
        "serial",
        "ecc_sbe_volatile",
        "ecc_dbe_volatile",
        "ecc_sbe_aggregate",
        "ecc_dbe_aggregate",
        "remap_pending",
        "remap_failed",
        "pcie_width",
    ]
    g = sample.gpus[0]
    assert (
        g.serial is None and g.ecc_dbe_aggregate is None and g.remap_pending is None and g.pcie_width is None
    )
    assert g.errors == [] and g.throttle_reasons == ["sw_power_cap", "bit_11"]  # from the old call
    # Unsupported never counts against a card.
    assert classify_gpu(g.gpu_id, g.to_reading()).state is Health.HEALTHY


def test_other_failures_are_kept_as_errors_and_bad_values_do_not_spoil_the_heartbeat(
    nvml_kit, fake_gpus
) -> None:
    fake_gpus[1].fails = {"PowerUsage": nvml_kit.UNKNOWN}
    fake_gpus[2].temperature = 255  # a sensor glitch
    fake_gpus[3].memory_used = fake_gpus[3].memory_total * 2
    sample = backend(nvml_kit.make(fake_gpus)).sample()
    assert sample is not None and sample.unsupported == []
    assert sample.gpus[1].power_w is None and sample.gpus[1].errors == ["power_w: Unknown Error"]
    assert sample.gpus[2].temperature_c is None
    assert sample.gpus[2].errors[0].startswith("temperature_c: Input should be less than or equal to 150")
    assert sample.gpus[3].memory_used_mb is None and sample.gpus[3].memory_total_mb == 81_559


def test_xid_events_reach_the_next_heartbeat_once(nvml_kit, fake_gpus) -> None:
    nvml = nvml_kit.make(fake_gpus)
    b = backend(nvml)
    nvml.fake_xid(0, 13)  # the job's fault
    nvml.fake_xid(2, 48)  # a double-bit ECC error
    nvml.fake_xid(2, 48)  # repeated: one entry
    b.wait(0.01)  # the agent's sleep between heartbeats collects events
    nvml.fake_xid(2, 79)  # arrives just before the sample
    sample = b.sample()
    assert sample is not None
    assert [g.xids for g in sample.gpus] == [[13], [], [48, 79], []]
    health = classify_node([g.uuid for g in sample.gpus], [g.to_reading() for g in sample.gpus])  # type: ignore[misc]
    states = {g.gpu_id: g for g in health.gpus}
    assert states[fake_gpus[0].uuid].state is Health.HEALTHY
    assert states[fake_gpus[2].uuid].state is Health.UNHEALTHY and states[fake_gpus[2].uuid].drain
    again = b.sample()
    assert again is not None and all(g.xids == [] for g in again.gpus)


def test_no_event_support_names_xids_unsupported(nvml_kit, fake_gpus) -> None:
    slept: list[float] = []
    b = NvmlBackend(nvml_kit.make(fake_gpus, events=False), sleep=slept.append)
    sample = b.sample()
    assert sample is not None and sample.unsupported == ["xids"]
    b.wait(2.5)
    assert slept == [2.5]


def test_a_lost_gpu_is_reported_lost_and_read_as_missing(nvml_kit, fake_gpus) -> None:
    nvml = nvml_kit.make(fake_gpus)
    b = backend(nvml)
    fake_gpus[3].lost = True
    nvml.fake_xid(3, 79)
    first = b.sample()
    assert first is not None
    lost = first.gpus[3]
    assert lost.lost is True and lost.xids == [79] and lost.uuid == fake_gpus[3].uuid
    assert lost.errors == ["GPU is lost"] and lost.temperature_c is None
    assert classify_gpu(lost.gpu_id, lost.to_reading()).drain  # the fall itself: unhealthy, drain
    second = b.sample()
    assert second is not None and second.gpus[3].to_reading() is None  # from then on: missing
    fake_gpus[3].lost = False  # reset or reseated: the GPU answers again
    third = b.sample()
    assert third is not None and third.gpus[3].lost is False and third.gpus[3].temperature_c == 61


def test_missing_pynvml_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(BackendUnavailable) as caught:
        NvmlBackend()
    assert str(caught.value) == INSTALL_HINT
    assert "pip install 'computelease[agent]'" in INSTALL_HINT and "\n" not in INSTALL_HINT


def test_the_installed_module_is_used_and_shut_down(monkeypatch, nvml_kit, fake_gpus) -> None:
    nvml = nvml_kit.make(fake_gpus)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    b = NvmlBackend()
    assert b.sample() is not None
    b.close()
    assert nvml.state["init"] == 1 and nvml.state["shutdown"] == 1


def test_no_driver_is_one_clear_error(nvml_kit, fake_gpus) -> None:
    nvml = nvml_kit.make(fake_gpus)

    def fail() -> None:
        raise nvml_kit.NVMLError(9)

    nvml.nvmlInit = fail
    with pytest.raises(BackendUnavailable, match="is the NVIDIA driver loaded"):
        NvmlBackend(nvml)


def test_throttle_bits_and_sanitising() -> None:
    assert decode_throttle(0) == []
    assert decode_throttle(0x1 | 0x40 | 0x200) == ["gpu_idle", "hw_thermal_slowdown", "board_limit"]
    g = make_gpu({"index": 0, "uuid": "GPU-x", "utilization_pct": 140, "pcie_gen": 0, "xids": [79]})
    assert g.utilization_pct is None and g.pcie_gen is None and g.xids == [79] and len(g.errors) == 2
    assert set(GPU_READINGS) >= {"xids", "throttle_reasons", "remap_failed"}
