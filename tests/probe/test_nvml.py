"""The NVML reader against a fake ``pynvml`` module (fake NVML): what it reads, and what it does when
the library, a function or a reading is missing."""

from __future__ import annotations

import sys
import types

import pytest

from computelease.probe.core import NVML_MISSING, GpuIdentity
from computelease.probe.nvml import NvmlReader


class NotSupported(Exception):
    pass


def fake_pynvml(**overrides) -> types.ModuleType:
    handles = {"GPU-aaaa": "h0", "00000000:1B:00.0": "h1"}

    def refuse(*_args):
        raise NotSupported("Not Supported")

    functions = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: b"580.65.06",
        "nvmlSystemGetNVMLVersion": lambda: "12.580.65.06",
        "nvmlSystemGetCudaDriverVersion": lambda: 13000,
        "nvmlDeviceGetHandleByUUID": lambda uuid: handles.get(uuid) or refuse(),
        "nvmlDeviceGetHandleByPciBusId": lambda bus: handles.get(bus) or refuse(),
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetUUID": lambda h: "GPU-aaaa",
        "nvmlDeviceGetSerial": lambda h: b"1654322000001",
        "nvmlDeviceGetPciInfo": lambda h: types.SimpleNamespace(busId=b"00000000:18:00.0"),
        "nvmlDeviceGetVbiosVersion": lambda h: "96.00.99.00.01",
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(total=85_520_809_984),
        "nvmlDeviceGetEccMode": lambda h: [1, 1],
        "nvmlDeviceGetTotalEccErrors": lambda h, kind, counter: {(1, 0): 0, (1, 1): 2, (0, 0): 7}[
            (kind, counter)
        ],
        "nvmlDeviceGetRemappedRows": lambda h: (3, 0, 0, 0),
        "nvmlDeviceGetMaxPcieLinkGeneration": lambda h: 5,
        "nvmlDeviceGetMaxPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 700_000,
        "nvmlDeviceGetTemperatureThreshold": lambda h, kind: {1: 87}[kind],
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: 0x4,
        "nvmlDeviceGetPowerUsage": lambda h: 688_123,
        "nvmlDeviceGetTemperature": lambda h, sensor: 66,
        "nvmlDeviceGetClockInfo": lambda h, clock: 1755,
        "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 5,
        "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 16,
    }
    functions.update(overrides)
    module = types.ModuleType("pynvml")
    for name, fn in functions.items():
        if fn is not None:
            setattr(module, name, fn)
    module.refuse = refuse
    return module


GPU = GpuIdentity(0, "NVIDIA H100 80GB HBM3", (9, 0), uuid="GPU-aaaa", pci_bus_id="00000000:18:00.0")


@pytest.fixture
def reader(monkeypatch) -> NvmlReader:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    found, note = NvmlReader.open()
    assert note is None and found is not None
    return found


def test_inventory_reads_identity_and_health(reader) -> None:
    inv = reader.inventory(GPU)
    assert inv.collected and inv.name == "NVIDIA H100 80GB HBM3" and inv.serial == "1654322000001"
    assert (
        inv.uuid == "GPU-aaaa"
        and inv.pci_bus_id == "00000000:18:00.0"
        and inv.memory_total_bytes == 85_520_809_984
    )
    assert inv.ecc_enabled is True and inv.ecc_dbe_volatile == 0 and inv.ecc_dbe_aggregate == 2
    assert inv.ecc_sbe_volatile == 7
    assert inv.remapped_rows_correctable == 3 and inv.remap_pending is False and inv.remap_failed is False
    assert inv.pcie_gen_max == 5 and inv.power_limit_w == 700 and inv.slowdown_temp_c == 87
    assert reader.driver() == "580.65.06" and reader.cuda_driver() == "13.0" and reader.version()


def test_sample_under_load(reader) -> None:
    s = reader.sample(GPU)
    assert (s.temp_c, s.power_w, s.reasons, s.sm_clock_mhz) == (66, 688.123, 0x4, 1755)
    assert (s.pcie_gen, s.pcie_width) == (5, 16)


def test_handles_are_matched_by_uuid_then_pci_never_by_index(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    reader, _ = NvmlReader.open()
    by_pci = GpuIdentity(1, "x", (9, 0), uuid="GPU-unknown", pci_bus_id="00000000:1B:00.0")
    assert reader.handle(by_pci) == "h1"
    lost = GpuIdentity(2, "x", (9, 0), uuid="GPU-unknown", pci_bus_id=None)
    inv = reader.inventory(lost)
    assert not inv.collected and "CUDA device 2" in inv.note
    assert reader.sample(lost) is None


def test_unsupported_readings_are_absent_not_errors(monkeypatch) -> None:
    module = fake_pynvml(
        nvmlDeviceGetSerial=None,  # an older binding without the function
        nvmlDeviceGetCurrentClocksEventReasons=None,
        nvmlDeviceGetCurrentClocksThrottleReasons=lambda h: 0x40,  # ...which has the old name
    )
    module.nvmlDeviceGetRemappedRows = module.refuse
    module.nvmlDeviceGetTemperatureThreshold = module.refuse
    monkeypatch.setitem(sys.modules, "pynvml", module)
    reader, _ = NvmlReader.open()
    inv = reader.inventory(GPU)
    assert inv.serial is None and inv.remap_pending is None and inv.slowdown_temp_c is None
    assert reader.sample(GPU).reasons == 0x40


def test_ecc_off_leaves_the_counters_unknown(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(nvmlDeviceGetEccMode=lambda h: (0, 0)))
    reader, _ = NvmlReader.open()
    inv = reader.inventory(GPU)
    assert inv.ecc_enabled is False and inv.ecc_dbe_volatile is None


def test_without_pynvml_or_a_driver_nvml_is_not_collected(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert NvmlReader.open() == (None, NVML_MISSING)

    def no_driver():
        raise NotSupported("NVML Shared Library Not Found\nsecond line")

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(nvmlInit=no_driver))
    reader, note = NvmlReader.open()
    assert reader is None and note == "NVML not collected: it could not start (NVML Shared Library Not Found)"


def test_old_bindings_that_take_bytes_only(monkeypatch) -> None:
    def by_uuid(uuid):
        if not isinstance(uuid, bytes):
            raise TypeError("bytes or integer address expected instead of str instance")
        return "h0" if uuid == b"GPU-aaaa" else None

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(nvmlDeviceGetHandleByUUID=by_uuid))
    reader, _ = NvmlReader.open()
    assert reader.handle(GPU) == "h0"
