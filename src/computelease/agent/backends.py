"""Where GPU readings come from: NVML on a real node, or a simulated fleet (:mod:`.simulated`).

A backend answers :meth:`Backend.sample` with one :class:`Sample` (the GPUs and the readings the cards do
not support) and spends the time between heartbeats in :meth:`Backend.wait`, where NVML collects XID
events as they happen.

The NVML backend needs ``nvidia-ml-py`` (the ``agent`` extra), imported only when the backend starts. It
follows NVML's rules for partial support: a call failing with ``NVML_ERROR_NOT_SUPPORTED`` (or missing from
an old driver or binding) names the field in ``unsupported`` and is not an error; ``GPU_IS_LOST`` marks
the GPU lost; any other failure is kept in the GPU's ``errors``. A reading outside the wire format's bounds
(a sensor returning 255 °C, say) becomes None with a note, so one bad sensor never costs a heartbeat.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple, Protocol

from pydantic import ValidationError

from computelease.agent.errors import BackendUnavailable
from computelease.telemetry.schemas import GPU_READINGS, MAX_XIDS, GpuSample

log = logging.getLogger("computelease.agent")

INSTALL_HINT = "the nvml backend needs nvidia-ml-py: pip install 'computelease[agent]'"

# NVML's C constants (nvml.h); stable across driver versions, used when a binding lacks a name.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_EVENT_TYPE_XID_CRITICAL_ERROR = 0x8

# nvmlClocksEventReason* bits (called ClocksThrottleReason* before driver 535).
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
MIB = 1024 * 1024


class Sample(NamedTuple):
    gpus: list[GpuSample]
    unsupported: list[str]


class Backend(Protocol):
    name: str

    def sample(self) -> Sample | None:
        """The GPUs now; None when there is nothing to send (a simulated host that is down)."""

    def wait(self, seconds: float) -> None:
        """Spend up to ``seconds`` until the next sample, collecting events."""

    def close(self) -> None: ...


def decode_throttle(mask: int) -> list[str]:
    """Names of the set bits; a bit newer than this table is kept as ``bit_N`` rather than lost."""
    names = []
    for bit in range(64):
        if mask >> bit & 1:
            names.append(THROTTLE_REASONS.get(1 << bit, f"bit_{bit}"))
    return names


def text(value: object) -> str:
    """NVML strings: bytes from older pynvml, str from newer; C buffers may carry trailing NULs."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return str(value).strip("\x00").strip()


def make_gpu(values: dict[str, Any], errors: Iterable[str] = ()) -> GpuSample:
    """A valid :class:`GpuSample` from raw readings; a reading out of bounds becomes None, with a note."""
    notes = [note[:200] for note in errors]
    values = dict(values)
    for _ in range(3):
        try:
            return GpuSample.model_validate({**values, "errors": notes[:32]})
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error["loc"]
                name = str(loc[0]) if loc else "memory_used_mb"  # the one whole-model rule
                if name not in values or name in ("index", "errors"):
                    raise
                bad = values[name]
                values[name] = [] if isinstance(bad, list) else None
                notes.append(f"{name}: {error['msg']} (got {bad!r:.40})"[:200])
    return GpuSample.model_validate({**values, "errors": notes[:32]})


def _optional_text(value: object) -> str | None:
    return None if value is None else (text(value) or None)


def _reraise(exc: BaseException) -> Any:
    raise exc


def load_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:
        raise BackendUnavailable(INSTALL_HINT) from exc
    return pynvml


def _address(handle: object) -> int | None:
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value  # type: ignore[arg-type]
    except (TypeError, ctypes.ArgumentError):
        return None


class _Lost(Exception):
    pass


@dataclass
class _Gpu:
    index: int
    handle: Any
    uuid: str | None = None
    xids: list[int] = field(default_factory=list)
    xid_events: bool = True


class NvmlBackend:
    """Readings through NVML (``pynvml``); pass ``nvml`` to use another module with its API (tests)."""

    name = "nvml"

    def __init__(
        self,
        nvml: ModuleType | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        slice_s: float = 1.0,
    ) -> None:
        self._nvml = nvml if nvml is not None else load_pynvml()
        self._sleep = sleep
        # NVML waits hold no Python signal handling; short slices keep the agent stoppable.
        self._slice_ms = max(1, int(slice_s * 1000))
        self._error = getattr(self._nvml, "NVMLError", Exception)
        self._event_error = ""
        try:
            self._nvml.nvmlInit()
        except self._error as exc:
            raise BackendUnavailable(
                f"NVML did not start ({text(exc)}); is the NVIDIA driver loaded on this node?"
            ) from exc
        self._gpus: list[_Gpu] = []
        for index in range(self._nvml.nvmlDeviceGetCount()):
            try:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            except self._error as exc:
                log.warning("GPU %d: no handle (%s)", index, text(exc))
                self._gpus.append(_Gpu(index, None))
                continue
            gpu = _Gpu(index, handle)
            try:
                gpu.uuid = text(self._nvml.nvmlDeviceGetUUID(handle))
            except self._error as exc:  # read again at each sample
                log.warning("GPU %d: no UUID (%s)", index, text(exc))
            self._gpus.append(gpu)
        self._events = self._register_events()

    # -- NVML plumbing ---------------------------------------------------------------------------------

    def _const(self, name: str, default: int) -> int:
        return getattr(self._nvml, name, default)

    @staticmethod
    def _code(exc: BaseException) -> int | None:
        return getattr(exc, "value", None)

    def _unsupported(self, exc: BaseException) -> bool:
        cls = getattr(self._nvml, "NVMLError_NotSupported", None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
        return self._code(exc) in (
            self._const("NVML_ERROR_NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED),
            self._const("NVML_ERROR_FUNCTION_NOT_FOUND", NVML_ERROR_FUNCTION_NOT_FOUND),
        )

    def _register_events(self) -> Any:
        xid = self._const("nvmlEventTypeXidCriticalError", NVML_EVENT_TYPE_XID_CRITICAL_ERROR)
        try:
            events = self._nvml.nvmlEventSetCreate()
        except (self._error, AttributeError) as exc:
            log.warning("XID events unavailable: %s", text(exc))
            for gpu in self._gpus:
                gpu.xid_events = False
            return None
        for gpu in self._gpus:
            if gpu.handle is None:
                gpu.xid_events = False
                continue
            try:
                self._nvml.nvmlDeviceRegisterEvents(gpu.handle, xid, events)
            except self._error as exc:
                gpu.xid_events = False
                if not self._unsupported(exc):
                    log.warning("GPU %d: XID events not registered (%s)", gpu.index, text(exc))
        return events

    def _gpu_of(self, device: Any) -> _Gpu | None:
        for gpu in self._gpus:
            if gpu.handle is device or (gpu.handle is not None and gpu.handle == device):
                return gpu
        address = _address(device)
        if address is not None:
            for gpu in self._gpus:
                if gpu.handle is not None and _address(gpu.handle) == address:
                    return gpu
        try:
            uuid = text(self._nvml.nvmlDeviceGetUUID(device))
        except self._error:
            return None
        return next((g for g in self._gpus if g.uuid == uuid), None)

    def _wait_event(self, timeout_ms: int) -> bool:
        """Wait for one event; False on timeout or when events cannot be read."""
        try:
            data = self._nvml.nvmlEventSetWait(self._events, timeout_ms)
        except self._error as exc:
            if self._code(exc) != self._const("NVML_ERROR_TIMEOUT", NVML_ERROR_TIMEOUT):
                if text(exc) != self._event_error:  # once per kind of failure, not every second
                    log.warning("reading XID events failed: %s", text(exc))
                    self._event_error = text(exc)
                self._sleep(timeout_ms / 1000)
            return False
        self._event_error = ""
        xid_type = self._const("nvmlEventTypeXidCriticalError", NVML_EVENT_TYPE_XID_CRITICAL_ERROR)
        if getattr(data, "eventType", xid_type) & xid_type:
            gpu = self._gpu_of(data.device)
            xid = int(data.eventData)
            if gpu is None:
                log.warning("XID %d on a GPU the agent does not know", xid)
            else:
                log.info("GPU %d: XID %d", gpu.index, xid)
                if xid not in gpu.xids and len(gpu.xids) < MAX_XIDS:
                    gpu.xids.append(xid)
        return True

    def wait(self, seconds: float) -> None:
        if self._events is None:
            self._sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._wait_event(min(self._slice_ms, max(1, int(left * 1000))))

    def _drain(self) -> None:
        if self._events is not None:
            while self._wait_event(0):
                pass

    # -- readings --------------------------------------------------------------------------------------

    def _read_gpu(self, gpu: _Gpu, unsupported: set[str]) -> GpuSample:
        nvml = self._nvml
        values: dict[str, Any] = {"index": gpu.index, "uuid": gpu.uuid}
        errors: list[str] = []
        lost_code = self._const("NVML_ERROR_GPU_IS_LOST", NVML_ERROR_GPU_IS_LOST)

        def read(names: tuple[str, ...], call: Callable[[], Any]) -> Any:
            try:
                return call()
            except AttributeError:  # an old binding without this call: the same as unsupported
                unsupported.update(names)
            except self._error as exc:
                if self._code(exc) == lost_code:
                    raise _Lost from exc
                if self._unsupported(exc):
                    unsupported.update(names)
                else:
                    errors.append(f"{names[0]}: {text(exc)}")
            return None

        h = gpu.handle
        xids, gpu.xids = gpu.xids, []
        if not gpu.xid_events:
            unsupported.add("xids")
        if h is None:
            return make_gpu({**values, "lost": True, "xids": xids}, ["GPU is lost"])
        try:
            if gpu.uuid is None:
                uuid = read(("uuid",), lambda: nvml.nvmlDeviceGetUUID(h))
                gpu.uuid = values["uuid"] = text(uuid) if uuid is not None else None
            values["serial"] = _optional_text(read(("serial",), lambda: nvml.nvmlDeviceGetSerial(h)))
            values["name"] = _optional_text(read(("name",), lambda: nvml.nvmlDeviceGetName(h)))
            memory = read(("memory_total_mb", "memory_used_mb"), lambda: nvml.nvmlDeviceGetMemoryInfo(h))
            if memory is not None:
                values["memory_total_mb"] = int(memory.total) // MIB
                values["memory_used_mb"] = int(memory.used) // MIB
            util = read(("utilization_pct",), lambda: nvml.nvmlDeviceGetUtilizationRates(h))
            values["utilization_pct"] = None if util is None else int(util.gpu)
            milliwatts = read(("power_w",), lambda: nvml.nvmlDeviceGetPowerUsage(h))
            values["power_w"] = None if milliwatts is None else round(milliwatts / 1000, 1)
            sensor = self._const("NVML_TEMPERATURE_GPU", NVML_TEMPERATURE_GPU)
            values["temperature_c"] = read(
                ("temperature_c",), lambda: nvml.nvmlDeviceGetTemperature(h, sensor)
            )
            sm = self._const("NVML_CLOCK_SM", NVML_CLOCK_SM)
            values["sm_clock_mhz"] = read(("sm_clock_mhz",), lambda: nvml.nvmlDeviceGetClockInfo(h, sm))
            corrected = self._const("NVML_MEMORY_ERROR_TYPE_CORRECTED", NVML_MEMORY_ERROR_TYPE_CORRECTED)
            uncorrected = self._const(
                "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", NVML_MEMORY_ERROR_TYPE_UNCORRECTED
            )
            volatile = self._const("NVML_VOLATILE_ECC", NVML_VOLATILE_ECC)
            aggregate = self._const("NVML_AGGREGATE_ECC", NVML_AGGREGATE_ECC)
            for field_name, error_type, counter_type in (
                ("ecc_sbe_volatile", corrected, volatile),
                ("ecc_dbe_volatile", uncorrected, volatile),
                ("ecc_sbe_aggregate", corrected, aggregate),
                ("ecc_dbe_aggregate", uncorrected, aggregate),
            ):
                values[field_name] = read(
                    (field_name,),
                    lambda e=error_type, c=counter_type: nvml.nvmlDeviceGetTotalEccErrors(h, e, c),
                )
            rows = read(("remap_pending", "remap_failed"), lambda: nvml.nvmlDeviceGetRemappedRows(h))
            if rows is not None:
                values["remap_pending"] = bool(rows[2])
                values["remap_failed"] = bool(rows[3])
            values["pcie_gen"] = read(("pcie_gen",), lambda: nvml.nvmlDeviceGetCurrPcieLinkGeneration(h))
            values["pcie_width"] = read(("pcie_width",), lambda: nvml.nvmlDeviceGetCurrPcieLinkWidth(h))
            mask = self._throttle_mask(h, read)
            values["throttle_reasons"] = [] if mask is None else decode_throttle(int(mask))
        except _Lost:
            # Read again at every heartbeat: a GPU that answers after a reset is back.
            log.warning("GPU %d is lost", gpu.index)
            return make_gpu(
                {"index": gpu.index, "uuid": gpu.uuid, "lost": True, "xids": xids}, ["GPU is lost"]
            )
        values["xids"] = xids
        values["lost"] = False
        return make_gpu(values, errors)

    def _throttle_mask(self, handle: Any, read: Callable[..., Any]) -> int | None:
        # Driver 535 renamed the call; older drivers and bindings only have the throttle spelling.
        newer = getattr(self._nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if newer is not None:
            try:
                return newer(handle)
            except self._error as exc:
                if not self._unsupported(exc):
                    return read(("throttle_reasons",), lambda e=exc: _reraise(e))
        return read(
            ("throttle_reasons",), lambda: self._nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)
        )

    def sample(self) -> Sample:
        self._drain()
        unsupported: set[str] = set()
        gpus = [self._read_gpu(gpu, unsupported) for gpu in self._gpus]
        return Sample(gpus, [name for name in GPU_READINGS if name in unsupported])

    def close(self) -> None:
        try:
            if self._events is not None:
                self._nvml.nvmlEventSetFree(self._events)
            self._nvml.nvmlShutdown()
        except self._error as exc:
            log.warning("NVML shutdown: %s", text(exc))
        self._events = None
