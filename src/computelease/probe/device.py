"""The measurements on a real GPU, through PyTorch (cuBLAS) and CUDA events.

torch is imported by :func:`open_backend` only, so the rest of computelease never needs it. The runner
talks to :class:`TorchBackend` and :class:`TorchGpu` through the small interface in
:mod:`computelease.probe.runner`; the tests put a fake behind the same interface.

How each figure is taken (docs/probe.md has the why):

- GEMM: square n×n operands made on the device, ``torch.mm(a, b, out=c)`` (fp8: ``torch._scaled_mm`` with
  a column-major second operand and unit scales), warm-up launches first, then one pair of CUDA events
  around each repeat; the caller takes the median.
- plain matmul reference: ``torch.matmul(a, b)`` in bf16, back to back, timed by the host clock between
  two ``torch.cuda.synchronize()`` calls: a different clock and no preallocated output.
- copies: ``dst.copy_(src)`` of one large buffer (device copies run as a DMA device-to-device memcpy);
  host copies use pinned host memory and ``non_blocking=True`` so that the events time the transfer.
- SDC: inputs drawn on the host, exactly representable in the precision; the float64 reference is computed
  on the host CPU once per node, so a faulty GPU cannot corrupt its own yardstick.
- load: bf16 GEMMs on every GPU at once, at most three batches queued per GPU, each batch's result
  compared on the device with the first result (no host round trip), NVML sampled between batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from computelease.probe.core import (
    SDC_ROUNDOFF,
    Failed,
    GpuIdentity,
    LoadOutcome,
    MeasurementUnsupported,
    ProbeUnavailable,
    SdcSample,
)
from computelease.probe.nvml import NvmlReader

INSTALL = "pip install 'computelease[probe]'"
SEED = 20_240_925
# TF32 keeps 10 of float32's 23 mantissa bits: clearing the low 13 makes a float32 exactly representable.
_TF32_MASK = -(1 << 13)
_LOAD_BATCH = 10


def _first_line(value: object, limit: int = 160) -> str:
    lines = str(value).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"


def open_backend() -> TorchBackend:
    """The backend over every visible CUDA GPU, or :class:`ProbeUnavailable` saying why not."""
    # CUDA numbers GPUs fastest first, NVML (and so the agent's heartbeats) by PCI bus: in PCI order
    # the probe's GPU 3 is the heartbeat's GPU 3, which is what a report without UUIDs is matched by.
    # Read when CUDA starts, so it must be set before torch is imported; an operator's own setting wins.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    try:
        import torch
    except ImportError:
        raise ProbeUnavailable(f"probe needs PyTorch with CUDA: {INSTALL}") from None
    except OSError as exc:  # a wheel whose bundled CUDA libraries do not load
        raise ProbeUnavailable(
            f"PyTorch is installed but does not load ({_first_line(exc)}): {INSTALL}"
        ) from None
    if getattr(torch.version, "hip", None):
        raise ProbeUnavailable("probe measures NVIDIA GPUs through CUDA, and this PyTorch is built for ROCm")
    if not getattr(torch.version, "cuda", None):
        raise ProbeUnavailable(
            f"probe needs PyTorch with CUDA, but this one ({torch.__version__}) is built without: {INSTALL}"
        )
    reason = ""
    with warnings.catch_warnings(record=True) as caught:
        # torch explains a missing driver in a warning; keep it for the one sentence instead of printing it.
        warnings.simplefilter("always")
        try:
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except RuntimeError as exc:
            count, reason = 0, _first_line(exc)
    if count == 0:
        reason = reason or next((_first_line(w.message) for w in caught), "")
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if not reason and visible is not None:
            reason = f"CUDA_VISIBLE_DEVICES={visible!r}"
        raise ProbeUnavailable("no CUDA GPU visible" + (f" ({reason})" if reason else ""))
    return TorchBackend(torch, count)


@contextlib.contextmanager
def _math(torch: Any, precision: str, *, exact: bool = False) -> Iterator[None]:
    """TF32 on for the tf32 GEMM only; for the SDC check, no reduced-precision split-K reductions, so
    that a correct GEMM's error stays within the bound the threshold assumes."""
    matmul = torch.backends.cuda.matmul
    saved_precision = torch.get_float32_matmul_precision()
    names = ("allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction")
    saved = {name: getattr(matmul, name) for name in names if hasattr(matmul, name)}
    try:
        torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
        if exact:
            for name in saved:
                setattr(matmul, name, False)
        yield
    finally:
        torch.set_float32_matmul_precision(saved_precision)
        for name, value in saved.items():
            setattr(matmul, name, value)


def _fp8_mm(torch: Any) -> Callable[[Any, Any, Any], Any]:
    fn = getattr(torch, "_scaled_mm", None)
    if fn is None or not hasattr(torch, "float8_e4m3fn"):
        raise MeasurementUnsupported(f"this PyTorch ({torch.__version__}) has no torch._scaled_mm for FP8")

    def mm(a: Any, b: Any, scale: Any) -> Any:
        # Keywords work for both signatures: scales keyword-only and a (out, amax) tuple before 2.4,
        # positional-or-keyword and a tensor since.
        out = fn(a, b, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16, use_fast_accum=False)
        return out[0] if isinstance(out, tuple) else out

    return mm


def _digest(torch: Any, tensor: Any) -> str:
    host = tensor.detach().contiguous().cpu().view(torch.uint8)
    return hashlib.sha256(host.numpy()).hexdigest()


def _identity(torch: Any, index: int) -> GpuIdentity:
    props = torch.cuda.get_device_properties(index)
    uuid = getattr(props, "uuid", None)
    uuid_text = None
    if uuid is not None:
        uuid_text = str(uuid)
        # NVML spells UUIDs "GPU-…"; torch leaves the prefix off.
        if not uuid_text.startswith(("GPU-", "MIG-")):
            uuid_text = f"GPU-{uuid_text}"
    bus = getattr(props, "pci_bus_id", None)
    pci = None
    if isinstance(bus, int):
        domain, device = getattr(props, "pci_domain_id", 0) or 0, getattr(props, "pci_device_id", 0) or 0
        pci = f"{domain:08X}:{bus:02X}:{device:02X}.0"
    return GpuIdentity(
        index=index,
        name=props.name,
        compute_capability=(props.major, props.minor),
        uuid=uuid_text,
        pci_bus_id=pci,
        sm_count=props.multi_processor_count,
        memory_bytes=props.total_memory,
    )


@dataclass(slots=True)
class _SdcInputs:
    a: Any
    b: Any
    reference: Any
    bound: Any  # per element: what a correct GEMM's error stays under (core.SDC_ROUNDOFF)


@dataclass(slots=True)
class _LoadState:
    gpu: TorchGpu
    a: Any
    b: Any
    ref: Any
    out: Any
    mismatches: Any
    digest: str
    events: deque[Any] = field(default_factory=deque)
    gemms: int = 0


class TorchBackend:
    def __init__(self, torch: Any, count: int) -> None:
        self.torch = torch
        self.nvml, self.nvml_note = NvmlReader.open()
        self._sdc: dict[tuple[str, int], _SdcInputs] = {}
        self._gpus = [TorchGpu(self, i) for i in range(count)]

    def gpus(self) -> list[TorchGpu]:
        return list(self._gpus)

    def environment(self) -> dict[str, str | None]:
        torch = self.torch
        cuda_driver = self.nvml.cuda_driver() if self.nvml else None
        if cuda_driver is None:
            version = getattr(torch._C, "_cuda_getDriverVersion", lambda: None)()
            cuda_driver = (
                f"{version // 1000}.{version % 1000 // 10}" if isinstance(version, int) and version else None
            )
        return {"torch": torch.__version__, "cuda_runtime": torch.version.cuda, "cuda_driver": cuda_driver}

    def close(self) -> None:
        if self.nvml is not None:
            self.nvml.close()

    def sdc_inputs(self, precision: str, n: int) -> _SdcInputs:
        """Inputs exactly representable in ``precision`` and their float64 product, made once per node."""
        key = (precision, n)
        if key not in self._sdc:
            torch = self.torch
            gen = torch.Generator().manual_seed(SEED + n)
            a32, b32 = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
            if precision == "tf32":
                a, b = (x.view(torch.int32).bitwise_and(_TF32_MASK).view(torch.float32) for x in (a32, b32))
            elif precision == "fp8":
                if not hasattr(torch, "float8_e4m3fn"):
                    raise MeasurementUnsupported(f"this PyTorch ({torch.__version__}) has no float8 types")
                a, b = a32.to(torch.float8_e4m3fn), b32.to(torch.float8_e4m3fn)
            else:
                dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
                a, b = a32.to(dtype), b32.to(dtype)
            a64, b64 = a.to(torch.float32).to(torch.float64), b.to(torch.float32).to(torch.float64)
            reference = a64 @ b64
            u_out, u_acc = SDC_ROUNDOFF[precision]
            bound = u_out * reference.abs() + n * u_acc * (a64.abs() @ b64.abs())
            self._sdc[key] = _SdcInputs(a, b, reference, bound)
        return self._sdc[key]

    def load(
        self,
        gpus: Sequence[TorchGpu],
        *,
        n: int,
        seconds: float,
        sample: Callable[[], None],
        sample_every: float = 0.25,
    ) -> dict[int, LoadOutcome | Failed]:
        torch = self.torch
        gen = torch.Generator().manual_seed(SEED)
        # Drawn on the host so that every GPU multiplies the very same numbers.
        a_host = torch.randn(n, n, generator=gen).to(torch.bfloat16)
        b_host = torch.randn(n, n, generator=gen).to(torch.bfloat16)
        results: dict[int, LoadOutcome | Failed] = {}
        states: dict[int, _LoadState] = {}
        for gpu in gpus:
            try:
                with torch.cuda.device(gpu.index):
                    a, b = a_host.to(gpu.device), b_host.to(gpu.device)
                    ref = torch.mm(a, b)
                    states[gpu.index] = _LoadState(
                        gpu,
                        a,
                        b,
                        ref,
                        torch.empty_like(ref),
                        torch.zeros((), dtype=torch.int64, device=gpu.device),
                        _digest(torch, ref),
                    )
            except Exception as exc:
                results[gpu.index] = Failed(_error(exc))
        start = time.monotonic()
        next_sample = start
        while states and time.monotonic() - start < seconds:
            for index, st in list(states.items()):
                try:
                    with torch.cuda.device(index):
                        for _ in range(_LOAD_BATCH):
                            torch.mm(st.a, st.b, out=st.out)
                        st.mismatches += torch.ne(st.out, st.ref).any().to(torch.int64)
                        event = torch.cuda.Event()
                        event.record()
                        st.events.append(event)
                        st.gemms += _LOAD_BATCH
                    # Three batches queued keep the GPU busy while the host samples and loops.
                    while len(st.events) > 3:
                        st.events.popleft().synchronize()
                except Exception as exc:
                    results[index] = Failed(_error(exc))
                    del states[index]
            now = time.monotonic()
            if now >= next_sample:
                sample()
                next_sample = now + sample_every
        for index, st in states.items():
            try:
                torch.cuda.synchronize(index)
                elapsed = time.monotonic() - start
                results[index] = LoadOutcome(elapsed, st.gemms, int(st.mismatches.item()), st.digest)
            except Exception as exc:
                results[index] = Failed(_error(exc))
        states.clear()
        torch.cuda.empty_cache()
        return results


MIN_WINDOW_S = 1.0
"""Each GEMM, copy and reference figure is timed over at least this long (more repeats than the mode's
count where one repeat is short), so that it is the card's sustained rate and not one clock swing's."""


class TorchGpu:
    def __init__(self, backend: TorchBackend, index: int) -> None:
        self._backend = backend
        self._torch = backend.torch
        self.index = index
        self.device = self._torch.device("cuda", index)
        self.identity = _identity(self._torch, index)

    def _event_times(self, run: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
        torch = self._torch
        for _ in range(warmup):
            run()
        repeats = max(repeats, self._repeats_for_window(run))
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        torch.cuda.synchronize(self.index)
        for start, end in zip(starts, ends, strict=True):
            start.record()
            run()
            end.record()
        torch.cuda.synchronize(self.index)
        return [start.elapsed_time(end) / 1e3 for start, end in zip(starts, ends, strict=True)]

    def _repeats_for_window(self, run: Callable[[], Any]) -> int:
        """Enough repeats to fill MIN_WINDOW_S. A card at its power cap swings its clock (an H100 SXM at
        700 W between 1275 and 1980 MHz), and 10 GEMMs of n=8192 last 14 ms: one swing. Seen on one
        H100: 688 to 778 TFLOPS from one short window to the next."""
        torch = self._torch
        torch.cuda.synchronize(self.index)
        start = time.perf_counter()
        run()
        torch.cuda.synchronize(self.index)
        return int(MIN_WINDOW_S / max(time.perf_counter() - start, 1e-6)) + 1

    def gemm(self, precision: str, n: int, warmup: int, repeats: int) -> list[float]:
        torch = self._torch
        try:
            with torch.cuda.device(self.index), _math(torch, precision):
                dev = self.device
                if precision == "fp8":
                    mm = _fp8_mm(torch)
                    a = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn)
                    # scaled_mm wants the second operand column-major.
                    b = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn).t()
                    scale = torch.ones((), device=dev, dtype=torch.float32)

                    def run() -> Any:
                        return mm(a, b, scale)

                else:
                    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32}[precision]
                    a = torch.randn(n, n, device=dev, dtype=dtype)
                    b = torch.randn(n, n, device=dev, dtype=dtype)
                    out = torch.empty(n, n, device=dev, dtype=dtype)

                    def run() -> Any:
                        return torch.mm(a, b, out=out)

                return self._event_times(run, warmup, repeats)
        finally:
            torch.cuda.empty_cache()

    def matmul_reference(self, n: int, repeats: int) -> float:
        torch = self._torch
        try:
            with torch.cuda.device(self.index), _math(torch, "bf16"):
                a = torch.randn(n, n, device=self.device, dtype=torch.bfloat16)
                b = torch.randn(n, n, device=self.device, dtype=torch.bfloat16)
                for _ in range(3):
                    torch.matmul(a, b)
                repeats = max(repeats, self._repeats_for_window(lambda: torch.matmul(a, b)))
                torch.cuda.synchronize(self.index)
                start = time.perf_counter()
                for _ in range(repeats):
                    torch.matmul(a, b)
                torch.cuda.synchronize(self.index)
                return (time.perf_counter() - start) / repeats
        finally:
            torch.cuda.empty_cache()

    def copy(self, kind: str, nbytes: int, warmup: int, repeats: int) -> list[float]:
        torch = self._torch
        try:
            with torch.cuda.device(self.index):
                on_device = torch.empty(nbytes, dtype=torch.uint8, device=self.device).fill_(0x5A)
                if kind == "device_copy":
                    other = torch.empty_like(on_device)

                    def run() -> Any:
                        return other.copy_(on_device)

                else:
                    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True).fill_(0xA5)
                    if kind == "host_to_device":

                        def run() -> Any:
                            return on_device.copy_(host, non_blocking=True)

                    else:

                        def run() -> Any:
                            return host.copy_(on_device, non_blocking=True)

                return self._event_times(run, warmup, repeats)
        finally:
            torch.cuda.empty_cache()

    def sdc(self, precision: str, n: int) -> SdcSample:
        torch = self._torch
        inputs = self._backend.sdc_inputs(precision, n)
        try:
            with torch.cuda.device(self.index), _math(torch, precision, exact=True):
                a, b = inputs.a.to(self.device), inputs.b.to(self.device)
                if precision == "fp8":
                    mm = _fp8_mm(torch)
                    scale = torch.ones((), device=self.device, dtype=torch.float32)
                    c = mm(a, b.t().contiguous().t(), scale)
                else:
                    c = torch.mm(a, b)
                host = c.cpu()
        finally:
            torch.cuda.empty_cache()
        nonfinite = int((~torch.isfinite(host.to(torch.float32))).sum())
        error = None
        if not nonfinite:
            error = float(((host.to(torch.float64) - inputs.reference).abs() / inputs.bound).max())
        return SdcSample(error, nonfinite, _digest(torch, host))
