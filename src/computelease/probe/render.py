"""The human summary of a probe report: one Rich table row per GPU, then every check that did not pass.

Needs only rich, so that benchmarks/probe_device_check.py can print it on a GPU machine without the rest
of computelease's dependencies.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from computelease.probe.schemas import Check, GpuReport, ProbeReport, Verdict

_STYLE = {Verdict.PASS: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red", Verdict.SKIP: "dim"}


def _check(gpu: GpuReport, name: str) -> Check | None:
    return next((c for c in gpu.checks if c.name == name), None)


def _cell(check: Check | None, text: str) -> Text:
    if check is None:
        return Text(text)
    if check.value is None and check.verdict is not Verdict.PASS:
        return Text(check.verdict.value, style=_STYLE[check.verdict])
    return Text(text, style=_STYLE[check.verdict])


def _gemm_cell(gpu: GpuReport, precision: str) -> Text:
    figure = next((g for g in gpu.gemm if g.precision == precision), None)
    check = _check(gpu, f"gemm_{precision}")
    if figure is None:
        return _cell(check, "")
    share = f" ({figure.share_of_peak:.0%})" if figure.share_of_peak is not None else ""
    return _cell(check, f"{figure.tflops:,.0f}{share}")


def _bandwidth_cell(gpu: GpuReport, kind: str) -> Text:
    figure = next((b for b in gpu.bandwidth if b.kind == kind), None)
    check = _check(gpu, kind)
    if figure is None:
        return _cell(check, "")
    text = f"{figure.gbs / 1000:.2f} TB/s" if figure.gbs >= 1000 else f"{figure.gbs:.1f}"
    return _cell(check, text)


def _sdc_cell(gpu: GpuReport) -> Text:
    checks = [c for c in gpu.checks if c.name.startswith("sdc_") or c.name == "bitwise_agreement"]
    judged = [c for c in checks if c.verdict is not Verdict.SKIP]
    if not judged:
        return Text("")
    worst = max(judged, key=lambda c: [Verdict.PASS, Verdict.WARN, Verdict.FAIL].index(c.verdict))
    return Text("ok" if worst.verdict is Verdict.PASS else worst.verdict.value, style=_STYLE[worst.verdict])


def _thermal_cell(gpu: GpuReport) -> Text:
    load = gpu.load
    if load is None or not load.samples:
        return Text("n/a", style="dim")
    temp = f"{load.max_temp_c:.0f}" if load.max_temp_c is not None else "?"
    power = f"{load.max_power_w:.0f}" if load.max_power_w is not None else "?"
    checks = [c for c in (_check(gpu, "temperature_headroom"), _check(gpu, "throttle")) if c is not None]
    verdict = max(
        (c.verdict for c in checks), key=[Verdict.SKIP, Verdict.PASS, Verdict.WARN, Verdict.FAIL].index
    )
    return Text(f"{temp} / {power}", style=_STYLE[verdict])


def render(report: ProbeReport, console: Console) -> None:
    env = report.environment
    console.print(
        f"node {report.node or '(not given)'} · {report.mode} · driver {env.driver or '?'} · "
        f"CUDA {env.cuda_driver or '?'} (torch {env.torch or '?'}, CUDA {env.cuda_runtime or '?'} build) · "
        f"{env.hostname}",
        markup=False,
        highlight=False,
    )
    table = Table(title="GPU acceptance (TFLOPS dense, share of catalog peak)")
    for column in ("GPU", "card", "bf16", "fp16", "tf32", "fp8", "HBM copy", "H→D GB/s", "D→H GB/s"):
        table.add_column(
            column, justify="left" if column in ("GPU", "card") else "right", no_wrap=column == "card"
        )
    table.add_column("SDC")
    table.add_column("°C / W", justify="right")
    table.add_column("SLA share", justify="right")
    table.add_column("verdict")
    for gpu in report.gpus:
        table.add_row(
            str(gpu.index),
            Text(gpu.model or f"{gpu.name} (not in catalog)"),
            *(_gemm_cell(gpu, p) for p in ("bf16", "fp16", "tf32", "fp8")),
            _bandwidth_cell(gpu, "device_copy"),
            _bandwidth_cell(gpu, "host_to_device"),
            _bandwidth_cell(gpu, "device_to_host"),
            _sdc_cell(gpu),
            _thermal_cell(gpu),
            f"{gpu.sla_share:.3f}" if gpu.sla_share is not None else "",
            Text(gpu.verdict.value, style=_STYLE[gpu.verdict]),
        )
    console.print(table)
    problems = [
        (str(gpu.index), check)
        for gpu in report.gpus
        for check in gpu.checks
        if check.verdict in (Verdict.WARN, Verdict.FAIL)
    ] + [("node", check) for check in report.checks if check.verdict in (Verdict.WARN, Verdict.FAIL)]
    if problems:
        detail = Table(title="checks that did not pass")
        for column in ("GPU", "check", "verdict", "why"):
            detail.add_column(column)
        for where, check in problems:
            detail.add_row(
                where, check.name, Text(check.verdict.value, style=_STYLE[check.verdict]), Text(check.detail)
            )
        console.print(detail)
    line = Text(f"{report.verdict.value.upper()} (exit {report.exit_code}) ", style=_STYLE[report.verdict])
    line.append(report.summary.split(": ", 1)[-1], style="")
    console.print(line)
