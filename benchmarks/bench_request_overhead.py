"""Where one heartbeat request's time goes: the ingest service alone against the whole ASGI app, in one
process, one request at a time (no HTTP client, no sockets), on a fresh SQLite file.

    .venv/bin/python benchmarks/bench_request_overhead.py [--nodes 500] [--requests 1500] [--runs 3]

Each run seeds ``--nodes`` in-service nodes of 8 GPUs, sends every node one warm-up heartbeat, then
times ``--requests`` single-node heartbeats (8 healthy GPUs) twice: through
``telemetry.service.ingest_body`` in its own transaction (what the endpoint runs), and through the
whole app (middleware, routing, authentication, the Session dependency, the endpoint). The gap is the
web stack's share of a request; bench_ingest.py measures the served rate over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import _body, _seed

from computelease import migrate
from computelease.app import create_app
from computelease.auth import service as auth
from computelease.config import Settings
from computelease.db import Database
from computelease.telemetry import service

PATH = b"/api/v1/telemetry/heartbeats"


def _scope(token: str, size: int) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH.decode(),
        "raw_path": PATH,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(size).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _through_app(app, token: str, bodies: list[bytes]) -> None:
    for body in bodies:
        sent: list[dict] = []
        delivered = False

        async def receive(body: bytes = body) -> dict:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict, sent: list[dict] = sent) -> None:
            sent.append(message)

        await app(_scope(token, len(body)), receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"the app answered {sent[0]['status']}: {sent[-1].get('body', b'')[:300]!r}")


def one_run(nodes: int, requests: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db = Database(url)
        migrate.upgrade(db)
        token = _seed(db, nodes)
        app = create_app(Settings(database_url=url), db)
        with db.transaction(actor="bench") as s:
            principal = auth.principal_for_token(s, token)
        # heartbeat k is node k % nodes, seq k // nodes + 1: the first `nodes` are the warm-up
        asyncio.run(_through_app(app, token, [_body(k, 1, nodes, False) for k in range(nodes)]))
        first = nodes
        service_bodies = [_body(k, 1, nodes, False) for k in range(first, first + requests)]
        app_bodies = [_body(k, 1, nodes, False) for k in range(first + requests, first + 2 * requests)]

        began = time.perf_counter()
        for body in service_bodies:
            with db.transaction(actor="bench") as s:
                service.ingest_body(s, principal, body)
        service_rate = requests / (time.perf_counter() - began)

        began = time.perf_counter()
        asyncio.run(_through_app(app, token, app_bodies))
        app_rate = requests / (time.perf_counter() - began)
        db.dispose()
    return service_rate, app_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.requests % args.nodes:
        parser.error("--requests must be a multiple of --nodes (each node's heartbeats stay in order)")
    rates = []
    for run in range(1, args.runs + 1):
        service_rate, app_rate = one_run(args.nodes, args.requests)
        rates.append((service_rate, app_rate))
        print(
            f"run {run}: service alone {service_rate:6.0f}/s ({1e3 / service_rate:.2f} ms)   "
            f"whole app {app_rate:6.0f}/s ({1e3 / app_rate:.2f} ms)",
            flush=True,
        )
    service_median = statistics.median(r[0] for r in rates)
    app_median = statistics.median(r[1] for r in rates)
    print(
        f"median: service alone {service_median:.0f}/s, whole app {app_median:.0f}/s; the web stack adds "
        f"{1e3 / app_median - 1e3 / service_median:.2f} ms per request"
    )


if __name__ == "__main__":
    main()
