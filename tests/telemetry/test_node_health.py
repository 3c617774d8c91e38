"""A node's live state: each GPU's health since when and why, its last reading, open incidents; on the
API, the node's page, and only for those who may see the node."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from tests.telemetry.conftest import T0, batch, beat

from computelease.auth import service as auth
from computelease.auth.core import SYSTEM, Role
from computelease.telemetry import service
from computelease.telemetry.health import Health

H = timedelta(hours=1)
PASSWORD = "demo-password-123"


def test_a_gpu_with_a_pending_row_remap_is_unhealthy_since_the_beat_that_said_so(db, tfleet) -> None:
    node_id = tfleet.nodes["TN-1"]
    with db.transaction("test") as s:
        before = service.node_health(s, SYSTEM, node_id)
        assert before.last_heartbeat_at is None and {g.health for g in before.gpus} == {Health.HEALTHY}
        assert all(g.temperature_c is None for g in before.gpus)  # no reading yet, none invented
        service.ingest(
            s,
            SYSTEM,
            batch("TN-1", beat(1, T0), beat(2, T0 + H, g3={"remap_pending": True, "temperature_c": 77.0})),
        )
    with db.transaction("test") as s:
        now = service.node_health(s, SYSTEM, node_id)
    assert now.last_heartbeat_at == T0 + H and now.interval_s == 30 and not now.down
    g3 = now.gpus[3]
    assert (g3.health, g3.since, g3.remap_pending, g3.temperature_c) == (Health.UNHEALTHY, T0 + H, True, 77.0)
    assert "remap" in g3.reasons and g3.incident_id is not None
    assert [i.id for i in now.incidents] == [g3.incident_id]
    others = [g for g in now.gpus if g.index != 3]
    assert {g.health for g in others} == {Health.HEALTHY} and {g.power_w for g in others} == {600.5}
    assert [g.uuid for g in now.gpus] == [f"GPU-{i:04d}" for i in range(8)]


def test_the_api_and_the_node_page(client: TestClient, db, world, tfleet) -> None:
    node_id = tfleet.nodes["TN-1"]
    with db.transaction("test") as s:
        service.ingest(s, SYSTEM, batch("TN-1", beat(1, T0, g5={"remap_failed": True})))
    body = client.get(f"/api/v1/nodes/{node_id}/health", headers=world.headers("operator")).json()
    assert body["serial"] == "TN-1" and body["gpus"][5]["health"] == "unhealthy"
    assert body["gpus"][5]["remap_failed"] is True and len(body["incidents"]) == 1
    # A customer with nothing on the node does not see it.
    assert (
        client.get(f"/api/v1/nodes/{node_id}/health", headers=world.headers("customer_a")).status_code == 404
    )

    with db.transaction("test") as s:
        auth.create_user(s, username="op", password=PASSWORD, role=Role.operator)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "op", "password": PASSWORD, "csrf_token": token})
    html = client.get(f"/fleet/nodes/{node_id}").text
    assert 'data-gpu="5" data-health="unhealthy"' in html and 'data-gpu="0" data-health="healthy"' in html
    assert "row remap failed" in html and "600 W" in html and "61 °C" in html
    assert 'data-list="incidents"' in html
