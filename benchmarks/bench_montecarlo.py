"""How fast is the Monte Carlo engine? Simulates the 莲花紫星-like example several times; prints the median.

    .venv/bin/python benchmarks/bench_montecarlo.py                  # 1,000,000 paths × 60 months, 3 runs
    .venv/bin/python benchmarks/bench_montecarlo.py --paths 200000 --runs 5
    .venv/bin/python benchmarks/bench_montecarlo.py --workers 1 --chunk 8192
    .venv/bin/python benchmarks/bench_montecarlo.py --backend jax    # JAX on its default device (GPU if any)
    .venv/bin/python benchmarks/bench_montecarlo.py --backend torch  # torch on cuda if visible, else cpu

Target (issue 7): 1,000,000 paths × 60 months in at most 6 s on 2 cores (≥ 10 million path-months a
second) with peak memory at most 2 GB. Memory is the peak resident set (``ru_maxrss``) of this process
plus that of its largest worker process, as ``getrusage`` reports them; the scenario is parsed and
prepared before the clock starts (that is milliseconds), the worker processes start on the clock.

Each run also prints the CPU time it consumed (this process and its workers, user + system) and the
share of the cores that is: on a shared machine a low share means other work held the cores, and
path-months per CPU-second is the figure that does not depend on it.

With ``--backend jax`` or ``torch`` the chunks run one after another in this process on the backend's
device (``--workers`` does not apply; the share of cores is of all cores, which XLA's and torch's
thread pools use). One untimed warm-up run of a single chunk comes first: JAX compiles the chunk once
per process (~2 s on the reference machine), which is not the engine's rate; its time is printed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from computelease.economics.montecarlo import BACKENDS, DEFAULT_CHUNK, require_backend, simulate
from computelease.economics.plan import prepare
from computelease.economics.scenario import load_scenario

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lianhua_zixing.yaml"


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_memory_mb() -> float:
    """Peak RSS of this process plus the largest finished child, in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return (own + children) * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=EXAMPLE)
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=None, help="paths per chunk (default: the backend's)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    args = parser.parse_args()
    require_backend(args.backend)

    plan = prepare(load_scenario(args.scenario))
    months = plan.T
    cores = os.cpu_count() or 1
    if args.backend != "numpy":
        module = importlib.import_module(f"computelease.economics.mc_{args.backend}")
        args.chunk = args.chunk or module.default_chunk()
        began = time.perf_counter()
        simulate(plan, paths=args.chunk, seed=args.seed, backend=args.backend, chunk_size=args.chunk)
        print(
            f"backend {args.backend} on {_device(args.backend)}: warm-up, one chunk with compilation, "
            f"{time.perf_counter() - began:.2f} s (not timed below)"
        )
        args.workers = cores
    args.chunk = args.chunk or DEFAULT_CHUNK
    where = f"{args.workers} workers" if args.backend == "numpy" else f"{args.backend}, {cores} cores"
    size = f"{args.paths:,} paths × {months} months"
    print(f"{args.scenario.name}: {size}, {where}, chunks of {args.chunk:,}, {args.runs} runs")
    times = []
    cpu = []
    result = None
    work = args.paths * months
    for run in range(1, args.runs + 1):
        began, cpu_began = time.perf_counter(), cpu_seconds()
        result = simulate(
            plan,
            paths=args.paths,
            seed=args.seed,
            workers=args.workers if args.backend == "numpy" else None,
            chunk_size=args.chunk,
            backend=args.backend,
        )
        elapsed, used = time.perf_counter() - began, cpu_seconds() - cpu_began
        times.append(elapsed)
        cpu.append(used)
        print(
            f"  run {run}: {elapsed:6.2f} s  {work / elapsed / 1e6:6.2f} M path-months/s   "
            f"cpu {used:5.2f} s ({used / elapsed / args.workers:4.0%} of {args.workers} cores)"
        )
    median = statistics.median(times)
    assert result is not None
    print(f"median: {median:.2f} s  {work / median / 1e6:.2f} M path-months/s")
    cpu_median = statistics.median(cpu)
    print(f"median CPU time: {cpu_median:.2f} s  {work / cpu_median / 1e6:.2f} M path-months per CPU-second")
    print(
        f"peak memory (self + largest worker, ru_maxrss): {peak_memory_mb():,.0f} MiB (host; not GPU memory)"
    )
    print(
        f"NPV P5/P50/P95: {result.npv.p5:,.0f} / {result.npv.p50:,.0f} / {result.npv.p95:,.0f}   "
        f"equity IRR P50: {result.equity_irr.p50:.2%}   P(DSCR<1): {result.p_dscr_below_1:.3f}   "
        f"P(shortfall): {result.p_cash_shortfall:.3f}"
    )


def _device(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    import torch

    return f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    main()
