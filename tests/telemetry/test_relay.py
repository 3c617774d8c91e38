"""Relay requests (many nodes per request), the body's fast path, and the steady-state shortcut."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.telemetry.conftest import T0, batch, beat, build

from computelease.auth import service as auth
from computelease.auth.core import Principal, Role
from computelease.telemetry import health, service
from computelease.telemetry.models import GpuHealthInterval, Heartbeat, NodeTelemetry
from computelease.telemetry.schemas import MAX_RELAY_NODES, GpuSample, parse_body

URL = "/api/v1/telemetry/heartbeats"
S = timedelta(seconds=30)


@pytest.fixture
def three(db):
    with db.transaction(actor="test") as s:
        return build(s, ("TN-1", "TN-2", "TN-3"))


def _count(db, model) -> int:
    with db.transaction(actor="test") as s:
        return s.scalar(select(func.count()).select_from(model))


def test_relay_answers_each_node_on_its_own(client, db, world, three):
    body = {
        "batches": [
            batch("TN-1", beat(1, T0), beat(2, T0 + S)),
            batch("NO-SUCH-NODE", beat(1, T0)),
            batch("TN-2", beat(1, T0), {"seq": 2, "at": "nope"}),
            {"node": "TN-3", "agent": {}, "heartbeats": [beat(1, T0)]},
            batch("TN-1", beat(3, T0 + 2 * S)),
            "not a batch",
        ]
    }
    r = client.post(URL, json=body, headers=world.headers("operator"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["accepted"], data["duplicates"]) == (3, 0)
    results = data["results"]
    assert [x["index"] for x in results] == list(range(6))
    assert [x["node"] for x in results] == ["TN-1", "NO-SUCH-NODE", "TN-2", "TN-3", "TN-1", None]
    assert results[0]["accepted"] == 2 and results[0]["error"] is None
    assert results[1]["error"]["status"] == 404 and "NO-SUCH-NODE" in results[1]["error"]["detail"]
    assert results[2]["accepted"] == 1 and [x["index"] for x in results[2]["rejected"]] == [1]
    assert results[3]["error"]["status"] == 422 and "agent" in results[3]["error"]["detail"]
    assert results[4]["error"]["status"] == 422 and "more than once" in results[4]["error"]["detail"]
    assert results[5]["error"]["status"] == 422
    assert _count(db, Heartbeat) == 3
    # Each node is judged: its GPUs have their intervals and its telemetry row.
    assert _count(db, GpuHealthInterval) == 16 and _count(db, NodeTelemetry) == 2
    # A resent relay request is all duplicates.
    again = client.post(URL, json=body, headers=world.headers("operator")).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)


def test_relay_scoping_a_node_out_of_sight_is_refused_alone(db, world, three):
    customer = Principal(role=Role.customer, actor="test", customer_id=world.customer_a.id)
    with db.transaction(actor="test") as s:
        result = service.ingest_relay(s, customer, {"batches": [batch("TN-1", beat(1, T0))]})
    assert result.accepted == 0 and result.results[0].error.status == 404
    assert _count(db, Heartbeat) == 0


def test_relay_too_large_and_bad_bodies_are_problems(client, world, three):
    headers = world.headers("operator") | {"Content-Type": "application/json"}
    many = {"batches": [batch(f"X-{i}", beat(1, T0)) for i in range(MAX_RELAY_NODES + 1)]}
    r = client.post(URL, content=json.dumps(many), headers=headers)
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    for content in (b"{not json", b'{"batches": []}', b'{"batches": 3}', b"\xff\xfe"):
        r = client.post(URL, content=content, headers=headers)
        assert r.status_code == 422, (content, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_relay_needs_staff(client, world, three):
    body = {"batches": [batch("TN-1", beat(1, T0))]}
    assert client.post(URL, json=body, headers=world.headers("customer_a")).status_code == 403
    assert client.post(URL, json=body).status_code == 401


def test_fast_and_careful_parse_agree():
    good = json.dumps(batch("TN-1", beat(1, T0), beat(2, T0 + S))).encode()
    fast = parse_body(good)
    assert fast.node == "TN-1" and [h.seq for h in fast.heartbeats] == [1, 2] and fast.rejected == []
    # Out of seq order is valid heartbeat by heartbeat: the careful path takes it.
    swapped = json.dumps(batch("TN-1", beat(2, T0 + S), beat(1, T0))).encode()
    assert [h.seq for h in parse_body(swapped).heartbeats] == [2, 1]
    relay = parse_body(
        json.dumps({"batches": [batch("TN-1", beat(1, T0)), batch("TN-2", beat(1, T0))]}).encode()
    )
    assert [b.node for b in relay] == ["TN-1", "TN-2"]


def test_revoked_token_stops_heartbeats_at_once(client, db, world, three):
    headers = world.headers("operator")
    assert client.post(URL, json=batch("TN-1", beat(1, T0)), headers=headers).status_code == 200
    with db.transaction(actor="test") as s:
        token = next(t for t in auth.list_tokens(s) if t.name == "t-operator")
        auth.revoke_token(s, token.id)
    r = client.post(URL, json=batch("TN-1", beat(2, T0 + S)), headers=headers)
    assert r.status_code == 401


# ------------------------------------------------------------------- the steady state's shortcut

counts = st.one_of(st.none(), st.integers(0, 3))
samples = st.builds(
    dict,
    index=st.integers(0, 9),
    lost=st.one_of(st.none(), st.booleans()),
    xids=st.lists(st.sampled_from([13, 31, 43, 48, 79, 94]), max_size=2, unique=True),
    remap_pending=st.one_of(st.none(), st.booleans()),
    remap_failed=st.one_of(st.none(), st.booleans()),
    ecc_dbe_volatile=counts,
    ecc_dbe_aggregate=counts,
)


@settings(max_examples=400, deadline=None)
@given(
    expected=st.sets(st.integers(0, 9), max_size=8),
    now=st.lists(samples, max_size=8, unique_by=lambda g: g["index"]),
    before=st.dictionaries(st.integers(0, 9), st.tuples(counts, counts), max_size=8),
)
def test_all_healthy_agrees_with_the_rules(expected, now, before):
    policy = health.HealthPolicy()
    wire = [GpuSample(**g) for g in now]
    readings = [r for g in wire if (r := service._reading(g.index, g)) is not None]
    previous = {
        f"#{i}": health.GpuReading(gpu_id=f"#{i}", ecc_dbe_volatile=v, ecc_dbe_aggregate=a)
        for i, (v, a) in before.items()
    }
    judged = health.classify_node([f"#{i}" for i in expected], readings, previous, policy=policy)
    every_healthy = all(g.state == health.Health.HEALTHY for g in judged.gpus)
    quick = health.all_healthy(expected, wire, before, policy=policy)
    # Never healthy where a rule applies; healthy whenever the rules say so and no GPU is lost.
    assert not quick or every_healthy
    if every_healthy and not any(g.lost for g in wire):
        assert quick
