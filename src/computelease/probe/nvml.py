"""NVML through ``pynvml`` (package nvidia-ml-py), imported only when the probe runs.

Every reading is optional: a card or driver that does not support one (NVML_ERROR_NOT_SUPPORTED), or an
older binding without the function, gives None rather than stopping the probe. Constants are looked up
on the module with nvml.h's values as fallbacks, since bindings have renamed some across versions
(ClocksThrottleReasons became ClocksEventReasons).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any

from computelease.probe.core import NVML_MISSING, GpuIdentity, NvmlSample
from computelease.probe.schemas import Inventory

# nvml.h values, used where the binding lacks the name.
_CONSTANTS = {
    "NVML_TEMPERATURE_GPU": 0,
    "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN": 1,
    "NVML_CLOCK_SM": 1,
    "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
    "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1,
    "NVML_VOLATILE_ECC": 0,
    "NVML_AGGREGATE_ECC": 1,
    "NVML_FEATURE_ENABLED": 1,
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class NvmlReader:
    """Reads inventory and load samples for the GPUs the probe measures, matched by UUID or PCI id."""

    def __init__(self, module: Any) -> None:
        self._nv = module
        self._handles: dict[int, Any] = {}

    @classmethod
    def open(cls) -> tuple[NvmlReader | None, str | None]:
        """A reader, or None and the sentence that says why NVML is not collected."""
        try:
            module = importlib.import_module("pynvml")
        except ImportError:
            return None, NVML_MISSING
        try:
            module.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded...
            return None, f"NVML not collected: it could not start ({_first_line(exc)})"
        return cls(module), None

    def close(self) -> None:
        # Shutting down a library the process is done with: a failure there changes nothing.
        with contextlib.suppress(Exception):
            self._nv.nvmlShutdown()

    def _const(self, name: str) -> int:
        return getattr(self._nv, name, _CONSTANTS[name])

    def _get(self, fn: str, *args: Any) -> Any:
        call: Callable[..., Any] | None = getattr(self._nv, fn, None)
        if call is None:
            return None
        try:
            return call(*args)
        except Exception:  # NVMLError_NotSupported and kin: the reading is simply absent
            return None

    # ---------------------------------------------------------------------------------- system

    def driver(self) -> str | None:
        return _text(self._get("nvmlSystemGetDriverVersion"))

    def version(self) -> str | None:
        return _text(self._get("nvmlSystemGetNVMLVersion"))

    def cuda_driver(self) -> str | None:
        value = self._get("nvmlSystemGetCudaDriverVersion")
        return f"{value // 1000}.{value % 1000 // 10}" if isinstance(value, int) else None

    # ---------------------------------------------------------------------------------- devices

    def handle(self, gpu: GpuIdentity) -> Any:
        """The NVML handle of a CUDA device. CUDA and NVML number GPUs differently (CUDA puts the
        fastest first, NVML goes by PCI bus), so the index is never used to match."""
        if gpu.index in self._handles:
            return self._handles[gpu.index]
        found = None
        # Bindings before nvidia-ml-py 11.5 take bytes only; newer ones take either.
        for fn, key in (
            ("nvmlDeviceGetHandleByUUID", gpu.uuid),
            ("nvmlDeviceGetHandleByPciBusId", gpu.pci_bus_id),
        ):
            for value in (key, key.encode()) if key else ():
                if found is None:
                    found = self._get(fn, value)
        self._handles[gpu.index] = found
        return found

    def inventory(self, gpu: GpuIdentity) -> Inventory:
        h = self.handle(gpu)
        if h is None:
            return Inventory(collected=False, note=f"NVML has no GPU matching CUDA device {gpu.index}")
        memory = self._get("nvmlDeviceGetMemoryInfo", h)
        ecc = self._get("nvmlDeviceGetEccMode", h)
        rows = self._get("nvmlDeviceGetRemappedRows", h)
        pci = self._get("nvmlDeviceGetPciInfo", h)
        limit = self._get("nvmlDeviceGetEnforcedPowerLimit", h)
        slowdown = self._get(
            "nvmlDeviceGetTemperatureThreshold", h, self._const("NVML_TEMPERATURE_THRESHOLD_SLOWDOWN")
        )
        unc, cor = (
            self._const("NVML_MEMORY_ERROR_TYPE_UNCORRECTED"),
            self._const("NVML_MEMORY_ERROR_TYPE_CORRECTED"),
        )
        vol, agg = self._const("NVML_VOLATILE_ECC"), self._const("NVML_AGGREGATE_ECC")
        ecc_on = None
        if ecc is not None:
            current = ecc[0] if isinstance(ecc, list | tuple) else ecc
            ecc_on = current == self._const("NVML_FEATURE_ENABLED")
        return Inventory(
            collected=True,
            name=_text(self._get("nvmlDeviceGetName", h)),
            uuid=_text(self._get("nvmlDeviceGetUUID", h)),
            serial=_text(self._get("nvmlDeviceGetSerial", h)),
            pci_bus_id=_text(getattr(pci, "busId", None)),
            vbios=_text(self._get("nvmlDeviceGetVbiosVersion", h)),
            memory_total_bytes=getattr(memory, "total", None),
            ecc_enabled=ecc_on,
            # Counters exist only with ECC on; with it off they read as absent, not as zero.
            ecc_dbe_volatile=self._get("nvmlDeviceGetTotalEccErrors", h, unc, vol) if ecc_on else None,
            ecc_dbe_aggregate=self._get("nvmlDeviceGetTotalEccErrors", h, unc, agg) if ecc_on else None,
            ecc_sbe_volatile=self._get("nvmlDeviceGetTotalEccErrors", h, cor, vol) if ecc_on else None,
            remapped_rows_correctable=int(rows[0]) if rows else None,
            remapped_rows_uncorrectable=int(rows[1]) if rows else None,
            remap_pending=bool(rows[2]) if rows else None,
            remap_failed=bool(rows[3]) if rows else None,
            pcie_gen_max=self._get("nvmlDeviceGetMaxPcieLinkGeneration", h),
            pcie_width_max=self._get("nvmlDeviceGetMaxPcieLinkWidth", h),
            power_limit_w=limit / 1000 if isinstance(limit, int | float) else None,
            slowdown_temp_c=float(slowdown) if isinstance(slowdown, int | float) else None,
        )

    def sample(self, gpu: GpuIdentity) -> NvmlSample | None:
        h = self.handle(gpu)
        if h is None:
            return None
        reasons = self._get("nvmlDeviceGetCurrentClocksEventReasons", h)
        if reasons is None:
            reasons = self._get("nvmlDeviceGetCurrentClocksThrottleReasons", h)
        power = self._get("nvmlDeviceGetPowerUsage", h)
        temp = self._get("nvmlDeviceGetTemperature", h, self._const("NVML_TEMPERATURE_GPU"))
        clock = self._get("nvmlDeviceGetClockInfo", h, self._const("NVML_CLOCK_SM"))
        return NvmlSample(
            temp_c=float(temp) if temp is not None else None,
            power_w=power / 1000 if power is not None else None,
            reasons=int(reasons) if reasons is not None else None,
            sm_clock_mhz=float(clock) if clock is not None else None,
            pcie_gen=self._get("nvmlDeviceGetCurrPcieLinkGeneration", h),
            pcie_width=self._get("nvmlDeviceGetCurrPcieLinkWidth", h),
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
