"""POST /api/v1/telemetry/heartbeats: idempotency, order, isolation of bad heartbeats, auth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.telemetry.conftest import T0, batch, beat, every

from computelease.telemetry.models import GpuSample, Heartbeat, NodeTelemetry

URL = "/api/v1/telemetry/heartbeats"


def _post(client, world, body, who="operator"):
    return client.post(URL, json=body, headers=world.headers(who))


def _count(db, model) -> int:
    with db.transaction(actor="test") as s:
        return s.scalar(select(func.count()).select_from(model))


def test_batch_stored_and_resend_is_duplicate(client, db, world, tfleet):
    body = batch("TN-1", *every(30, n=3))
    r = _post(client, world, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    again = _post(client, world, body)
    assert again.json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert _count(db, Heartbeat) == 3
    assert _count(db, GpuSample) == 24


def test_out_of_order_and_late_heartbeats_are_placed_by_time(client, db, world, tfleet):
    later = batch("TN-1", beat(5, T0 + timedelta(minutes=5)), beat(6, T0 + timedelta(minutes=6)))
    assert _post(client, world, later).json()["accepted"] == 2
    # Older heartbeats with lower seqs arrive afterwards (an agent flushing its spool, say).
    early = batch("TN-1", beat(1, T0), beat(2, T0 + timedelta(minutes=1)))
    assert _post(client, world, early).json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    with db.transaction(actor="test") as s:
        ats = list(s.scalars(select(Heartbeat.at).order_by(Heartbeat.at)))
        status = s.get(NodeTelemetry, tfleet.nodes["TN-1"])
        assert status.last_seq == 6 and status.last_at == T0 + timedelta(minutes=6)
    assert ats == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)]


def test_bad_heartbeat_rejected_alone(client, db, world, tfleet):
    bad = beat(2, T0 + timedelta(seconds=30), g0={"temperature_c": 900.0})
    body = batch("TN-1", beat(1, T0), bad, {"seq": "x", "at": "nope"}, beat(4, T0 + timedelta(seconds=90)))
    r = _post(client, world, body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["accepted"] == 2 and data["duplicates"] == 0
    assert [(x["seq"], x["index"]) for x in data["rejected"]] == [(2, 1), (None, 2)]
    assert "temperature_c" in data["rejected"][0]["reason"]
    assert _count(db, Heartbeat) == 2


def test_unknown_node_is_404_for_the_whole_batch(client, db, world, tfleet):
    r = _post(client, world, batch("NO-SUCH-NODE", beat(1, T0)))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _count(db, Heartbeat) == 0


@pytest.mark.parametrize("body", [{"node": "TN-1"}, {"node": "TN-1", "agent": {}, "heartbeats": []}, []])
def test_malformed_envelope_is_422(client, world, tfleet, body):
    r = _post(client, world, body)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    ("who", "status"), [(None, 401), ("customer_a", 403), ("lessor_x", 403), ("admin", 200)]
)
def test_auth(client, world, tfleet, who, status):
    headers = world.headers(who) if who else {}
    r = client.post(URL, json=batch("TN-1", beat(1, T0)), headers=headers)
    assert r.status_code == status, r.text
