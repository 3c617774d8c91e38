"""The acceptance probe's pure core: card names to catalog ids, thresholds, verdicts, the report.

No torch and no NVML here: the measurements arrive as plain numbers (seconds per repeat, NVML samples,
result digests) in :class:`GpuMeasurements`, and :func:`build_report` turns them into a
:class:`~computelease.probe.schemas.ProbeReport`. Tests feed it fake timings.

Figures::

    GEMM TFLOPS      = 2 · n³ / median seconds / 10¹²
    device copy GB/s = 2 · bytes / median seconds / 10⁹     (every byte is read once and written once)
    host copy GB/s   = bytes / median seconds / 10⁹          (one way)
    consistency      = |probe bf16 − plain matmul| / plain matmul
    SDC error units  = max over elements of |C − R| / (u_out · |R| + k · u_acc · (|A|·|B|))
    sla_share        = bf16 TFLOPS / rating,  rating = the SKU's bf16 pass level in TFLOPS

Each figure is rounded for the report first and judged as rounded, so anyone re-judging a stored
report from its numbers reaches the same verdict.
"""

from __future__ import annotations

import re
import statistics
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any, Literal

from computelease.catalog.core import Accelerator, Catalog, UnknownAccelerator
from computelease.probe.schemas import (
    EXIT_CODES,
    Bandwidth,
    Check,
    Environment,
    Gemm,
    GpuReport,
    Inventory,
    Load,
    MatmulReference,
    Mode,
    ProbeReport,
    Sdc,
    Settings,
    Threshold,
    Verdict,
    worst,
)

PRECISIONS = ("bf16", "fp16", "tf32", "fp8")
COPIES = ("device_copy", "host_to_device", "device_to_host")
# FP8 tensor cores arrived with Ada (8.9) and Hopper (9.0).
FP8_MIN_CAPABILITY = (8, 9)
# The SDC check's error bound per element: rounding the output (unit roundoff u_out of the output type)
# plus the worst case of k accumulations (u_acc each, on the sum of |products|: Higham's γ_k bound, which
# also holds for the truncating adders of tensor cores). fp32 accumulation for bf16, fp16 and TF32;
# Hopper's FP8 tensor cores keep about 14 bits while accumulating (DeepSeek-V3 report, measured on H800),
# so the fp8 check only catches gross corruption: the bitwise comparison across GPUs is the sharp one.
SDC_ROUNDOFF = {  # precision: (u_out, u_acc)
    "bf16": (2.0**-8, 2.0**-24),
    "fp16": (2.0**-11, 2.0**-24),
    "tf32": (2.0**-24, 2.0**-24),
    "fp8": (2.0**-8, 2.0**-14),
}

MIB = 1 << 20
GIB = 1 << 30

# n=8192 in every mode: the thresholds are calibrated at that size (the measured H100 figures are at
# n=8192), and smaller GEMMs do not saturate an H100. Modes differ in repeats, sizes of the other
# tests, and how long the card is held under load.
SETTINGS: dict[str, Settings] = {
    "quick": Settings(
        gemm_n=8192,
        gemm_warmup=3,
        gemm_repeats=10,
        reference_repeats=10,
        copy_bytes=1 * GIB,
        host_bytes=256 * MIB,
        copy_repeats=5,
        sdc_n=1024,
        load_seconds=10,
    ),
    "standard": Settings(
        gemm_n=8192,
        gemm_warmup=10,
        gemm_repeats=50,
        reference_repeats=30,
        copy_bytes=2 * GIB,
        host_bytes=1 * GIB,
        copy_repeats=20,
        sdc_n=2048,
        load_seconds=60,
    ),
    "full": Settings(
        gemm_n=8192,
        gemm_warmup=20,
        gemm_repeats=200,
        reference_repeats=100,
        copy_bytes=4 * GIB,
        host_bytes=2 * GIB,
        copy_repeats=50,
        sdc_n=4096,
        load_seconds=300,
    ),
}

# NVML clock-event ("throttle") reason bits, as nvml.h defines them.
THROTTLE_BITS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}

NVML_MISSING = "NVML not collected: nvidia-ml-py is not installed (pip install 'computelease[probe]')"


class ProbeUnavailable(Exception):
    """The probe cannot run on this machine; the message is the one sentence to show."""


class MeasurementUnsupported(Exception):
    """This software stack cannot make the measurement (not a fault of the card): the check warns."""


class ThresholdsInvalid(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("probe thresholds are invalid: " + "; ".join(self.problems))


# ------------------------------------------------------------------------------------ card names


# Most specific first. A variant that the catalog does not hold (H100 NVL, A100 40GB or PCIe, H20 with
# 141 GB, H200 NVL, L40 without the S) maps to None: judging it by a sibling's figures would be wrong.
_MODELS: tuple[tuple[re.Pattern[str], str | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), model)
    for pattern, model in (
        (r"\bH100\b.*\bNVL\b", None),
        (r"\bH100\b.*\bPCIe\b", "nvidia-h100-pcie"),
        (r"\bH100\b.*\b(SXM|HBM3)", "nvidia-h100-sxm"),
        (r"\bH800\b.*\bPCIe\b", None),
        (r"\bH800\b", "nvidia-h800-sxm"),
        (r"\bH200\b.*\bNVL\b", None),
        (r"\bH200\b", "nvidia-h200-sxm"),
        (r"\bH20\b(?![-\w])", "nvidia-h20"),
        (r"\bA100\b.*\bSXM\d?-80GB\b", "nvidia-a100-sxm"),
        (r"\bA800\b.*\bSXM\d?-80GB\b", "nvidia-a800-sxm"),
        (r"\bL40S\b", "nvidia-l40s"),
        (r"\bL20\b", "nvidia-l20"),
        (r"\bGB200\b", "nvidia-gb200"),
        (r"\bB200\b", "nvidia-b200"),
    )
)


def model_for(name: str) -> str | None:
    """The catalog accelerator id for a CUDA/NVML device name, or None for a card the catalog lacks.

    >>> model_for("NVIDIA H100 80GB HBM3"), model_for("NVIDIA H100 PCIe"), model_for("NVIDIA H100 NVL")
    ('nvidia-h100-sxm', 'nvidia-h100-pcie', None)
    """
    for pattern, model in _MODELS:
        if pattern.search(name):
            return model
    return None


# ------------------------------------------------------------------------------------- thresholds


@dataclass(frozen=True, slots=True)
class Metric:
    unit: str
    better: Literal["higher", "lower"]
    # What a "peak" basis is a share of: a dense precision, or an accelerator field. None: absolute only.
    catalog: str | None = None


METRICS: dict[str, Metric] = {
    "gemm_bf16": Metric("TFLOPS", "higher", "dense.bf16"),
    "gemm_fp16": Metric("TFLOPS", "higher", "dense.fp16"),
    "gemm_tf32": Metric("TFLOPS", "higher", "dense.tf32"),
    "gemm_fp8": Metric("TFLOPS", "higher", "dense.fp8"),
    "matmul_consistency": Metric("fraction", "lower"),
    "device_copy": Metric("GB/s", "higher", "memory_bandwidth_gbs"),
    "host_to_device": Metric("GB/s", "higher"),
    "device_to_host": Metric("GB/s", "higher"),
    "sdc_bf16": Metric("× bound", "lower"),
    "sdc_fp16": Metric("× bound", "lower"),
    "sdc_tf32": Metric("× bound", "lower"),
    "sdc_fp8": Metric("× bound", "lower"),
    "temperature_headroom": Metric("°C", "higher"),
    "power_limit": Metric("W", "higher", "tdp_w"),
}


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    metric: str
    source: str
    basis: Literal["peak", "absolute"]
    pass_at: float
    warn_at: float
    why: str


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    source: str
    fail: frozenset[str]
    warn: frozenset[str]
    why: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per-SKU thresholds over a default; :meth:`for_model` resolves one card's set."""

    default: Mapping[str, ThresholdSpec]
    models: Mapping[str, Mapping[str, ThresholdSpec]]
    default_throttle: ThrottleRule
    throttles: Mapping[str, ThrottleRule] = field(default_factory=dict)

    def spec(self, model: str | None, metric: str) -> ThresholdSpec:
        return self.models.get(model or "", {}).get(metric) or self.default[metric]

    def throttle(self, model: str | None) -> ThrottleRule:
        return self.throttles.get(model or "", self.default_throttle)

    def specs(self) -> Iterable[ThresholdSpec]:
        yield from self.default.values()
        for section in self.models.values():
            yield from section.values()


def _spec(source: str, metric: str, raw: Any, problems: list[str]) -> ThresholdSpec | None:
    where = f"[{source}.{metric}]"
    if metric not in METRICS:
        problems.append(f"{where}: unknown metric; known: {', '.join(METRICS)}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return None
    unknown = set(raw) - {"basis", "pass", "warn", "why"}
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    basis, why = raw.get("basis"), raw.get("why")
    pass_at, warn_at = raw.get("pass"), raw.get("warn")
    if basis not in ("peak", "absolute"):
        problems.append(f"{where}: basis must be 'peak' or 'absolute', got {basis!r}")
    elif basis == "peak" and METRICS[metric].catalog is None:
        problems.append(f"{where}: {metric} has no catalog figure; its basis must be 'absolute'")
    if not isinstance(why, str) or len(why.split()) < 5:
        problems.append(f"{where}: every threshold needs a justification in `why` (a sentence at least)")
    numbers = []
    for key, value in (("pass", pass_at), ("warn", warn_at)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: {key} must be a number, got {value!r}")
        else:
            numbers.append(float(value))
    if len(numbers) == 2:
        p, w = numbers
        if METRICS[metric].better == "higher" and w > p:
            problems.append(f"{where}: warn {w} is above pass {p}, but higher is better for {metric}")
        if METRICS[metric].better == "lower" and w < p:
            problems.append(f"{where}: warn {w} is below pass {p}, but lower is better for {metric}")
        if basis == "peak" and not (0 <= w <= p <= 2):
            problems.append(f"{where}: a peak share must lie between 0 and 2")
    if problems and any(p.startswith(where) for p in problems):
        return None
    return ThresholdSpec(metric, source, basis, numbers[0], numbers[1], " ".join(why.split()))


def _throttle(source: str, raw: Any, problems: list[str]) -> ThrottleRule | None:
    where = f"[{source}.throttle]"
    known = set(THROTTLE_BITS.values())
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return None
    lists = {}
    for key in ("fail", "warn"):
        names = raw.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"{where}: {key} must be a list of reason names")
            names = []
        if bad := sorted(set(names) - known):
            problems.append(f"{where}: unknown reasons {', '.join(bad)}; known: {', '.join(sorted(known))}")
        lists[key] = frozenset(names)
    why = raw.get("why")
    if not isinstance(why, str) or len(why.split()) < 5:
        problems.append(f"{where}: the rule needs a justification in `why`")
        return None
    return ThrottleRule(source, lists["fail"], lists["warn"], " ".join(why.split()))


def parse_thresholds(data: Mapping[str, Any], known_models: Iterable[str] | None = None) -> Thresholds:
    """Thresholds from the parsed TOML; every broken rule is reported at once."""
    problems: list[str] = []
    known = set(known_models) if known_models is not None else None
    default_raw = data.get("default")
    if not isinstance(default_raw, dict):
        raise ThresholdsInvalid(["a [default] section is required"])
    sections: dict[str, dict[str, ThresholdSpec]] = {}
    throttles: dict[str, ThrottleRule] = {}
    for source, raw in data.items():
        if not isinstance(raw, dict):
            problems.append(f"[{source}]: must be a table")
            continue
        if source != "default" and known is not None and source not in known:
            problems.append(f"[{source}]: not an accelerator id in the catalog")
        specs: dict[str, ThresholdSpec] = {}
        for metric, entry in raw.items():
            if metric == "throttle":
                if (rule := _throttle(source, entry, problems)) is not None:
                    throttles[source] = rule
            elif (spec := _spec(source, metric, entry, problems)) is not None:
                specs[metric] = spec
        sections[source] = specs
    missing = sorted(set(METRICS) - set(sections.get("default", {})))
    if missing and not any(p.startswith("[default.") for p in problems):
        problems.append(f"[default]: missing thresholds for {', '.join(missing)}")
    if "default" not in throttles and not any(p.startswith("[default.throttle]") for p in problems):
        problems.append("[default.throttle]: missing")
    if problems:
        raise ThresholdsInvalid(problems)
    default = sections.pop("default")
    default_throttle = throttles.pop("default")
    return Thresholds(default, sections, default_throttle, throttles)


def load_thresholds(catalog: Catalog | None = None) -> Thresholds:
    """The shipped thresholds; with a catalog, every section must name one of its accelerators."""
    text = (resources.files("computelease.probe") / "data" / "thresholds.toml").read_text(encoding="utf-8")
    known = [a.id for a in catalog.accelerators] if catalog is not None else None
    return parse_thresholds(tomllib.loads(text), known)


# ------------------------------------------------------------------------------ raw measurements


@dataclass(frozen=True, slots=True)
class GpuIdentity:
    index: int
    name: str
    compute_capability: tuple[int, int]
    uuid: str | None = None
    pci_bus_id: str | None = None
    sm_count: int | None = None
    memory_bytes: int | None = None

    @property
    def fp8(self) -> bool:
        return self.compute_capability >= FP8_MIN_CAPABILITY


@dataclass(frozen=True, slots=True)
class Failed:
    """A measurement that did not produce a figure, and the verdict its check takes: fail for an error
    on the card, warn for a software stack that cannot measure, skip for a card without the feature."""

    reason: str
    verdict: Verdict = Verdict.FAIL


@dataclass(frozen=True, slots=True)
class NvmlSample:
    temp_c: float | None = None
    power_w: float | None = None
    reasons: int | None = None
    sm_clock_mhz: float | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    seconds: float
    gemms: int
    mismatches: int
    digest: str


@dataclass(frozen=True, slots=True)
class SdcSample:
    error_units: float | None
    nonfinite: int
    digest: str


@dataclass(slots=True)
class GpuMeasurements:
    """Everything measured on one GPU. Times are seconds per repeat."""

    identity: GpuIdentity
    inventory: Inventory
    load: LoadOutcome | Failed | None = None
    samples: list[NvmlSample] = field(default_factory=list)
    gemm: dict[str, list[float] | Failed] = field(default_factory=dict)
    reference: float | Failed | None = None
    copies: dict[str, list[float] | Failed] = field(default_factory=dict)
    sdc: dict[str, SdcSample | Failed] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ arithmetic


def gemm_tflops(n: int, seconds: float) -> float:
    return 2 * n**3 / seconds / 1e12


def copy_gbs(kind: str, nbytes: int, seconds: float) -> float:
    return (2 if kind == "device_copy" else 1) * nbytes / seconds / 1e9


def consistency(probe_tflops: float, reference_tflops: float) -> float:
    """How far the probe's bf16 figure lies from a plain matmul's, as a fraction of the latter."""
    if reference_tflops <= 0:
        raise ValueError("the reference figure must be positive")
    return abs(probe_tflops - reference_tflops) / reference_tflops


def throttle_names(bits: int) -> list[str]:
    names = [name for bit, name in THROTTLE_BITS.items() if bits & bit]
    unknown = bits & ~sum(THROTTLE_BITS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


def _median_ms(times: Sequence[float]) -> tuple[float, float, float]:
    if not times or any(t <= 0 for t in times):
        raise ValueError("timings must be positive and at least one")
    return statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def summarize_load(outcome: LoadOutcome, samples: Sequence[NvmlSample], inventory: Inventory) -> Load:
    def values(name: str) -> list[float]:
        return [v for s in samples if (v := getattr(s, name)) is not None]

    temps, powers, clocks = values("temp_c"), values("power_w"), values("sm_clock_mhz")
    bits = 0
    for s in samples:
        bits |= s.reasons or 0
    gens, widths = values("pcie_gen"), values("pcie_width")
    return Load(
        seconds=round(outcome.seconds, 2),
        gemms=outcome.gemms,
        mismatches=outcome.mismatches,
        digest=outcome.digest,
        samples=len(samples),
        max_temp_c=max(temps, default=None),
        slowdown_temp_c=inventory.slowdown_temp_c,
        max_power_w=_r(max(powers, default=None), 1),
        mean_power_w=_r(statistics.fmean(powers) if powers else None, 1),
        power_limit_w=inventory.power_limit_w,
        min_sm_clock_mhz=min(clocks, default=None),
        max_sm_clock_mhz=max(clocks, default=None),
        throttle_reasons=throttle_names(bits),
        # The highest link state seen under load: links drop to low speeds when idle to save power.
        pcie_gen=int(max(gens)) if gens else None,
        pcie_width=int(max(widths)) if widths else None,
    )


# -------------------------------------------------------------------------------------- verdicts


def _catalog_figure(accelerator: Accelerator | None, path: str | None) -> float | None:
    if accelerator is None or path is None:
        return None
    if path.startswith("dense."):
        figure = accelerator.tflops(path.removeprefix("dense."))
    else:
        figure = getattr(accelerator, path)
    return float(figure.value) if figure is not None and figure.value is not None else None


def _num(value: float, digits: int = 2) -> str:
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt(value: float, unit: str) -> str:
    if unit == "fraction":
        return f"{_num(value * 100)}%"
    if unit == "GB/s" and value >= 1000:
        return f"{_num(value / 1000, 3)} TB/s"
    if unit == "× bound":
        return f"{_num(value, 3)} × the rounding bound"
    return f"{_num(value)} {unit}"


def judge(
    metric: str, value: float, spec: ThresholdSpec, accelerator: Accelerator | None, *, label: str
) -> Check:
    """One figure against one threshold."""
    m = METRICS[metric]
    reference = _catalog_figure(accelerator, m.catalog)
    share = round(value / reference, 4) if reference else None
    # Levels are rounded as the report shows them and compared as rounded (see the module docstring).
    if spec.basis == "peak":
        pass_value = _r(spec.pass_at * reference, 4) if reference else None
        warn_value = _r(spec.warn_at * reference, 4) if reference else None
    else:
        pass_value, warn_value = spec.pass_at, spec.warn_at
    threshold = Threshold(
        metric=metric,
        source=spec.source,
        basis=spec.basis,
        better=m.better,
        pass_at=spec.pass_at,
        warn_at=spec.warn_at,
        reference=reference,
        pass_value=pass_value,
        warn_value=warn_value,
        unit=m.unit,
        why=spec.why,
    )
    shown = f"{label} {_fmt(value, m.unit)}"
    if share is not None:
        shown += f" = {share:.1%} of {_fmt(reference, m.unit)}"  # type: ignore[arg-type]
    if pass_value is None or warn_value is None:
        card = "the card is not in the catalog" if accelerator is None else "the catalog has no figure"
        return Check(
            name=metric,
            verdict=Verdict.WARN,
            value=value,
            unit=m.unit,
            share=share,
            threshold=threshold,
            detail=f"{shown}; not judged: {card} to compare with",
        )
    higher = m.better == "higher"
    if (value >= pass_value) if higher else (value <= pass_value):
        verdict, relation = Verdict.PASS, ("≥" if higher else "≤")
        level = pass_value
    elif (value >= warn_value) if higher else (value <= warn_value):
        verdict, relation, level = Verdict.WARN, ("<" if higher else ">"), pass_value
    else:
        verdict, relation, level = Verdict.FAIL, ("<" if higher else ">"), warn_value
    word = "pass" if verdict is Verdict.PASS else ("pass level" if verdict is Verdict.WARN else "warn level")
    return Check(
        name=metric,
        verdict=verdict,
        value=value,
        unit=m.unit,
        share=share,
        threshold=threshold,
        detail=f"{shown}; {relation} {word} {_fmt(level, m.unit)} ({spec.source})",
    )


def _failed(name: str, failed: Failed, unit: str = "") -> Check:
    prefix = {Verdict.SKIP: "not applicable", Verdict.WARN: "not measured", Verdict.FAIL: "failed"}
    return Check(
        name=name,
        verdict=failed.verdict,
        unit=unit,
        detail=f"{prefix.get(failed.verdict, '')}: {failed.reason}",
    )


def _throttle_check(load: Load, rule: ThrottleRule) -> Check:
    seen = set(load.throttle_reasons)
    failing, warning = sorted(seen & rule.fail), sorted(seen & rule.warn)
    if failing:
        verdict, detail = Verdict.FAIL, f"under load: {', '.join(failing + warning)}"
    elif warning:
        verdict, detail = Verdict.WARN, f"under load: {', '.join(warning)}"
    else:
        verdict = Verdict.PASS
        detail = "no protective slowdown under load" + (f" (seen: {', '.join(sorted(seen))})" if seen else "")
    return Check(name="throttle", verdict=verdict, detail=f"{detail} (rule: {rule.source})", why=rule.why)


def _health_check(inv: Inventory, load: Load | None) -> Check:
    if not inv.collected:
        return Check(name="nvml_health", verdict=Verdict.WARN, detail=inv.note or "NVML not collected")
    fails, warns = [], []
    if inv.ecc_dbe_volatile:
        fails.append(f"{inv.ecc_dbe_volatile} uncorrected ECC error(s) since the last driver load")
    if inv.remap_failed:
        fails.append("a row remap failed")
    if inv.remap_pending:
        fails.append("a row remap is pending: reset the GPU and probe again")
    if inv.ecc_enabled is False:
        warns.append("ECC is off")
    if inv.ecc_dbe_aggregate:
        warns.append(f"{inv.ecc_dbe_aggregate} uncorrected ECC error(s) over the card's life")
    if inv.remapped_rows_uncorrectable:
        warns.append(f"{inv.remapped_rows_uncorrectable} row(s) remapped after uncorrectable errors")
    if load is not None and load.pcie_gen and inv.pcie_gen_max and load.pcie_gen < inv.pcie_gen_max:
        warns.append(f"PCIe link at Gen{load.pcie_gen} under load, Gen{inv.pcie_gen_max} possible")
    if load is not None and load.pcie_width and inv.pcie_width_max and load.pcie_width < inv.pcie_width_max:
        warns.append(f"PCIe link at x{load.pcie_width} under load, x{inv.pcie_width_max} possible")
    if fails:
        return Check(name="nvml_health", verdict=Verdict.FAIL, detail="; ".join(fails + warns))
    if warns:
        return Check(name="nvml_health", verdict=Verdict.WARN, detail="; ".join(warns))
    unknown = [
        name
        for name, value in (("ECC", inv.ecc_dbe_volatile), ("row remapping", inv.remap_pending))
        if value is None
    ]
    detail = "no uncorrected ECC errors, no pending or failed row remaps"
    if unknown:
        detail += f" ({' and '.join(unknown)} not reported by this card)"
    return Check(name="nvml_health", verdict=Verdict.PASS, detail=detail)


@dataclass(slots=True)
class _Assessed:
    report: dict[str, Any]
    checks: list[Check]


def assess_gpu(
    m: GpuMeasurements,
    settings: Settings,
    catalog: Catalog,
    thresholds: Thresholds,
) -> _Assessed:
    """Figures and checks of one GPU, without the cross-GPU comparison (see :func:`build_report`)."""
    ident = m.identity
    model = model_for(ident.name)
    try:
        accelerator = catalog.accelerator(model) if model else None
    except UnknownAccelerator:
        accelerator, model = None, None
    checks: list[Check] = []
    gemms: list[Gemm] = []
    figures: dict[str, float] = {}

    for p in PRECISIONS:
        metric = f"gemm_{p}"
        outcome = m.gemm.get(p) or Failed("not measured")
        if isinstance(outcome, Failed):
            checks.append(_failed(metric, outcome, "TFLOPS"))
            continue
        median, low, high = _median_ms(outcome)
        tflops = round(gemm_tflops(settings.gemm_n, median / 1e3), 2)
        figures[p] = tflops
        check = judge(metric, tflops, thresholds.spec(model, metric), accelerator, label=p)
        checks.append(check)
        method = (
            "torch._scaled_mm e4m3 × e4m3 → bf16, unit scales, use_fast_accum=False, CUDA events"
            if p == "fp8"
            else f"torch.mm {'fp32 with TF32 allowed' if p == 'tf32' else p}, out= preallocated, CUDA events"
        )
        gemms.append(
            Gemm(
                precision=p,  # type: ignore[arg-type]
                n=settings.gemm_n,
                repeats=len(outcome),
                median_ms=round(median, 4),
                min_ms=round(low, 4),
                max_ms=round(high, 4),
                tflops=tflops,
                peak_tflops=check.threshold.reference if check.threshold else None,
                share_of_peak=check.share,
                method=method,
            )
        )

    reference: MatmulReference | None = None
    if isinstance(m.reference, Failed):
        checks.append(_failed("matmul_consistency", m.reference, "fraction"))
    elif m.reference is None:
        checks.append(_failed("matmul_consistency", Failed("plain matmul not timed", Verdict.WARN)))
    else:
        ref_tflops = round(gemm_tflops(settings.gemm_n, m.reference), 2)
        reference = MatmulReference(
            n=settings.gemm_n,
            repeats=settings.reference_repeats,
            mean_ms=round(m.reference * 1e3, 4),
            tflops=ref_tflops,
            method="torch.matmul(a, b) bf16 back to back for at least 1 s, "
            "host clock around torch.cuda.synchronize, mean",
        )
        if "bf16" in figures:
            gap = round(consistency(figures["bf16"], ref_tflops), 4)
            check = judge(
                "matmul_consistency",
                gap,
                thresholds.spec(model, "matmul_consistency"),
                accelerator,
                label=f"bf16 {figures['bf16']:,.1f} vs plain matmul {ref_tflops:,.1f} TFLOPS: apart by",
            )
            checks.append(check)
        else:
            checks.append(_failed("matmul_consistency", Failed("no bf16 figure to compare", Verdict.SKIP)))

    bandwidth: list[Bandwidth] = []
    for kind in COPIES:
        outcome = m.copies.get(kind) or Failed("not measured")
        if isinstance(outcome, Failed):
            checks.append(_failed(kind, outcome, "GB/s"))
            continue
        nbytes = settings.copy_bytes if kind == "device_copy" else settings.host_bytes
        median, _, _ = _median_ms(outcome)
        gbs = round(copy_gbs(kind, nbytes, median / 1e3), 1)
        bandwidth.append(
            Bandwidth(
                kind=kind,  # type: ignore[arg-type]
                bytes=nbytes,
                repeats=len(outcome),
                median_ms=round(median, 4),
                gbs=gbs,
                counted="read+write" if kind == "device_copy" else "one way",
            )
        )
        label = {
            "device_copy": "device copy",
            "host_to_device": "host→device",
            "device_to_host": "device→host",
        }
        checks.append(judge(kind, gbs, thresholds.spec(model, kind), accelerator, label=label[kind]))

    sdc: list[Sdc] = []
    for p in PRECISIONS:
        metric = f"sdc_{p}"
        outcome = m.sdc.get(p) or Failed("not measured")
        if isinstance(outcome, Failed):
            checks.append(_failed(metric, outcome, "× bound"))
            continue
        units = _r(outcome.error_units, 3)
        sdc.append(
            Sdc(
                precision=p,  # type: ignore[arg-type]
                n=settings.sdc_n,
                error_units=units,
                nonfinite=outcome.nonfinite,
                digest=outcome.digest,
            )
        )
        if outcome.nonfinite or units is None:
            checks.append(
                Check(
                    name=metric,
                    verdict=Verdict.FAIL,
                    unit="× bound",
                    detail=f"{p}: {outcome.nonfinite} non-finite value(s) in a GEMM of finite inputs",
                )
            )
        else:
            checks.append(
                judge(metric, units, thresholds.spec(model, metric), accelerator, label=f"{p} error")
            )

    load: Load | None = None
    if isinstance(m.load, LoadOutcome):
        load = summarize_load(m.load, m.samples, m.inventory)
        if load.mismatches:
            checks.append(
                Check(
                    name="load_stability",
                    verdict=Verdict.FAIL,
                    detail=f"the same bf16 GEMM gave a different result {load.mismatches} time(s) "
                    f"under {load.seconds:g} s of load",
                )
            )
        else:
            checks.append(
                Check(
                    name="load_stability",
                    verdict=Verdict.PASS,
                    detail=f"{load.gemms} bf16 GEMMs in {load.seconds:g} s, results identical in every batch",
                )
            )
    else:
        checks.append(_failed("load_stability", m.load or Failed("load not run")))

    checks += _nvml_checks(m.inventory, load, model, accelerator, thresholds)

    rating = rating_tflops(thresholds.spec(model, "gemm_bf16"), accelerator)
    bf16 = figures.get("bf16")
    if bf16 is not None and rating:
        sla_share: float | None = round(bf16 / rating, 4)
    elif isinstance(m.gemm.get("bf16"), Failed) and m.gemm["bf16"].verdict is Verdict.FAIL:  # type: ignore[union-attr]
        # A GPU that errors under a GEMM delivers nothing; None would read as "not measured, full share".
        sla_share = 0.0
    else:
        sla_share = None
    report = {
        "index": ident.index,
        "name": ident.name,
        "model": model,
        "compute_capability": f"{ident.compute_capability[0]}.{ident.compute_capability[1]}",
        "sm_count": ident.sm_count,
        "memory_bytes": ident.memory_bytes,
        "uuid": ident.uuid,
        "inventory": m.inventory,
        "load": load,
        "gemm": gemms,
        "matmul_reference": reference,
        "bandwidth": bandwidth,
        "sdc": sdc,
        "bf16_tflops": bf16,
        "rating_tflops": _r(rating, 2),
        "sla_share": sla_share,
    }
    return _Assessed(report, checks)


def rating_tflops(spec: ThresholdSpec, accelerator: Accelerator | None) -> float | None:
    """The calibrated bf16 rating of a GPU: its SKU's bf16 pass level in TFLOPS (None if unknown)."""
    if spec.basis == "absolute":
        return spec.pass_at
    peak = _catalog_figure(accelerator, METRICS[spec.metric].catalog)
    return spec.pass_at * peak if peak else None


def _nvml_checks(
    inv: Inventory,
    load: Load | None,
    model: str | None,
    accelerator: Accelerator | None,
    thresholds: Thresholds,
) -> list[Check]:
    checks = [_health_check(inv, load)]
    if not inv.collected:
        # One warning (nvml_health) says NVML is missing; the checks that need it are not applicable.
        reason = Failed(inv.note or "NVML not collected", Verdict.SKIP)
        return checks + [
            _failed(name, reason) for name in ("temperature_headroom", "throttle", "power_limit")
        ]
    if load is None or not load.samples:
        checks.append(_failed("temperature_headroom", Failed("no NVML samples under load", Verdict.WARN)))
        checks.append(_failed("throttle", Failed("no NVML samples under load", Verdict.WARN)))
    else:
        if load.max_temp_c is None or load.slowdown_temp_c is None:
            missing = "temperature" if load.max_temp_c is None else "slowdown temperature"
            checks.append(
                _failed("temperature_headroom", Failed(f"NVML reported no {missing}", Verdict.WARN))
            )
        else:
            headroom = round(load.slowdown_temp_c - load.max_temp_c, 1)
            checks.append(
                judge(
                    "temperature_headroom",
                    headroom,
                    thresholds.spec(model, "temperature_headroom"),
                    accelerator,
                    label=f"max {load.max_temp_c:g} °C, slowdown {load.slowdown_temp_c:g} °C: headroom",
                )
            )
        checks.append(_throttle_check(load, thresholds.throttle(model)))
    if inv.power_limit_w is None:
        checks.append(_failed("power_limit", Failed("NVML reported no power limit", Verdict.WARN)))
    else:
        checks.append(
            judge(
                "power_limit",
                inv.power_limit_w,
                thresholds.spec(model, "power_limit"),
                accelerator,
                label="enforced power limit",
            )
        )
    return checks


def _group_key(report: Mapping[str, Any]) -> tuple[Any, ...]:
    return (report["name"], report["compute_capability"], report["sm_count"])


def bitwise_checks(reports: Sequence[Mapping[str, Any]]) -> tuple[dict[int, Check], Check]:
    """Identical work must give identical bits on identical GPUs (cuBLAS is deterministic for one
    architecture and SM count). Per GPU: pass, or fail naming what differed; and one node-level check.

    The odd one out is the GPU whose digest differs from the majority's; where there is no majority
    (two GPUs that disagree) every GPU of the group fails, since neither can be trusted."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in reports:
        groups.setdefault(_group_key(r), []).append(r)
    per_gpu: dict[int, Check] = {}
    odd_total: list[str] = []
    compared = 0
    for members in groups.values():
        if len(members) < 2:
            for r in members:
                per_gpu[r["index"]] = Check(
                    name="bitwise_agreement",
                    verdict=Verdict.SKIP,
                    detail="no other GPU of this model on the node to compare with",
                )
            continue
        compared += len(members)
        samples: dict[str, dict[int, str]] = {}
        for r in members:
            for s in r["sdc"]:
                samples.setdefault(f"sdc {s.precision}", {})[r["index"]] = s.digest
            if r["load"] is not None:
                samples.setdefault("load bf16", {})[r["index"]] = r["load"].digest
        differs: dict[int, list[str]] = {r["index"]: [] for r in members}
        for what, digests in samples.items():
            counts = Counter(digests.values())
            if len(counts) < 2:
                continue
            (top, top_n), *rest = counts.most_common()
            majority = top if top_n > rest[0][1] else None
            for index, digest in digests.items():
                if digest != majority:
                    differs[index].append(what)
        for r in members:
            index, what = r["index"], differs[r["index"]]
            if what:
                odd_total.append(f"GPU {index} ({', '.join(what)})")
                per_gpu[index] = Check(
                    name="bitwise_agreement",
                    verdict=Verdict.FAIL,
                    detail=f"differs from the other {r['name']} GPUs on identical work: {', '.join(what)}",
                )
            else:
                peers = len(members) - 1
                per_gpu[index] = Check(
                    name="bitwise_agreement",
                    verdict=Verdict.PASS,
                    detail=f"bit-identical to {peers} other GPU(s) of this model on every compared result",
                )
    if odd_total:
        node = Check(
            name="cross_gpu_bitwise",
            verdict=Verdict.FAIL,
            detail="identical work gave different bits: " + "; ".join(odd_total),
        )
    elif compared:
        node = Check(
            name="cross_gpu_bitwise",
            verdict=Verdict.PASS,
            detail=f"{compared} GPUs compared: identical work gave identical bits",
        )
    else:
        node = Check(
            name="cross_gpu_bitwise", verdict=Verdict.SKIP, detail="one GPU per model: nothing to compare"
        )
    return per_gpu, node


def _summary(gpus: Sequence[GpuReport], verdict: Verdict) -> str:
    models = Counter(g.model or f"{g.name} (not in catalog)" for g in gpus)
    cards = ", ".join(f"{n} × {m}" for m, n in models.items())
    bf16 = [g.bf16_tflops for g in gpus if g.bf16_tflops is not None]
    parts = [f"{verdict.value}: {cards}"]
    if bf16:
        parts.append(f"bf16 {min(bf16):,.1f}–{max(bf16):,.1f} TFLOPS")
    bad = [
        f"GPU {g.index} {c.name} {c.verdict.value}"
        for g in gpus
        for c in g.checks
        if c.verdict in (Verdict.WARN, Verdict.FAIL)
    ]
    if bad:
        shown = bad[:6] + ([f"{len(bad) - 6} more"] if len(bad) > 6 else [])
        parts.append("; ".join(shown))
    return "; ".join(parts)


def build_report(
    measurements: Sequence[GpuMeasurements],
    *,
    mode: Mode,
    settings: Settings,
    environment: Environment,
    catalog: Catalog,
    thresholds: Thresholds,
    started_at: datetime,
    finished_at: datetime,
    node: str | None = None,
) -> ProbeReport:
    """The whole report: each GPU's checks, the cross-GPU comparison, the verdicts and exit code."""
    assessed = [assess_gpu(m, settings, catalog, thresholds) for m in measurements]
    per_gpu, node_check = bitwise_checks([a.report for a in assessed])
    gpus = []
    for a in assessed:
        checks = [*a.checks, per_gpu[a.report["index"]]]
        gpus.append(GpuReport(**a.report, checks=checks, verdict=worst([c.verdict for c in checks])))
    verdict = worst([g.verdict for g in gpus] + [node_check.verdict])
    return ProbeReport(
        mode=mode,
        node=node,
        started_at=started_at,
        finished_at=finished_at,
        environment=environment,
        settings=settings,
        gpus=gpus,
        checks=[node_check],
        verdict=verdict,
        exit_code=EXIT_CODES[verdict],
        summary=_summary(gpus, verdict),
    )
