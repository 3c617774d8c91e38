"""Month close at scale: N contracts over a fleet of 8-GPU nodes with a month of GPU incidents.

    .venv/bin/python benchmarks/bench_close.py --backend sqlite --contracts 10000
    .venv/bin/python benchmarks/bench_close.py --backend postgres \
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The fleet is 1.25 nodes per contract (three in four contracts hold one node, one in four two), so
10,000 contracts cover 12,500 nodes and 100,000 GPUs. Pricing is mixed (fixed fee, per PFLOPS-month,
per GPU-hour; one contract in ten in USD with VAT on top), every contract has a tiered SLA, and October
2026 carries incidents at the Llama 3 rate (DOMAIN.md: 419 unexpected interruptions in 54 days on 16,384
GPUs, about 0.47 per 1,000 GPU-days), each taking one GPU down for 1 to 24 hours.

Seeding is not timed. Each run closes October 2026 from scratch in one transaction (commit included),
then the billing tables are emptied for the next run; a re-close (nothing to change) is timed once at the
end. Prints seconds per run, their median, contracts per second and peak memory of the process.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, delete, insert, select, text

from computelease import migrate
from computelease.allocation.models import Allocation
from computelease.auth.core import SYSTEM
from computelease.billing import service
from computelease.billing.models import (
    BillingPeriod,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    LedgerEntry,
)
from computelease.contracts.models import Contract, ContractEvent, Customer, SlaPolicy
from computelease.db import Database
from computelease.fleet.models import Gpu, Node, Site
from computelease.telemetry.models import GpuHealthInterval, Incident, IncidentGpu

T_SIGNED = datetime(2025, 12, 1, tzinfo=UTC)
START = datetime(2025, 12, 31, 16, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai
END = datetime(2026, 12, 31, 16, tzinfo=UTC)
OCT = (datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC))
CLOSE_AT = datetime(2026, 11, 2, tzinfo=UTC)
RATE_PER_GPU_DAY = 419 / (54 * 16384)


def seed(db: Database, contracts: int, rng: random.Random) -> dict[str, int]:
    with db.transaction(actor="bench") as s:
        site = Site(
            code="bench",
            name="Bench",
            kind="own_center",
            city="庆阳",
            pue=Decimal("1.2"),
            power_price_per_kwh=Decimal("0.35"),
        )
        policy = SlaPolicy(
            name="bench SLA",
            target_pct=Decimal("99.9"),
            credit_tiers=[{"below": "99.9", "credit_pct": "10"}, {"below": "99", "credit_pct": "25"}],
            cap_pct=Decimal("30"),
        )
        s.add_all([site, policy])
        s.flush()
        customers = [Customer(name=f"Bench customer {i}", segment="ai_cloud") for i in range(200)]
        s.add_all(customers)
        s.flush()
        now = datetime.now(UTC)
        node_rows, gpu_rows, contract_rows, alloc_plan = [], [], [], []
        node_id = 0
        for c in range(1, contracts + 1):
            nodes = 2 if c % 4 == 0 else 1
            kind = c % 3
            usd = c % 10 == 0
            gpus = 8 * nodes
            if kind == 0:
                pricing, price = "monthly_fee", Decimal(70000 * nodes)
            elif kind == 1:
                pricing, price = "per_pflops_month", Decimal("9000")
            else:
                pricing, price = "per_gpu_hour", Decimal("2.50") if usd else Decimal("12.00")
            contract_rows.append(
                {
                    "id": c,
                    "customer_id": customers[c % len(customers)].id,
                    "name": f"bench-{c}",
                    "status": "active",
                    "capacity_unit": "gpus",
                    "capacity": Decimal(gpus),
                    "accelerator_model": "nvidia-h100-sxm",
                    "placement": "any",
                    "start_date": date(2026, 1, 1),
                    "end_date": date(2026, 12, 31),
                    "starts_at": START,
                    "ends_at": END,
                    "timezone": "Asia/Shanghai",
                    "pricing": pricing,
                    "price": price,
                    "om_monthly_fee": Decimal("3000.00") * nodes,
                    "deposit": Decimal(0),
                    "prepayment": Decimal(0),
                    "payment_terms_days": 30,
                    "currency": "USD" if usd else "CNY",
                    "prices_include_vat": not usd,
                    "sla_policy_id": policy.id,
                    "notes": "",
                    "billable_gpus": gpus,
                    "billable_pflops": Decimal("7.916") * nodes,
                    "total_value": Decimal(0),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for _ in range(nodes):
                node_id += 1
                node_rows.append(
                    {
                        "id": node_id,
                        "serial": f"BN-{node_id:06d}",
                        "sku_id": "nvidia-hgx-h100-8gpu",
                        "model": "nvidia-h100-sxm",
                        "site_id": site.id,
                        "state": "in_service",
                        "state_since": T_SIGNED,
                        "purchase_cost": Decimal("2300000"),
                        "purchase_date": date(2025, 11, 1),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                gpu_rows.extend(
                    {"node_id": node_id, "index": g, "created_at": now, "updated_at": now} for g in range(8)
                )
                alloc_plan.append((node_id, c))
        s.execute(insert(Node), node_rows)
        s.execute(insert(Gpu), gpu_rows)
        s.execute(insert(Contract), contract_rows)
        s.execute(
            insert(ContractEvent),
            [
                {
                    "contract_id": r["id"],
                    "from_status": None,
                    "to_status": "active",
                    "at": T_SIGNED,
                    "reason": "",
                    "actor": "bench",
                }
                for r in contract_rows
            ],
        )
        s.execute(
            insert(Allocation),
            [
                {
                    "node_id": n,
                    "contract_id": c,
                    "start_at": START,
                    "end_at": END,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, c in alloc_plan
            ],
        )
        gpu_days = node_id * 8 * 31
        incidents = (
            rng.binomialvariate(gpu_days, RATE_PER_GPU_DAY)
            if hasattr(rng, "binomialvariate")
            else (round(gpu_days * RATE_PER_GPU_DAY))
        )
        span = (OCT[1] - OCT[0]).total_seconds()
        for _ in range(incidents):
            n = rng.randint(1, node_id)
            g = rng.randrange(8)
            start = OCT[0] + timedelta(seconds=rng.uniform(0, span - 3600))
            end = min(start + timedelta(hours=rng.uniform(1, 24)), OCT[1])
            incident = Incident(
                node_id=n,
                source="auto",
                status="closed",
                title=f"BN-{n:06d} XID 79",
                opened_at=start,
                closed_at=end,
                opened_by="telemetry",
            )
            s.add(incident)
            s.flush()
            s.add(IncidentGpu(incident_id=incident.id, gpu_index=g, reasons="xid 79"))
            s.add(
                GpuHealthInterval(
                    node_id=n,
                    gpu_index=g,
                    state="unhealthy",
                    reasons="xid 79",
                    start_at=start,
                    end_at=end,
                    incident_id=incident.id,
                )
            )
        return {"nodes": node_id, "gpus": node_id * 8, "contracts": contracts, "incidents": incidents}


def wipe(db: Database) -> None:
    with db.transaction(actor="bench") as s:
        for table in (LedgerEntry, InvoicePayment, InvoiceLine):
            s.execute(delete(table))
        s.execute(Invoice.__table__.update().values(corrects_id=None))
        for table in (Invoice, DocumentSequence, BillingPeriod):
            s.execute(delete(table))


def close(db: Database) -> tuple[float, service.CloseResult]:
    t0 = time.perf_counter()
    with db.transaction(actor="bench") as s:
        result = service.close(s, SYSTEM, "2026-10", now=CLOSE_AT)
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--contracts", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--postgres-url", default=os.environ.get("COMPUTELEASE_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    schema = None
    if args.backend == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        if not args.postgres_url:
            raise SystemExit("--postgres-url (or COMPUTELEASE_TEST_POSTGRES_URL) is needed for postgres")
        schema = f"cl_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in args.postgres_url else "?"
        url = f"{args.postgres_url}{sep}options=-csearch_path%3D{schema}"
    db = Database(url)
    try:
        migrate.upgrade(db)
        t0 = time.perf_counter()
        sizes = seed(db, args.contracts, random.Random(args.seed))
        print(f"seeded {sizes} in {time.perf_counter() - t0:.1f} s ({args.backend})")
        times = []
        for run in range(args.runs):
            if run:
                wipe(db)
            seconds, result = close(db)
            times.append(seconds)
            credits = sum(
                1
                for _ in db.engine.connect().execute(
                    select(InvoiceLine.id).where(InvoiceLine.kind == "sla_credit")
                )
            )
            print(
                f"run {run + 1}: {seconds:.1f} s, {result.created} invoices, {credits} SLA credits, "
                f"totals { ({c: str(t['gross']) for c, t in result.totals.items()}) }"
            )
        again, result = close(db)
        print(f"re-close: {again:.1f} s, created {result.created}, unchanged {result.unchanged}")
        median = statistics.median(times)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.backend}: median {median:.1f} s for {args.contracts} contracts "
            f"({args.contracts / median:,.0f} contracts/s); peak RSS {peak:,.0f} MiB"
        )
    finally:
        db.dispose()
        if schema:
            admin = create_engine(args.postgres_url)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
