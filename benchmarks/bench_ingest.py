"""Heartbeat ingest under load: nodes of 8 GPUs posting heartbeats, open loop at a target rate, against a
local uvicorn server on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/bench_ingest.py --backend sqlite --mode relay --rate 2000 --duration 60
    .venv/bin/python benchmarks/bench_ingest.py --backend postgres --mode single --rate 2000 \\
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Two ways in, both measured in heartbeats per second:

- ``--mode single``: one request per node heartbeat, as each node agent posts its own (a real fleet:
  60,000 nodes at one heartbeat per 30 s is 2,000 requests per second);
- ``--mode relay``: a site collector forwards ``--relay-nodes`` nodes' heartbeats per request
  (``{"batches": [...]}``), each node judged on its own.

The schedule is open loop: request ``k`` is due at ``start + k / requests_per_second`` whether or not
earlier ones were answered, and its latency counts from when it was due, so a server that falls behind
shows as latency (and as a rate below the target) instead of slowing the generator down. The generator
is a small asyncio HTTP/1.1 client (keep-alive connections, prepared request bytes), so that it takes
as little of the machine's CPU as it can: on 2 cores it still shares them with the server and the
database. Prints the rate sustained, p50/p99 latency, CPU seconds of server and generator, and checks
that every heartbeat sent was stored exactly once with its 8 GPU samples (none lost). Exit status 0 only
when none was lost or refused and the target rate was sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

from computelease import migrate
from computelease.auth import service as auth
from computelease.auth.core import Role
from computelease.catalog import service as catalog_service
from computelease.db import Database
from computelease.fleet import service as fleet
from computelease.fleet.models import SiteKind
from computelease.fleet.schemas import NodeIn, SiteIn
from computelease.telemetry.models import GpuSample, Heartbeat

T0 = datetime(2026, 10, 1, tzinfo=UTC)
PATH = "/api/v1/telemetry/heartbeats"
REQUEST_TIMEOUT_S = 60
SUSTAINED = 0.98  # the rate over the whole run must reach this share of the target


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
        catalog = catalog_service.catalog(s)
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
                catalog=catalog,
            )
        return auth.create_token(s, role=Role.operator, name="bench")[1]


def _node_batch(node: int, seq: int) -> str:
    """One node's batch of one heartbeat, 8 healthy GPUs, as an agent sends it (about 2.3 kB)."""
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
    )


def _body(first: int, count: int, nodes: int, relay: bool) -> bytes:
    """Heartbeats ``first .. first+count-1`` of the run: heartbeat k is node k % nodes, seq k // nodes + 1."""
    parts = [_node_batch(k % nodes, k // nodes + 1) for k in range(first, first + count)]
    return (f'{{"batches":[{",".join(parts)}]}}' if relay else parts[0]).encode()


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


def _cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's worker processes), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == root or ppid == root:
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    accepted: int = 0
    last_done: float = 0.0


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readuntil(b"\r\n\r\n")
    length = _CONTENT_LENGTH.search(header)
    payload = await reader.readexactly(int(length.group(1)) if length else 0)
    return int(header.split(b" ", 2)[1]), payload


async def _load(
    port: int,
    token: str,
    *,
    nodes: int,
    rate: float,
    duration: float,
    per_request: int,
    workers: int,
    on_start: Callable[[], None],
) -> tuple[Tally, float, int, int]:
    relay = per_request > 1
    requests = int(rate * duration) // per_request
    interval = per_request / rate
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    tally = Tally()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (job := await queue.get()) is not None:
            due, r = job
            body = _body(r * per_request, per_request, nodes, relay)
            request = head + str(len(body)).encode() + b"\r\n\r\n" + body
            try:
                try:
                    writer.write(request)
                    status, payload = await asyncio.wait_for(_answer(reader), timeout=REQUEST_TIMEOUT_S)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise
                    # The server closed an idle keep-alive connection as the request went out: send it
                    # again on a new one, as HTTP clients do (ingest is idempotent by node and seq).
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(request)
                    status, payload = await asyncio.wait_for(_answer(reader), timeout=REQUEST_TIMEOUT_S)
                answer = json.loads(payload) if status == 200 else None
                if answer is None or answer["accepted"] != per_request:
                    tally.failures.append(f"{status} {payload[:300]!r}")
                else:
                    tally.accepted += answer["accepted"]
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                tally.failures.append(repr(exc))
                writer.close()
                with contextlib.suppress(OSError):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
            done = time.perf_counter()
            tally.latencies.append(done - due)
            tally.last_done = max(tally.last_done, done)
        writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(workers)]
    # Warm-up: a node's first heartbeat opens its 8 health intervals; the fleet under test is running.
    warm = nodes // per_request
    for r in range(warm):
        queue.put_nowait((time.perf_counter(), r))
    while not queue.empty() or len(tally.latencies) < warm:
        await asyncio.sleep(0.05)
    if tally.failures:
        raise SystemExit(f"warm-up failed: {tally.failures[:3]}")
    tally.latencies.clear()
    tally.accepted = 0
    await asyncio.sleep(0.5)
    on_start()
    started = time.perf_counter()
    for r in range(requests):
        due = started + r * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, warm + r))
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return tally, started, requests * per_request, warm * per_request


def _server_command(port: int, workers: int) -> list[str]:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "computelease.app:create_app", "--port", str(port)]
    cmd += [
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "60",
    ]
    if importlib.util.find_spec("uvloop"):
        cmd += ["--loop", "uvloop"]
    if importlib.util.find_spec("httptools"):
        cmd += ["--http", "httptools"]
    return cmd


def run(args: argparse.Namespace, backend: str) -> int:
    schema = None
    tmp = tempfile.TemporaryDirectory()
    pg_url = args.postgres_url
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
    per_request = args.relay_nodes if args.mode == "relay" else 1
    db = Database(url)
    proc = None
    try:
        migrate.upgrade(db)
        token = _seed(db, args.nodes)
        port = _free_port()
        env = os.environ | {"COMPUTELEASE_DATABASE_URL": url, "COMPUTELEASE_SECRET_KEY": "b" * 48}
        command = _server_command(port, args.workers)
        proc = subprocess.Popen(command, env=env)  # noqa: S603 - our own interpreter and module
        _wait_up(f"http://127.0.0.1:{port}", proc)
        cpu: dict[str, float] = {}

        def mark() -> None:
            cpu.update(load=os.getloadavg()[0], server=_cpu_seconds(proc.pid), own=time.process_time())

        if importlib.util.find_spec("uvloop"):
            import uvloop

            uvloop.install()
        tally, started, total, warmed = asyncio.run(
            _load(
                port,
                token,
                nodes=args.nodes,
                rate=args.rate,
                duration=args.duration,
                per_request=per_request,
                workers=args.connections,
                on_start=mark,
            )
        )
        elapsed = tally.last_done - started
        server_cpu, own_cpu = _cpu_seconds(proc.pid) - cpu["server"], time.process_time() - cpu["own"]
        load_before = cpu["load"]
        with db.transaction(actor="bench") as s:
            stored = s.scalar(select(func.count()).select_from(Heartbeat))
            samples = s.scalar(select(func.count()).select_from(GpuSample))
        lat = sorted(tally.latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000
        achieved = total / elapsed
        what = f"relay {per_request} nodes/request" if per_request > 1 else "one request per node"
        print(
            f"{backend} {what}, {args.workers} worker(s): {total:,} heartbeats from {args.nodes:,} nodes "
            f"of 8 GPUs (after {warmed:,} to warm up) in {elapsed:.1f} s = {achieved:,.0f}/s "
            f"(target {args.rate:,.0f}/s); "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms per request; "
            f"stored {stored:,} heartbeats, {samples:,} GPU samples; failed requests {len(tally.failures)}; "
            f"CPU s: server {server_cpu:.0f}, generator {own_cpu:.0f}; load average before {load_before:.2f}"
        )
        for why in tally.failures[:5]:
            print("  failure:", why)
        lost = total + warmed - stored
        ok = not lost and not tally.failures and samples == 8 * stored
        if not ok:
            print(f"LOST {lost} heartbeat(s), {len(tally.failures)} failed request(s)")
        if achieved < SUSTAINED * args.rate:
            print(f"NOT SUSTAINED: {achieved:,.0f}/s is below {SUSTAINED:.0%} of the target")
            ok = False
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        db.dispose()
        if schema:
            admin = create_engine(pg_url)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
        tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--mode", choices=["single", "relay"], default="relay")
    parser.add_argument("--relay-nodes", type=int, default=100, help="node batches per relay request")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2000, help="heartbeats per second, all nodes together")
    parser.add_argument("--duration", type=float, default=60, help="seconds")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--postgres-url", default=os.environ.get("COMPUTELEASE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if args.mode == "relay" and not 1 < args.relay_nodes <= args.nodes:
        parser.error("--relay-nodes must be between 2 and --nodes")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    return max(run(args, b) for b in backends)


if __name__ == "__main__":
    sys.exit(main())
