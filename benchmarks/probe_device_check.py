#!/usr/bin/env python3
"""The acceptance probe's GPU check, in one go, on a machine with an NVIDIA GPU and PyTorch (issue 8).

    python3 benchmarks/probe_device_check.py [--mode quick|standard|full] [--out DIR] [--no-pytest]

Needs PyTorch with CUDA on the machine; computelease's own code is taken from src/ next to this file when
the package is not installed (then pydantic and rich must be importable, and Python ≥ 3.11). It prints,
and writes to DIR/device-check.txt (DIR: --out, else $OUT, else the current folder):

1. nvidia-smi, and the Python, PyTorch, CUDA and driver versions;
2. yardsticks written out here in plain torch, independent of the probe's code: bf16 GEMM n=8192 timed
   by CUDA events and by the host clock around synchronisations, and a 2 GiB device-to-device copy;
   then the same GEMM sustained for a second on zeros, small integers, uniform and normal values, and
   on normal values at n=4096, 12288 and 16384 (what a power-capped card's rate depends on);
3. the probe itself (quick by default) on every GPU: its table, and its JSON in DIR/probe-report.json;
4. issue 8's conditions: the probe's bf16 within 5% of the plain torch.matmul of (2), and on an H100 SXM
   at least 750 TFLOPS and a device copy of at least 2.8 TB/s;
5. the ``gpu`` pytest tests (tests/probe/test_gpu.py), when pytest and the test dependencies are there.

Exit 0 when every condition of (4) holds, 1 when one does not, 3 when the check could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 8192


class Tee(io.TextIOBase):
    """Everything printed goes to the terminal and to the log file."""

    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 90 - len(title)), flush=True)


def run(command: list[str], timeout: float = 60) -> None:
    if shutil.which(command[0]) is None:
        print(f"({command[0]} not found)")
        return
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        print(done.stdout + done.stderr, end="")
    except subprocess.TimeoutExpired:
        print(f"({' '.join(command)} took over {timeout:g} s)")


def yardsticks(torch) -> dict[str, float]:
    """Plain torch on GPU 0: what any reviewer would write to check the probe's figures."""
    a = torch.randn(N, N, device="cuda:0", dtype=torch.bfloat16)
    b = torch.randn(N, N, device="cuda:0", dtype=torch.bfloat16)
    c = torch.empty_like(a)
    for _ in range(20):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(700):  # about 1 s on an H100: longer than a power-capped card's clock swings
        torch.matmul(a, b)
    torch.cuda.synchronize()
    plain = 2 * N**3 * 700 / (time.perf_counter() - start) / 1e12
    times = []
    for _ in range(700):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        torch.mm(a, b, out=c)
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end) / 1e3)
    events = 2 * N**3 / statistics.median(times) / 1e12
    del a, b, c
    nbytes = 2 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda:0").fill_(1)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        dst.copy_(src)
    torch.cuda.synchronize()
    copy = 2 * nbytes * 20 / (time.perf_counter() - start) / 1e9
    del src, dst
    torch.cuda.empty_cache()
    print(f"GPU 0 {torch.cuda.get_device_name(0)}")
    print(f"  bf16 n={N}: plain torch.matmul, host clock  {plain:8.1f} TFLOPS")
    print(f"  bf16 n={N}: torch.mm out=, CUDA events      {events:8.1f} TFLOPS (median of 700)")
    print(f"  device copy 2 GiB, read + write counted      {copy / 1000:8.3f} TB/s")
    return {"plain": plain, "events": events, "copy": copy}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("quick", "standard", "full"), default="quick")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "."))
    parser.add_argument("--no-pytest", action="store_true", help="skip the gpu pytest tests")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "device-check.txt").open("w", encoding="utf-8")
    with contextlib.redirect_stdout(Tee(sys.__stdout__, log)):
        return check(args)


def sustained(torch, a, b, seconds: float = 1.0) -> float:
    """bf16 TFLOPS of ``a @ b`` over about ``seconds`` of back-to-back GEMMs, by the host clock."""
    n = a.shape[0]
    for _ in range(10):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        count += 20
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e12


def power_and_shape(torch) -> None:
    """What holds an H100's bf16 rate below its datasheet: the data's switching power and the size.

    The same GEMM on zeros, on small integers, on uniform and on normal values (a power-capped card
    clocks lower the more bits flip), and normal values at four sizes; each over about one second.
    """
    n = N
    dev = "cuda:0"
    kinds = {
        "zeros": lambda: torch.zeros(n, n, device=dev, dtype=torch.bfloat16),
        "integers 0..3": lambda: torch.randint(0, 4, (n, n), device=dev).to(torch.bfloat16),
        "uniform -1..1": lambda: (torch.rand(n, n, device=dev) * 2 - 1).to(torch.bfloat16),
        "normal (randn)": lambda: torch.randn(n, n, device=dev, dtype=torch.bfloat16),
    }
    for name, make in kinds.items():
        a, b = make(), make()
        print(f"  bf16 n={n} {name:<16} {sustained(torch, a, b):8.1f} TFLOPS sustained (≈1 s)")
        del a, b
    for size in (4096, 12288, 16384):
        a = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
        b = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
        print(f"  bf16 n={size:<5} normal (randn)   {sustained(torch, a, b):8.1f} TFLOPS sustained (≈1 s)")
        del a, b
    torch.cuda.empty_cache()


def check(args: argparse.Namespace) -> int:
    section("machine")
    print(f"{platform.node()} · {platform.platform()} · Python {platform.python_version()}")
    run(["nvidia-smi"])
    run(
        [
            "nvidia-smi",
            "--query-gpu=index,name,pci.bus_id,driver_version,power.limit,clocks.max.sm,ecc.mode.current,"
            "pcie.link.gen.max,pcie.link.width.max",
            "--format=csv",
        ]
    )
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed here: the check could not run")
        return 3
    print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, cuBLAS via torch.matmul")
    if not torch.cuda.is_available():
        print("no CUDA GPU visible to PyTorch: the check could not run")
        return 3

    section("yardsticks in plain torch (GPU 0)")
    plain = yardsticks(torch)
    section("bf16 by data and size, plain torch (GPU 0)")
    power_and_shape(torch)

    section(f"computelease probe --{args.mode}")
    if importlib.util.find_spec("computelease") is None:
        sys.path.insert(0, str(ROOT / "src"))
    try:
        from rich.console import Console

        from computelease.catalog.core import load_catalog
        from computelease.probe.core import load_thresholds
        from computelease.probe.device import open_backend
        from computelease.probe.render import render
        from computelease.probe.runner import run_probe
    except ImportError as exc:
        print(f"the probe's code does not import here ({exc}); pip install -e '.[probe]' and run again")
        return 3
    catalog = load_catalog()
    backend = open_backend()
    started = time.perf_counter()
    try:
        report = run_probe(
            backend,
            mode=args.mode,
            catalog=catalog,
            thresholds=load_thresholds(catalog),
            progress=lambda message: print(f"probe: {message}", flush=True),
        )
    finally:
        backend.close()
    print(f"probe took {time.perf_counter() - started:.1f} s")
    render(report, Console(file=sys.stdout, width=150, force_terminal=False))
    (args.out / "probe-report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    print(f"JSON report: {args.out / 'probe-report.json'}")

    section("issue 8 conditions")
    gpu = report.gpus[0]
    failures = 0

    def condition(ok: bool, text: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")

    if gpu.bf16_tflops is None:
        condition(False, "the probe produced no bf16 figure on GPU 0")
    else:
        gap = abs(gpu.bf16_tflops - plain["plain"]) / plain["plain"]
        condition(
            gap <= 0.05,
            f"probe bf16 {gpu.bf16_tflops:.1f} vs plain torch.matmul {plain['plain']:.1f} TFLOPS: "
            f"{gap:.1%} apart (≤ 5%)",
        )
    if gpu.model == "nvidia-h100-sxm":
        condition((gpu.bf16_tflops or 0) >= 750, f"H100 SXM bf16 {gpu.bf16_tflops} TFLOPS ≥ 750")
        copy = next((b.gbs for b in gpu.bandwidth if b.kind == "device_copy"), 0.0)
        condition(copy >= 2800, f"H100 SXM device copy {copy / 1000:.3f} TB/s ≥ 2.8")
    else:
        print(f"  (GPU 0 is {gpu.name}, model {gpu.model}: the H100 SXM floors do not apply)")
    print(f"probe verdict {report.verdict.value} (exit {report.exit_code}): {report.summary}")

    section("pytest -m gpu tests/probe")
    if args.no_pytest:
        print("(skipped: --no-pytest)")
    else:
        try:
            import pytest  # noqa: F401
            import sqlalchemy  # noqa: F401  (pyproject's pytest settings name one of its warnings)
        except ImportError as exc:
            print(f"(skipped: {exc.name} is not installed here)")
        else:
            env = dict(
                os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
            )
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-m",
                    "gpu",
                    "tests/probe",
                    "-q",
                    "-s",
                    "-rs",
                    "-p",
                    "no:cacheprovider",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            print(done.stdout + done.stderr, end="")
            failures += done.returncode not in (0, 5)
    run(["nvidia-smi", "--query-gpu=index,temperature.gpu,power.draw,clocks.sm", "--format=csv"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
