"""The real agent (spool + Sender) posting to the real app: every heartbeat arrives exactly once, through
a server outage, an answer lost after the server committed, and an agent restart."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select
from tests.telemetry.conftest import T0

from computelease.agent.sender import Sender
from computelease.agent.spool import Spool
from computelease.telemetry.models import Heartbeat
from computelease.telemetry.schemas import AgentInfo, GpuSample, HeartbeatBody

AGENT = AgentInfo(version="0.1.0", backend="simulated", host="h1")


class Flaky(httpx.BaseTransport):
    """Forwards to the app; ``down`` refuses connections, ``lose`` drops the next answers after the
    server has handled the request (the case that makes resending produce duplicates)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.lose = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        answer = self.inner.handle_request(request)
        # Starlette's test transport hands back a stream a sync client refuses: re-wrap the bytes.
        response = httpx.Response(answer.status_code, headers=answer.headers, content=answer.read())
        if self.lose:
            self.lose -= 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def _append(spool: Spool, n: int, start: int) -> None:
    for k in range(start, start + n):
        gpus = [GpuSample(index=i, uuid=f"GPU-{i}", utilization_pct=90.0) for i in range(8)]
        spool.append(HeartbeatBody(at=T0 + timedelta(seconds=30 * k), interval_s=30, gpus=gpus))


def test_every_heartbeat_arrives_exactly_once(client, db, world, tfleet, tmp_path):
    path = tmp_path / "spool.db"
    flaky = Flaky(client._transport)

    def sender() -> Sender:
        token = world.tokens["operator"]
        return Sender("http://localhost", token, transport=flaky, retries=1, sleep=lambda _: None)

    spool = Spool(path, node="TN-1")
    _append(spool, 120, 0)
    flaky.down = True
    with sender() as s:
        report = s.flush(spool, AGENT, batch_size=50)
    assert not report.delivered and len(spool) == 120
    spool.close()  # the agent restarts while the server is down

    spool = Spool(path, node="TN-1")
    _append(spool, 80, 120)
    flaky.down, flaky.lose = False, 1
    with sender() as s:
        report = s.flush(spool, AGENT, batch_size=50)
    assert report.delivered and len(spool) == 0
    # The batch whose answer was lost was stored; sent again, it comes back as duplicates.
    assert (report.accepted, report.duplicates, report.sent) == (150, 50, 200)
    assert not report.rejected and not report.dropped
    spool.close()

    with db.transaction(actor="test") as s:
        seqs = list(s.scalars(select(Heartbeat.seq).order_by(Heartbeat.at)))
    assert len(seqs) == 200 == len(set(seqs))
    assert seqs == sorted(seqs)
