"""Sending: server down, agent restarted, server back — every heartbeat arrives exactly once, in order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from computelease.agent.clock import SimClock
from computelease.agent.errors import AgentError
from computelease.agent.runner import Agent
from computelease.agent.sender import INGEST_PATH, Outcome, Sender
from computelease.agent.simulated import SimulatedFleet
from computelease.agent.spool import Spool
from computelease.telemetry.schemas import AgentInfo, HeartbeatBody

START = datetime(2026, 5, 1, tzinfo=UTC)
NODE = "SIM-0001"
INFO = AgentInfo(version="test", backend="simulated", host="h")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_agent(spool_path, server, clock: SimClock, sleeps: Sleeps | None = None) -> Agent:  # type: ignore[no-untyped-def]
    """A fresh agent process: new backend, spool and sender objects over the same spool file."""
    fleet = SimulatedFleet.single(node=NODE, seed=1, clock=clock, gpus_per_node=2)
    sender = Sender(
        "http://lease.test",
        "secret",
        transport=server.transport(),
        retries=2,
        sleep=sleeps if sleeps is not None else Sleeps(),
    )
    return Agent(
        node=NODE,
        backend=fleet.backend(0),
        spool=Spool(spool_path, node=NODE),
        sender=sender,
        interval_s=30,
        batch_size=7,
        clock=clock,
    )


def stop(agent: Agent) -> None:
    agent.spool.close()
    agent.sender.close()  # type: ignore[union-attr]


def test_server_down_agent_restarted_then_server_back(tmp_path, server) -> None:
    path = tmp_path / "spool.db"
    clock = SimClock(START)
    agent = make_agent(path, server, clock)
    for _ in range(5):  # delivered normally
        agent.tick()
        clock.sleep(30)
    server.down = True
    for _ in range(20):
        report = agent.tick()
        assert report.flush is not None and report.flush.stopped is not None
        assert report.flush.stopped.outcome is Outcome.UNAVAILABLE
        clock.sleep(30)
    stop(agent)  # the agent is restarted while the server is still down

    agent = make_agent(path, server, clock)
    assert len(agent.spool) == 20
    for _ in range(10):
        agent.tick()
        clock.sleep(30)
    server.down = False
    report = agent.tick()  # one tick drains the spool in batches of 7
    assert report.flush is not None and report.flush.delivered and report.flush.pending == 0
    for _ in range(3):
        clock.sleep(30)
        agent.tick()
    stop(agent)

    seqs = server.seqs(NODE)
    assert len(seqs) == 5 + 20 + 10 + 1 + 3
    assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # once, in order
    times = [server.stored[(NODE, s)]["at"] for s in seqs]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert server.seen_auth == {"Bearer secret"}


def test_the_crash_window_is_covered_by_idempotency(tmp_path, server) -> None:
    clock = SimClock(START)
    agent = make_agent(tmp_path / "s.db", server, clock)
    agent.heartbeat()
    server.lose_answer = True  # the server commits, the answer never comes back
    report = agent.flush()
    assert report.stopped is not None and len(agent.spool) == 1
    server.lose_answer = False
    report = agent.flush()  # resent: the server already has it
    assert report.sent == 1 and report.accepted == 0 and report.duplicates == 1
    assert len(server.arrivals) == 1 and len(agent.spool) == 0
    stop(agent)


def test_rejected_heartbeats_are_logged_and_dropped_not_retried(tmp_path, server, caplog) -> None:
    clock = SimClock(START)
    agent = make_agent(tmp_path / "s.db", server, clock)
    beats = [agent.heartbeat() for _ in range(4)]
    server.reject = {beats[1].seq: "gpus.0.uuid: not a GPU of this node"}  # type: ignore[union-attr]
    report = agent.flush()
    assert report.accepted == 3 and [r.seq for r in report.rejected] == [beats[1].seq]  # type: ignore[union-attr]
    assert len(agent.spool) == 0 and "not a GPU of this node" in caplog.text
    requests = server.requests
    agent.flush()
    assert server.requests == requests  # nothing left to resend
    stop(agent)


def test_a_poison_heartbeat_is_isolated_and_dropped_alone(tmp_path, server) -> None:
    clock = SimClock(START)
    agent = make_agent(tmp_path / "s.db", server, clock)
    beats = [agent.heartbeat() for _ in range(30)]
    server.poison = {beats[17].seq}  # type: ignore[union-attr]
    report = agent.flush()
    assert [d.seq for d in report.dropped] == [beats[17].seq]  # type: ignore[union-attr]
    assert report.delivered and len(server.arrivals) == 29 and len(agent.spool) == 0
    assert server.requests < 20  # narrowed down, not one request per heartbeat
    stop(agent)


@pytest.mark.parametrize("status", [401, 403, 404, 409])
def test_refusals_keep_heartbeats_for_the_operator_to_fix(tmp_path, server, status) -> None:
    clock = SimClock(START)
    agent = make_agent(tmp_path / "s.db", server, clock)
    agent.heartbeat()
    server.status = status
    report = agent.flush()
    assert report.stopped is not None and report.stopped.outcome is Outcome.REFUSED
    assert report.stopped.detail.startswith(f"HTTP {status}") and len(agent.spool) == 1
    assert server.requests == 1  # not retried in a loop
    server.status = None
    assert agent.flush().sent == 1
    stop(agent)


def test_unavailable_server_is_retried_with_backoff_and_retry_after(tmp_path, server) -> None:
    sleeps = Sleeps()
    clock = SimClock(START)
    agent = make_agent(tmp_path / "s.db", server, clock, sleeps)
    agent.heartbeat()
    server.status, server.headers = 503, {"Retry-After": "7"}
    report = agent.flush()
    assert report.stopped is not None and report.stopped.outcome is Outcome.UNAVAILABLE
    assert server.requests == 3 and sleeps == [7.0, 7.0]
    sleeps.clear()
    server.status, server.headers = 429, {}
    agent.flush()
    # Backoff 1 s then 2 s, each with jitter in its upper half.
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0
    stop(agent)


def test_a_2xx_without_a_readable_answer_still_counts_as_taken(tmp_path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    with (
        Spool(tmp_path / "s.db", node="N1") as spool,
        Sender("https://x.test", "t", transport=transport) as sender,
    ):
        spool.append(HeartbeatBody(at=START, interval_s=30))
        report = sender.flush(spool, INFO)
        assert report.sent == 1 and len(spool) == 0


def test_request_shape(tmp_path) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"accepted": 2, "duplicates": 0, "rejected": []})

    transport = httpx.MockTransport(answer)
    with (
        Spool(tmp_path / "s.db", node="N-7", first_seq=41) as spool,
        Sender("https://lease.test/base/", "tok", transport=transport) as sender,
    ):
        for minute in range(2):
            spool.append(HeartbeatBody(at=START + timedelta(minutes=minute), interval_s=60))
        sender.flush(spool, INFO)
    request = seen[0]
    assert str(request.url) == "https://lease.test/base" + INGEST_PATH
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Content-Type"] == "application/json"
    from computelease.telemetry.schemas import HeartbeatBatch

    batch = HeartbeatBatch.model_validate_json(request.content)
    assert batch.node == "N-7" and [h.seq for h in batch.heartbeats] == [41, 42] and batch.agent == INFO


@pytest.mark.parametrize(
    ("url", "token", "message"),
    [("lease.test", "t", r"must be an http\(s\) URL"), ("https://lease.test", "", "an API token is needed")],
)
def test_bad_settings_are_one_clear_error(url, token, message) -> None:
    with pytest.raises(AgentError, match=message):
        Sender(url, token)


def test_agent_run_loop_keeps_time_and_stops(tmp_path, server) -> None:
    clock = SimClock(START)
    agent = make_agent(tmp_path / "s.db", server, clock)
    total = agent.run(stop=lambda: len(server.arrivals) >= 10)
    assert len(server.arrivals) == 10 and total.sent == 10
    times = [datetime.fromisoformat(server.stored[k]["at"]) for k in server.arrivals]
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(seconds=30)}
    stop(agent)
