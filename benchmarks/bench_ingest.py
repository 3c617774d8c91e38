"""Heartbeat ingest under load: N nodes of 8 GPUs, each sending one heartbeat per batch, open loop at a
target rate, against a local uvicorn server on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/bench_ingest.py --backend sqlite --nodes 2000 --rate 2000 --duration 60
    .venv/bin/python benchmarks/bench_ingest.py --backend postgres \
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints the rate sustained, p50/p99 latency, and checks that every heartbeat sent is stored exactly once
(none lost). The load generator shares the machine with the server: on 2 cores both compete.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

from computelease import migrate
from computelease.auth import service as auth
from computelease.auth.core import Role
from computelease.db import Database
from computelease.fleet import service as fleet
from computelease.fleet.models import SiteKind
from computelease.fleet.schemas import NodeIn, SiteIn
from computelease.telemetry.models import Heartbeat

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(db: Database, nodes: int) -> str:
    with db.transaction(actor="bench") as s:
        site = fleet.create_site(
            s,
            SiteIn(
                code="bench",
                name="Bench site",
                kind=SiteKind.own_center,
                city="庆阳",
                pue=Decimal("1.2"),
                power_price_per_kwh=Decimal("0.35"),
            ),
        )
        for i in range(nodes):
            fleet.create_node(
                s,
                NodeIn(
                    serial=f"B-{i:05d}",
                    sku_id="nvidia-hgx-h100-8gpu",
                    site_id=site.id,
                    purchase_cost=Decimal("2300000"),
                    purchase_date=date(2025, 1, 1),
                    state="in_service",
                    state_since=T0 - timedelta(days=30),
                ),
            )
        return auth.create_token(s, role=Role.operator, name="bench")[1]


def _body(node: int, seq: int) -> bytes:
    at = (T0 + timedelta(seconds=30 * seq)).isoformat()
    gpus = ",".join(
        f'{{"index":{g},"uuid":"GPU-{node:05d}-{g}","utilization_pct":97.0,"power_w":612.5,'
        f'"temperature_c":61.0,"ecc_dbe_volatile":0,"ecc_dbe_aggregate":0,"remap_pending":false,'
        f'"remap_failed":false,"xids":[]}}'
        for g in range(8)
    )
    return (
        f'{{"node":"B-{node:05d}","agent":{{"version":"bench","backend":"simulated","host":"h"}},'
        f'"heartbeats":[{{"seq":{seq},"at":"{at}","interval_s":30,"gpus":[{gpus}]}}]}}'
    ).encode()


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited while starting")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def run(backend: str, nodes: int, rate: float, duration: float, workers: int, pg_url: str | None) -> int:
    schema = None
    tmp = tempfile.TemporaryDirectory()
    if backend == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        if not pg_url:
            raise SystemExit("--postgres-url (or COMPUTELEASE_TEST_POSTGRES_URL) is needed for postgres")
        schema = f"cl_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    db = Database(url)
    proc = None
    try:
        migrate.upgrade(db)
        token = _seed(db, nodes)
        port = _free_port()
        env = os.environ | {"COMPUTELEASE_DATABASE_URL": url, "COMPUTELEASE_SECRET_KEY": "b" * 48}
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no user input
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "computelease.app:create_app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, proc)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
            timeout=30,
        )

        def send(node: int, seq: int) -> None:
            started = time.perf_counter()
            try:
                r = client.post("/api/v1/telemetry/heartbeats", content=_body(node, seq))
                ok = r.status_code == 200 and r.json()["accepted"] == 1
                why = "" if ok else f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                why = repr(exc)
            with lock:
                latencies.append(time.perf_counter() - started)
                if why:
                    failures.append(why)

        total = int(rate * duration)
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for k in range(total):
                # Open loop: the schedule does not wait for answers, so a slow server shows as latency.
                due = started + k / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, k % nodes, k // nodes + 1)
        elapsed = time.perf_counter() - started
        client.close()
        with db.transaction(actor="bench") as s:
            stored = s.scalar(select(func.count()).select_from(Heartbeat))
        lat = sorted(latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000
        print(
            f"{backend}: {total} heartbeats ({nodes} nodes × 8 GPUs) in {elapsed:.1f} s = "
            f"{total / elapsed:,.0f}/s (target {rate:,.0f}/s); p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
            f"stored {stored}, failed {len(failures)}"
        )
        for why in failures[:5]:
            print("  failure:", why)
        lost = total - stored
        if lost or failures:
            print(f"LOST {lost} heartbeat(s)")
            return 1
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        db.dispose()
        if schema:
            admin = create_engine(pg_url)  # type: ignore[arg-type]
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
        tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200, help="heartbeats per second, all nodes together")
    parser.add_argument("--duration", type=float, default=10, help="seconds")
    parser.add_argument("--workers", type=int, default=32, help="concurrent connections")
    parser.add_argument("--postgres-url", default=os.environ.get("COMPUTELEASE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    return max(
        run(b, args.nodes, args.rate, args.duration, args.workers, args.postgres_url) for b in backends
    )


if __name__ == "__main__":
    sys.exit(main())
