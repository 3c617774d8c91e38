"""Posting spooled heartbeats to the server, oldest first, until the spool is empty or the server is not.

What each answer means to the agent (the server's side is in :mod:`computelease.telemetry.schemas`):

======================================  ======================================================================
answer                                  the agent
======================================  ======================================================================
2xx                                     the batch is done: removed from the spool; heartbeats the answer
                                        lists as ``rejected`` are logged, never resent
5xx, 408, 429, timeout, no connection   retried a few times with exponential backoff and jitter (and
                                        ``Retry-After``), then kept in the spool for the next round
400, 413, 422 (the batch as sent)       split in halves until the heartbeat at fault is alone, which is
                                        logged and dropped: one poison heartbeat never blocks the rest
401, 403, 404, other 4xx                kept: a wrong token, URL or unknown node is the operator's to fix,
                                        and no heartbeat is lost meanwhile
======================================  ======================================================================
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from computelease import __version__
from computelease.agent.errors import AgentError
from computelease.agent.spool import Spool
from computelease.telemetry.schemas import (
    MAX_BATCH,
    AgentInfo,
    HeartbeatBatch,
    IngestResult,
    RejectedHeartbeat,
)

log = logging.getLogger("computelease.agent")

INGEST_PATH = "/api/v1/telemetry/heartbeats"
RETRY_STATUS = frozenset({408, 425, 429})
INVALID_STATUS = frozenset({400, 413, 422})


class Outcome(StrEnum):
    ACKED = "acked"
    INVALID = "invalid"
    REFUSED = "refused"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    status: int | None
    detail: str = ""
    result: IngestResult | None = None


@dataclass
class FlushReport:
    batches: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedHeartbeat] = field(default_factory=list)
    dropped: list[RejectedHeartbeat] = field(default_factory=list)
    pending: int = 0
    stopped: Answer | None = None

    @property
    def delivered(self) -> bool:
        return self.stopped is None

    def add(self, other: FlushReport) -> None:
        self.batches += other.batches
        self.sent += other.sent
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)
        self.dropped.extend(other.dropped)
        self.pending = other.pending
        self.stopped = other.stopped


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"][:500]
    return json.dumps(body, ensure_ascii=False)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


class Sender:
    """An HTTP client for the ingest endpoint; ``transport`` lets tests answer for the server."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AgentError(
                f"--server must be an http(s) URL such as https://lease.example.com, not {server!r}"
            )
        if not token:
            raise AgentError("an API token is needed: pass --token or set COMPUTELEASE_AGENT_TOKEN")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            log.warning(
                "sending the API token over plain http to %s: use https outside a lab", parts.hostname
            )
        self.url = server.rstrip("/") + INGEST_PATH
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = httpx.Client(
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"computelease-agent/{__version__}",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            transport=transport,
            follow_redirects=False,
        )

    def _backoff(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return min(hint, self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        # Half fixed, half random: agents that lost the server together do not come back together.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def post(self, batch: HeartbeatBatch) -> Answer:
        """One batch, retried while the server is unavailable; never raises for network trouble."""
        return self._post(batch.model_dump_json().encode())

    def _post(self, content: bytes) -> Answer:
        answer = Answer(Outcome.UNAVAILABLE, None, "not sent")
        for attempt in range(self.retries + 1):
            hint = None
            try:
                response = self._client.post(self.url, content=content)
            except httpx.HTTPError as exc:
                answer = Answer(Outcome.UNAVAILABLE, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
            else:
                answer = self._judge(response)
                hint = _retry_after(response)
            if answer.outcome is not Outcome.UNAVAILABLE:
                return answer
            if attempt < self.retries:
                delay = self._backoff(attempt, hint)
                log.info("server unavailable (%s); retrying in %.1f s", answer.detail, delay)
                self._sleep(delay)
        return answer

    @staticmethod
    def _judge(response: httpx.Response) -> Answer:
        status = response.status_code
        if 200 <= status < 300:
            try:
                result = IngestResult.model_validate_json(response.content)
            except ValidationError:
                # The server took the batch (2xx); an answer we cannot read does not make it untaken.
                log.warning(
                    "server answered %d without a readable result; counting the batch as taken", status
                )
                result = None
            return Answer(Outcome.ACKED, status, "", result)
        if status >= 500 or status in RETRY_STATUS:
            return Answer(Outcome.UNAVAILABLE, status, f"HTTP {status}: {_detail(response)}")
        if status in INVALID_STATUS:
            return Answer(Outcome.INVALID, status, f"HTTP {status}: {_detail(response)}")
        return Answer(Outcome.REFUSED, status, f"HTTP {status}: {_detail(response)}")

    def flush(self, spool: Spool, agent: AgentInfo, *, batch_size: int = 100) -> FlushReport:
        """Send everything spooled, oldest first; stop at the first batch the server cannot take now."""
        batch_size = max(1, min(batch_size, MAX_BATCH))
        report = FlushReport()
        size = batch_size
        # While a refused batch is narrowed down, batches stay small until its last heartbeat is past.
        narrowing_until: int | None = None
        # The spool's JSON is what Heartbeat.model_dump_json wrote: sent as is, not parsed and rebuilt.
        envelope = f'{{"node":{json.dumps(spool.node)},"agent":{agent.model_dump_json()},"heartbeats":['
        while rows := spool.pending_json(size):
            answer = self._post((envelope + ",".join(body for _, body in rows) + "]}").encode())
            report.batches += 1
            seqs = [seq for seq, _ in rows]
            if answer.outcome is Outcome.ACKED:
                spool.ack(seqs)
                report.sent += len(seqs)
                if answer.result is not None:
                    self._count(report, answer.result, len(seqs))
            elif answer.outcome is Outcome.INVALID and len(rows) > 1:
                if narrowing_until is None:
                    narrowing_until = seqs[-1]
                size = len(rows) // 2
                continue
            elif answer.outcome is Outcome.INVALID:
                spool.ack(seqs)
                dropped = RejectedHeartbeat(seq=seqs[0], index=0, reason=answer.detail or "invalid")
                report.dropped.append(dropped)
                log.error("heartbeat %d refused by the server and dropped: %s", seqs[0], answer.detail)
            else:
                report.stopped = answer
                log.info("heartbeats kept in the spool (%d): %s", len(spool), answer.detail)
                break
            if narrowing_until is not None and seqs[-1] >= narrowing_until:
                narrowing_until, size = None, batch_size
        report.pending = len(spool)
        return report

    @staticmethod
    def _count(report: FlushReport, result: IngestResult, sent: int) -> None:
        report.accepted += result.accepted
        report.duplicates += result.duplicates
        report.rejected.extend(result.rejected)
        for rejected in result.rejected:
            log.warning("heartbeat %s rejected by the server: %s", rejected.seq, rejected.reason)
        answered = result.accepted + result.duplicates + len(result.rejected)
        if answered != sent:
            log.warning("the server answered for %d heartbeats of %d sent", answered, sent)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
