"""Fakes for the probe: a device with made-up timings and an NVML with made-up readings.

A FakeGpu is told the figures it should "measure" (TFLOPS, GB/s, SDC error) and turns them into the
seconds-per-repeat the real device returns, so the whole path from timings to verdicts is exercised.
The defaults are the measured H100 SXM figures of DOMAIN.md; host copies are made up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from computelease.catalog.core import Catalog, load_catalog
from computelease.probe.core import (
    GpuIdentity,
    LoadOutcome,
    NvmlSample,
    SdcSample,
    Thresholds,
    load_thresholds,
)
from computelease.probe.schemas import Inventory

H100 = "NVIDIA H100 80GB HBM3"
MEASURED_H100 = {"bf16": 789.0, "fp16": 757.0, "tf32": 381.0, "fp8": 1417.0}
GOOD_COPIES = {"device_copy": 3000.0, "host_to_device": 52.0, "device_to_host": 50.0}


def seconds_for_tflops(n: int, tflops: float) -> float:
    return 2 * n**3 / (tflops * 1e12)


@dataclass
class FakeGpu:
    index: int
    name: str = H100
    capability: tuple[int, int] = (9, 0)
    tflops: dict[str, float] = field(default_factory=lambda: dict(MEASURED_H100))
    reference_tflops: float | None = None  # the plain matmul; None: same as bf16
    gbs: dict[str, float] = field(default_factory=lambda: dict(GOOD_COPIES))
    sdc_units: dict[str, float] = field(default_factory=dict)
    nonfinite: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    @property
    def identity(self) -> GpuIdentity:
        return GpuIdentity(
            index=self.index,
            name=self.name,
            compute_capability=self.capability,
            uuid=f"GPU-fake-{self.index}",
            pci_bus_id=f"00000000:{self.index + 0x18:02X}:00.0",
            sm_count=132,
            memory_bytes=85_520_809_984,
        )

    def _raise(self, what: str) -> None:
        self.calls.append(what)
        if what in self.errors:
            raise self.errors[what]

    def gemm(self, precision: str, n: int, warmup: int, repeats: int) -> list[float]:
        self._raise(f"gemm_{precision}")
        t = seconds_for_tflops(n, self.tflops[precision])
        # Spread evenly around t, so that the median is t and min and max differ from it.
        return [t * (1 + 0.001 * (i - (repeats - 1) / 2)) for i in range(repeats)]

    def matmul_reference(self, n: int, repeats: int) -> float:
        self._raise("reference")
        return seconds_for_tflops(n, self.reference_tflops or self.tflops["bf16"])

    def copy(self, kind: str, nbytes: int, warmup: int, repeats: int) -> list[float]:
        self._raise(kind)
        factor = 2 if kind == "device_copy" else 1
        return [factor * nbytes / (self.gbs[kind] * 1e9)] * repeats

    def sdc(self, precision: str, n: int) -> SdcSample:
        self._raise(f"sdc_{precision}")
        units = None if self.nonfinite else self.sdc_units.get(precision, 0.6)
        return SdcSample(units, self.nonfinite, self.digests.get(precision, f"digest-{precision}-{n}"))


@dataclass
class FakeNvml:
    """Reader-level fake: healthy H100 readings unless told otherwise, per GPU index."""

    inventory_changes: dict[int, dict] = field(default_factory=dict)
    sample_changes: dict[int, dict] = field(default_factory=dict)

    def driver(self) -> str:
        return "580.65.06"

    def version(self) -> str:
        return "12.580.65.06"

    def inventory(self, gpu: GpuIdentity) -> Inventory:
        base = dict(
            collected=True,
            name=gpu.name,
            uuid=gpu.uuid,
            serial=f"165432100{gpu.index}",
            pci_bus_id=gpu.pci_bus_id,
            vbios="96.00.99.00.01",
            memory_total_bytes=85_520_809_984,
            ecc_enabled=True,
            ecc_dbe_volatile=0,
            ecc_dbe_aggregate=0,
            ecc_sbe_volatile=0,
            remapped_rows_correctable=0,
            remapped_rows_uncorrectable=0,
            remap_pending=False,
            remap_failed=False,
            pcie_gen_max=5,
            pcie_width_max=16,
            power_limit_w=700.0,
            slowdown_temp_c=87.0,
        )
        return Inventory(**(base | self.inventory_changes.get(gpu.index, {})))

    def sample(self, gpu: GpuIdentity) -> NvmlSample:
        base = dict(temp_c=68.0, power_w=690.5, reasons=0x4, sm_clock_mhz=1755.0, pcie_gen=5, pcie_width=16)
        return NvmlSample(**(base | self.sample_changes.get(gpu.index, {})))


@dataclass
class FakeBackend:
    fake_gpus: list[FakeGpu]
    nvml: FakeNvml | None = field(default_factory=FakeNvml)
    nvml_note: str | None = None
    mismatches: dict[int, int] = field(default_factory=dict)
    load_digests: dict[int, str] = field(default_factory=dict)
    load_error: Exception | None = None
    closed: bool = False

    def gpus(self) -> list[FakeGpu]:
        return list(self.fake_gpus)

    def environment(self) -> dict[str, str | None]:
        return {"torch": "2.15.0+cu128", "cuda_runtime": "12.8", "cuda_driver": "13.0"}

    def load(self, gpus, *, n: int, seconds: float, sample: Callable[[], None]) -> dict:
        if self.load_error is not None:
            raise self.load_error
        for _ in range(4):
            sample()
        return {
            g.index: LoadOutcome(
                seconds, 1000, self.mismatches.get(g.index, 0), self.load_digests.get(g.index, "load-digest")
            )
            for g in gpus
        }

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def thresholds(catalog: Catalog) -> Thresholds:
    return load_thresholds(catalog)


@pytest.fixture
def node() -> Callable[..., FakeBackend]:
    """``node(count, **gpu_fields)``: a backend of ``count`` healthy fake H100s."""

    def make(count: int = 8, **fields) -> FakeBackend:
        return FakeBackend([FakeGpu(i, **fields) for i in range(count)])

    return make


@pytest.fixture
def fake_gpu() -> type[FakeGpu]:
    return FakeGpu


@pytest.fixture
def clock() -> Callable[[], datetime]:
    ticks = iter(datetime(2026, 11, 27, 8, 0, tzinfo=UTC) + timedelta(seconds=90 * i) for i in range(1000))
    return lambda: next(ticks)


@pytest.fixture
def probe_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable]:
    """Runs ``computelease probe ...`` in-process through computelease.cli.main.

    The probe joins the CLI once "probe" is in registry.DOMAINS; until then the fixture adds it for the
    test only, so the tests exercise the same dispatch either way."""
    from computelease import cli as root
    from computelease.probe import cli as probe

    if not any(group.name == "probe" for group in root.app.registered_groups):
        monkeypatch.setattr(root.app, "registered_groups", list(root.app.registered_groups))
        root.app.add_typer(probe.probe_app, name="probe")

    def run(*args: str, backend: FakeBackend | None = None) -> tuple[int, str, str]:
        if backend is not None:
            monkeypatch.setattr(probe, "open_backend", lambda: backend)
        code = root.main(["probe", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
