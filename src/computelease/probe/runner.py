"""The probe's sequence: inventory, sustained load, then each GPU's figures one GPU at a time.

The backend (the real one is :mod:`computelease.probe.device`) is anything with the methods of
:class:`Backend` and :class:`Gpu`; tests pass a fake with made-up timings. A measurement that raises
does not stop the probe: it becomes a failed check of that GPU (an error under a GEMM is a finding, not a
crash), while :class:`MeasurementUnsupported` marks a software stack that cannot take it (warn).

Order matters: the load runs first, so the figures that follow are those of a warm card, the ones a
customer's long job gets, not a cold card's first seconds.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from computelease import __version__
from computelease.catalog.core import Catalog
from computelease.probe.core import (
    COPIES,
    PRECISIONS,
    SETTINGS,
    Failed,
    GpuIdentity,
    GpuMeasurements,
    LoadOutcome,
    MeasurementUnsupported,
    NvmlSample,
    ProbeUnavailable,
    SdcSample,
    Thresholds,
    build_report,
)
from computelease.probe.schemas import Environment, Inventory, Mode, ProbeReport, Verdict

Progress = Callable[[str], None]
T = TypeVar("T")


class Nvml(Protocol):
    def driver(self) -> str | None: ...
    def version(self) -> str | None: ...
    def inventory(self, gpu: GpuIdentity) -> Inventory: ...
    def sample(self, gpu: GpuIdentity) -> NvmlSample | None: ...


class Gpu(Protocol):
    index: int
    identity: GpuIdentity

    def gemm(self, precision: str, n: int, warmup: int, repeats: int) -> list[float]: ...
    def matmul_reference(self, n: int, repeats: int) -> float: ...
    def copy(self, kind: str, nbytes: int, warmup: int, repeats: int) -> list[float]: ...
    def sdc(self, precision: str, n: int) -> SdcSample: ...


class Backend(Protocol):
    nvml: Nvml | None
    nvml_note: str | None

    def gpus(self) -> Sequence[Any]: ...
    def environment(self) -> dict[str, str | None]: ...
    def load(
        self, gpus: Sequence[Any], *, n: int, seconds: float, sample: Callable[[], None]
    ) -> dict[int, LoadOutcome | Failed]: ...


def _failure(exc: Exception) -> Failed:
    if isinstance(exc, MeasurementUnsupported):
        return Failed(str(exc), Verdict.WARN)
    lines = str(exc).strip().splitlines()
    return Failed(f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "))


def _attempt(fn: Callable[[], T]) -> T | Failed:
    try:
        return fn()
    except Exception as exc:
        return _failure(exc)


def _timed(fn: Callable[[], T]) -> T | Failed:
    """As :func:`_attempt`, for timings: an empty or non-positive timing is a failed measurement (a
    broken event or clock), never a figure."""

    def checked() -> T:
        result = fn()
        times = result if isinstance(result, list) else [result]
        if not times or not all(isinstance(t, int | float) and 0 < t < math.inf for t in times):
            raise ValueError(f"the device returned no usable timing ({times[:3]!r})")
        return result

    return _attempt(checked)


def _no_fp8(gpu: GpuIdentity) -> Failed:
    major, minor = gpu.compute_capability
    return Failed(f"FP8 needs compute capability 8.9 or newer; this card is {major}.{minor}", Verdict.SKIP)


def run_probe(
    backend: Backend,
    *,
    mode: Mode,
    catalog: Catalog,
    thresholds: Thresholds,
    node: str | None = None,
    progress: Progress = lambda _message: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ProbeReport:
    settings = SETTINGS[mode]
    started = now()
    gpus = list(backend.gpus())
    if not gpus:
        raise ProbeUnavailable("no CUDA GPU visible")
    nvml = backend.nvml
    found: dict[int, GpuMeasurements] = {}
    for gpu in gpus:
        inventory = (
            nvml.inventory(gpu.identity)
            if nvml is not None
            else Inventory(collected=False, note=backend.nvml_note or "NVML not collected")
        )
        found[gpu.index] = GpuMeasurements(identity=gpu.identity, inventory=inventory)
        progress(f"GPU {gpu.index}: {gpu.identity.name}")

    def sample() -> None:
        if nvml is None:
            return
        for gpu in gpus:
            if (reading := nvml.sample(gpu.identity)) is not None:
                found[gpu.index].samples.append(reading)

    progress(f"load: bf16 GEMMs on {len(gpus)} GPU(s) at once for {settings.load_seconds:g} s")
    try:
        outcomes = backend.load(gpus, n=settings.gemm_n, seconds=settings.load_seconds, sample=sample)
    except Exception as exc:
        failed = _failure(exc)
        outcomes = {gpu.index: failed for gpu in gpus}
    for gpu in gpus:
        found[gpu.index].load = outcomes.get(gpu.index) or Failed("the load did not report this GPU")

    s = settings
    for gpu in gpus:
        m = found[gpu.index]
        for p in PRECISIONS:
            progress(f"GPU {gpu.index}: {p} GEMM n={s.gemm_n}")
            if p == "fp8" and not gpu.identity.fp8:
                m.gemm[p] = _no_fp8(gpu.identity)
            else:
                m.gemm[p] = _timed(lambda p=p, gpu=gpu: gpu.gemm(p, s.gemm_n, s.gemm_warmup, s.gemm_repeats))
            if p == "bf16":
                # Straight after the bf16 GEMM: a power-capped card slows as it heats (an H100 at its
                # 700 W cap lost 8% over the fp16/tf32/fp8 runs), which would read as the probe's error.
                progress(f"GPU {gpu.index}: plain torch.matmul reference")
                m.reference = _timed(lambda gpu=gpu: gpu.matmul_reference(s.gemm_n, s.reference_repeats))
        for kind in COPIES:
            progress(f"GPU {gpu.index}: {kind.replace('_', ' ')}")
            nbytes = s.copy_bytes if kind == "device_copy" else s.host_bytes
            m.copies[kind] = _timed(lambda k=kind, b=nbytes, gpu=gpu: gpu.copy(k, b, 2, s.copy_repeats))
        for p in PRECISIONS:
            if p == "fp8" and not gpu.identity.fp8:
                m.sdc[p] = _no_fp8(gpu.identity)
            else:
                progress(f"GPU {gpu.index}: {p} result against a float64 reference")
                m.sdc[p] = _attempt(lambda p=p, gpu=gpu: gpu.sdc(p, s.sdc_n))

    env = backend.environment()
    environment = Environment(
        hostname=platform.node(),
        platform=platform.platform(),
        python=platform.python_version(),
        computelease=__version__,
        torch=env.get("torch"),
        cuda_runtime=env.get("cuda_runtime"),
        cuda_driver=env.get("cuda_driver"),
        driver=nvml.driver() if nvml is not None else None,
        nvml=nvml.version() if nvml is not None else None,
        gpu_count=len(gpus),
    )
    return build_report(
        [found[g.index] for g in gpus],
        mode=mode,
        settings=settings,
        environment=environment,
        catalog=catalog,
        thresholds=thresholds,
        started_at=started,
        finished_at=now(),
        node=node,
    )
