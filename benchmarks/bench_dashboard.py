"""The operator's dashboard at scale: bench_close.py's fleet (N contracts on 1.25 nodes each, a month of
GPU incidents in October 2026), read on 20 October 2026.

    .venv/bin/python benchmarks/bench_dashboard.py --backend sqlite --contracts 10000

The dashboard measures every contract in service for the month so far (SLA and accrued revenue) and,
for each of the two months before that is not closed yet, what the close would bill. So it is timed
twice: with August and September open (the worst case: three months of SLA per contract), then with
both closed (the usual case after the 2nd of a month: one). Seeding and closing are not timed. Prints
seconds per run, their median and the process's peak memory.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from computelease import migrate
from computelease.auth.core import SYSTEM
from computelease.billing import service as billing
from computelease.dashboard import service
from computelease.db import Database

NOW = datetime(2026, 10, 20, tzinfo=UTC)
_spec = importlib.util.spec_from_file_location("bench_close", Path(__file__).with_name("bench_close.py"))
bench_close = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_close)  # the same seed, so the two benchmarks describe one fleet


def timed(db: Database, runs: int) -> tuple[list[float], service.Summary]:
    times, got = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        with db.transaction(actor="bench") as s:
            got = service.summary(s, SYSTEM, now=NOW)
        times.append(time.perf_counter() - t0)
    assert got is not None
    return times, got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite"], default="sqlite")
    ap.add_argument("--contracts", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    db = Database(f"sqlite:///{Path(tmp.name) / 'bench.db'}")
    try:
        migrate.upgrade(db)
        t0 = time.perf_counter()
        sizes = bench_close.seed(db, args.contracts, random.Random(args.seed))
        print(f"seeded {sizes} in {time.perf_counter() - t0:.1f} s ({args.backend})")
        for label in ("August and September open", "August and September closed"):
            if label.endswith("closed"):
                with db.transaction(actor="bench") as s:
                    for period in ("2026-08", "2026-09"):
                        billing.close(s, SYSTEM, period, now=datetime(2026, 10, 2, tzinfo=UTC))
            times, got = timed(db, args.runs)
            print(
                f"{label}: runs {', '.join(f'{t:.1f}' for t in times)} s, "
                f"median {statistics.median(times):.1f} s; "
                f"{len(got.contracts)} contracts watched, {len(got.at_risk)} in danger, "
                f"revenue {[(r.period, r.currency, str(r.net), r.basis) for r in got.revenue]}"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:,.0f} MiB")
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
