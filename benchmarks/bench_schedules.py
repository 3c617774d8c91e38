"""How fast are rent schedules? Builds N schedules of P periods, several times, and prints the median.

    .venv/bin/python benchmarks/bench_schedules.py                 # 10,000 × 60 periods, 5 runs, 1 process
    .venv/bin/python benchmarks/bench_schedules.py --workers 2     # split across 2 processes
    .venv/bin/python benchmarks/bench_schedules.py --quotes 1000   # also time full quotes (VAT + IRR)

Each schedule has its own principal, rate, start date, method and timing, so nothing is shared or
cached between them. Terms are validated before the clock starts; "terms+build" times both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

from computelease.finance import core

METHODS = ["annuity", "annuity", "annuity", "equal_principal", "interest_only"]


def make_terms(index: int, periods: int) -> core.LeaseTerms:
    return core.LeaseTerms(
        principal=Decimal(1_000_000 + 7_919 * index) / 1,
        annual_rate=Decimal(300 + index % 900) / 10_000,
        months=periods,
        start=date(2020, 1, 1) + timedelta(days=index),
        method=METHODS[index % len(METHODS)],
        timing="advance" if index % 4 == 0 else "arrears",
        balloon=Decimal(100_000) if index % 10 == 0 else Decimal(0),
    )


def build_range(lo: int, hi: int, periods: int) -> int:
    rows = 0
    for t in [make_terms(i, periods) for i in range(lo, hi)]:
        rows += len(core.build_schedule(t).rows)
    return rows


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
        del result  # freeing millions of Decimals is not building them: keep it off the clock
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--periods", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quotes", type=int, default=0, help="also time this many full quotes (VAT, IRR)")
    args = parser.parse_args()

    terms = [make_terms(i, args.periods) for i in range(args.count)]
    assert all(len(core.build_schedule(t).rows) == args.periods for t in terms[:50])
    print(f"{args.count:,} schedules × {args.periods} periods, {args.runs} runs, cpu count {os.cpu_count()}")

    build = timed(lambda: [core.build_schedule(t) for t in terms], args.runs)
    print(
        f"build only, 1 process : median {statistics.median(build):.3f} s  (runs: "
        + ", ".join(f"{t:.3f}" for t in build)
        + ")"
    )
    both = timed(lambda: build_range(0, args.count, args.periods), args.runs)
    print(f"terms+build, 1 process: median {statistics.median(both):.3f} s")

    if args.workers > 1:
        step = -(-args.count // args.workers)
        chunks = [(lo, min(lo + step, args.count), args.periods) for lo in range(0, args.count, step)]
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(build_range, *zip(*chunks, strict=True)))  # start the workers before timing

            def parallel() -> None:
                assert sum(pool.map(build_range, *zip(*chunks, strict=True))) == args.count * args.periods

            spread = timed(parallel, args.runs)
        print(f"terms+build, {args.workers} processes: median {statistics.median(spread):.3f} s")

    if args.quotes:
        sample = terms[: args.quotes]
        quotes = timed(lambda: [core.quote(t) for t in sample], max(1, args.runs // 2))
        print(f"{args.quotes:,} full quotes (schedule, VAT, IRRs): median {statistics.median(quotes):.3f} s")


if __name__ == "__main__":
    main()
