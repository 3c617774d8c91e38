"""On a real GPU: the probe's own figures against a plain torch.matmul timed here, and issue 8's H100 SXM
floors. Marked ``gpu``; skipped, with the reason, where torch or a CUDA GPU is missing.

Run on a GPU machine with ``pytest -m gpu tests/probe -s`` (``-s`` shows the figures), or run
benchmarks/probe_device_check.py, which also prints nvidia-smi and the whole probe report.
"""

from __future__ import annotations

import time

import pytest

from computelease.probe.core import consistency, copy_gbs, gemm_tflops, model_for

pytestmark = pytest.mark.gpu


def _cuda() -> tuple[object | None, str]:
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed (pip install 'computelease[probe]')"
    if not torch.cuda.is_available():
        return None, "no CUDA GPU visible to PyTorch"
    return torch, ""


torch, WHY = _cuda()
needs_gpu = pytest.mark.skipif(torch is None, reason=WHY)
MODEL = model_for(torch.cuda.get_device_name(0)) if torch is not None else None
needs_h100 = pytest.mark.skipif(
    MODEL != "nvidia-h100-sxm", reason=WHY or f"needs an H100 SXM; GPU 0 is {torch.cuda.get_device_name(0)}"
)
N = 8192


@pytest.fixture(scope="module")
def backend():
    from computelease.probe.device import open_backend

    found = open_backend()
    yield found
    found.close()


def plain_matmul_tflops(n: int = N, repeats: int = 700) -> float:
    """The yardstick of issue 8, written out here and not taken from the probe: a plain large
    torch.matmul, timed around synchronisations."""
    a = torch.randn(n, n, device="cuda:0", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda:0", dtype=torch.bfloat16)
    for _ in range(10):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def probe_tflops(backend, precision: str = "bf16") -> float:
    import statistics

    gpu = backend.gpus()[0]
    return gemm_tflops(N, statistics.median(gpu.gemm(precision, N, 10, 50)))


@needs_gpu
def test_probe_bf16_within_5_percent_of_a_plain_matmul(backend) -> None:
    # A B B A, averaged: a drift of clocks and temperature (a card at its power cap slows as it heats)
    # cancels out of the comparison when it is steady over the four windows.
    probe_a, plain_a = probe_tflops(backend), plain_matmul_tflops()
    plain_b, probe_b = plain_matmul_tflops(), probe_tflops(backend)
    probe, plain = (probe_a + probe_b) / 2, (plain_a + plain_b) / 2
    print(f"\n{torch.cuda.get_device_name(0)}: probe bf16 {probe:.1f}, plain torch.matmul {plain:.1f} TFLOPS")
    assert consistency(probe, plain) <= 0.05


@needs_h100
def test_h100_sxm_bf16_at_least_750_tflops(backend) -> None:
    tflops = probe_tflops(backend)
    print(f"\nH100 SXM bf16 {tflops:.1f} TFLOPS")
    assert tflops >= 750


@needs_h100
def test_h100_sxm_device_copy_at_least_2_8_tbs(backend) -> None:
    import statistics

    nbytes = 2 << 30
    gbs = copy_gbs(
        "device_copy", nbytes, statistics.median(backend.gpus()[0].copy("device_copy", nbytes, 2, 20))
    )
    print(f"\nH100 SXM device copy {gbs / 1000:.2f} TB/s (read + write)")
    assert gbs >= 2800


@needs_gpu
def test_sdc_on_a_healthy_gpu_is_within_rounding(backend) -> None:
    gpu = backend.gpus()[0]
    precisions = ["bf16", "fp16", "tf32"] + (["fp8"] if gpu.identity.fp8 else [])
    for precision in precisions:
        sample = gpu.sdc(precision, 2048)
        print(f"\nSDC {precision}: {sample.error_units:.3f} of the rounding bound")
        assert sample.nonfinite == 0 and sample.error_units <= 4
        assert gpu.sdc(precision, 2048).digest == sample.digest  # the same work, the same bits


@needs_gpu
def test_quick_probe_of_this_machine(backend) -> None:
    from computelease.catalog.core import load_catalog
    from computelease.probe.core import load_thresholds
    from computelease.probe.runner import run_probe
    from computelease.probe.schemas import ProbeReport, Verdict

    catalog = load_catalog()
    report = run_probe(backend, mode="quick", catalog=catalog, thresholds=load_thresholds(catalog))
    print("\n" + report.summary)
    assert ProbeReport.model_validate_json(report.model_dump_json()) == report
    for gpu in report.gpus:
        names = {c.name: c for c in gpu.checks}
        assert names["matmul_consistency"].verdict is Verdict.PASS, names["matmul_consistency"].detail
        for name in ("sdc_bf16", "sdc_fp16", "sdc_tf32", "load_stability"):
            assert names[name].verdict is Verdict.PASS, names[name].detail
        if MODEL == "nvidia-h100-sxm":
            assert names["gemm_bf16"].verdict is Verdict.PASS and names["device_copy"].verdict is Verdict.PASS
