"""The acceptance report: what `computelease probe` prints with ``--json`` and POSTs to
``/api/v1/nodes/{node}/acceptance``, and what the server validates the body with.

Figures are JSON numbers (they are measurements, not money). Every check carries its verdict, the
threshold it was judged by (with the data file's justification) and a one-line reason, so a stored
report explains itself without the probe's code. The validator refuses a report whose verdicts do not
follow from its checks: a hand-edited "pass" over a failed check is a 422, not an accepted node.

For the SLA: ``GpuReport.sla_share`` is the GPU's measured bf16 TFLOPS over its calibrated rating (the
bf16 pass level of its SKU); ``min(1, sla_share)`` is the GPU's delivered share, and a share below the
contract's threshold is "degraded".
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
Mode = Literal["quick", "standard", "full"]
GemmPrecision = Literal["bf16", "fp16", "tf32", "fp8"]
BandwidthKind = Literal["device_copy", "host_to_device", "device_to_host"]


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"
    # Not applicable here (fp8 on a card without it, a cross-GPU comparison on a one-GPU node): it
    # neither passes nor lowers the overall verdict.
    SKIP = "skip"


_RANK = {Verdict.SKIP: 0, Verdict.PASS: 1, Verdict.WARN: 2, Verdict.FAIL: 3}
EXIT_CODES = {Verdict.PASS: 0, Verdict.WARN: 1, Verdict.FAIL: 2}
COULD_NOT_RUN = 3


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    """The most serious verdict; skipped checks count for nothing, and nothing judged is a pass."""
    judged = [v for v in verdicts if v is not Verdict.SKIP]
    return max(judged, key=_RANK.__getitem__, default=Verdict.PASS)


class _Model(BaseModel):
    # forbid: the probe and the server ship in one package; a field one side does not know is a version
    # mismatch that should be seen (as a 422 naming the field), not silently dropped.
    model_config = ConfigDict(extra="forbid")


Float = Annotated[float, Field(allow_inf_nan=False)]


class Threshold(_Model):
    """A threshold as used: the data file's entry plus the catalog figure it was applied to."""

    metric: str
    source: str = Field(description="accelerator id of the section it came from, or 'default'")
    basis: Literal["peak", "absolute"] = Field(
        description="peak: pass_at/warn_at are shares of `reference`; absolute: they are in `unit`"
    )
    better: Literal["higher", "lower"]
    pass_at: Float
    warn_at: Float
    reference: Float | None = Field(
        None, description="the catalog figure a peak-based threshold is a share of"
    )
    pass_value: Float | None = Field(
        None, description="pass level in `unit`; None when there is no reference"
    )
    warn_value: Float | None = None
    unit: str
    why: str = Field(min_length=1)


class Check(_Model):
    name: str
    verdict: Verdict
    value: Float | None = None
    unit: str = ""
    share: Float | None = Field(None, description="value over the catalog figure, where there is one")
    threshold: Threshold | None = None
    detail: str = Field(min_length=1, description="one line: why this verdict")
    why: str | None = Field(None, description="justification of the rule, for checks judged by a rule")


class Gemm(_Model):
    precision: GemmPrecision
    n: int = Field(gt=0, description="square GEMM size m = n = k")
    repeats: int = Field(gt=0)
    median_ms: Float
    min_ms: Float
    max_ms: Float
    tflops: Float = Field(description="2·n³ / median time")
    peak_tflops: Float | None = Field(None, description="the catalog's dense peak for the precision")
    share_of_peak: Float | None = None
    method: str


class MatmulReference(_Model):
    """A plain ``a @ b`` timed by the host clock around synchronisations, as a cross-check of the
    event-timed bf16 figure."""

    n: int = Field(gt=0)
    repeats: int = Field(gt=0, description="the mode's count; the device adds repeats to fill 1 s")
    mean_ms: Float
    tflops: Float
    method: str


class Bandwidth(_Model):
    kind: BandwidthKind
    bytes: int = Field(gt=0, description="bytes per copy")
    repeats: int = Field(gt=0)
    median_ms: Float
    gbs: Float = Field(description="GB/s (10⁹ bytes), counting what `counted` says")
    counted: Literal["read+write", "one way"]


class Sdc(_Model):
    """One silent-data-corruption sample: a matmul against a float64 reference computed on the host."""

    precision: GemmPrecision
    n: int = Field(gt=0)
    error_units: Float | None = Field(
        None,
        description="max |C − R| / (u_out·|R| + k·u_acc·(|A|·|B|)) over the elements; None if not finite",
    )
    nonfinite: int = Field(ge=0)
    digest: str = Field(description="sha256 of the result's bytes, compared across the node's GPUs")


class Load(_Model):
    """The sustained load (bf16 GEMMs on every GPU at once) and what NVML saw during it."""

    seconds: Float
    gemms: int = Field(ge=0)
    mismatches: int = Field(ge=0, description="repeats of the same GEMM whose result differed from the first")
    digest: str
    samples: int = Field(ge=0, description="NVML samples taken; 0 when NVML was not available")
    max_temp_c: Float | None = None
    slowdown_temp_c: Float | None = None
    max_power_w: Float | None = None
    mean_power_w: Float | None = None
    power_limit_w: Float | None = None
    min_sm_clock_mhz: Float | None = None
    max_sm_clock_mhz: Float | None = None
    throttle_reasons: list[str] = Field(default_factory=list, description="every reason seen in any sample")
    pcie_gen: int | None = None
    pcie_width: int | None = None


class Inventory(_Model):
    """What NVML reports about the card at rest. ``collected`` is False when NVML was not there."""

    collected: bool
    note: str | None = None
    name: str | None = None
    uuid: str | None = None
    serial: str | None = None
    pci_bus_id: str | None = None
    vbios: str | None = None
    memory_total_bytes: int | None = None
    ecc_enabled: bool | None = None
    ecc_dbe_volatile: int | None = None
    ecc_dbe_aggregate: int | None = None
    ecc_sbe_volatile: int | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failed: bool | None = None
    pcie_gen_max: int | None = None
    pcie_width_max: int | None = None
    power_limit_w: Float | None = None
    slowdown_temp_c: Float | None = None


class GpuReport(_Model):
    index: int = Field(ge=0, description="CUDA device index in the probe's process")
    name: str
    model: str | None = Field(None, description="catalog accelerator id; None when the card is not in it")
    compute_capability: str
    sm_count: int | None = None
    memory_bytes: int | None = None
    uuid: str | None = None
    inventory: Inventory
    load: Load | None = None
    gemm: list[Gemm] = Field(default_factory=list)
    matmul_reference: MatmulReference | None = None
    bandwidth: list[Bandwidth] = Field(default_factory=list)
    sdc: list[Sdc] = Field(default_factory=list)
    bf16_tflops: Float | None = None
    rating_tflops: Float | None = Field(None, description="calibrated bf16 rating: the SKU's bf16 pass level")
    sla_share: Float | None = Field(
        None,
        description="bf16_tflops / rating_tflops: the delivered share the SLA module uses for 'degraded'",
    )
    checks: list[Check]
    verdict: Verdict


class Environment(_Model):
    hostname: str
    platform: str
    python: str
    computelease: str
    torch: str | None = None
    cuda_runtime: str | None = Field(None, description="the CUDA version PyTorch was built with")
    cuda_driver: str | None = Field(None, description="the CUDA version the driver supports")
    driver: str | None = Field(None, description="NVIDIA driver version, from NVML")
    nvml: str | None = None
    gpu_count: int = Field(ge=0)


class Settings(_Model):
    gemm_n: int
    gemm_warmup: int
    gemm_repeats: int
    reference_repeats: int
    copy_bytes: int
    host_bytes: int
    copy_repeats: int
    sdc_n: int
    load_seconds: Float


class ProbeReport(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    mode: Mode
    node: str | None = Field(None, description="the node's serial, as given with --node")
    started_at: datetime
    finished_at: datetime
    environment: Environment
    settings: Settings
    gpus: list[GpuReport] = Field(min_length=1)
    checks: list[Check] = Field(default_factory=list, description="checks over the whole node")
    verdict: Verdict
    exit_code: int = Field(ge=0, le=2)
    summary: str

    @model_validator(mode="after")
    def _verdicts_follow_from_checks(self) -> ProbeReport:
        indices = [g.index for g in self.gpus]
        if len(set(indices)) != len(indices):
            raise ValueError("two GPUs share an index")
        for gpu in self.gpus:
            expected = worst([c.verdict for c in gpu.checks])
            if gpu.verdict is not expected:
                raise ValueError(f"GPU {gpu.index}: verdict {gpu.verdict} but its checks give {expected}")
        expected = worst([g.verdict for g in self.gpus] + [c.verdict for c in self.checks])
        if self.verdict is not expected or self.verdict is Verdict.SKIP:
            raise ValueError(f"verdict {self.verdict} but the GPUs and node checks give {expected}")
        if self.exit_code != EXIT_CODES[self.verdict]:
            raise ValueError(f"exit_code {self.exit_code} does not match verdict {self.verdict}")
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self
