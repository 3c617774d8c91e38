"""Health intervals, automatic incidents, the down sweep, and the incident and maintenance API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.telemetry.conftest import T0, batch, beat

from computelease.auth.core import SYSTEM
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node
from computelease.telemetry import service
from computelease.telemetry.health import Health, HealthPolicy
from computelease.telemetry.models import GpuHealthInterval, Incident, IncidentStatus

URL = "/api/v1/telemetry/heartbeats"
S = timedelta(seconds=30)


def _intervals(s, gpu_index):
    stmt = (
        select(GpuHealthInterval)
        .where(GpuHealthInterval.gpu_index == gpu_index)
        .order_by(GpuHealthInterval.start_at)
    )
    return [(i.state, i.start_at, i.end_at) for i in s.scalars(stmt)]


def test_failure_opens_incident_marks_node_faulty_and_recovery_closes_it(db, tfleet):
    beats = [
        beat(1, T0),
        beat(2, T0 + S, g3={"remap_pending": True}),
        beat(3, T0 + 2 * S, g3={"remap_pending": True}, g5={"xids": [79], "lost": True}),
        beat(4, T0 + 3 * S),
    ]
    with db.transaction(actor="test") as s:
        result = service.ingest(s, SYSTEM, batch("TN-1", *beats))
        assert result.accepted == 4
        assert _intervals(s, 3) == [
            (Health.HEALTHY, T0, T0 + S),
            (Health.UNHEALTHY, T0 + S, T0 + 3 * S),
            (Health.HEALTHY, T0 + 3 * S, None),
        ]
        assert _intervals(s, 0) == [(Health.HEALTHY, T0, None)]
        (incident,) = s.scalars(select(Incident))
        assert incident.status == IncidentStatus.closed
        assert (incident.opened_at, incident.closed_at) == (T0 + S, T0 + 3 * S)
        assert [g.gpu_index for g in incident.gpus] == [3, 5]
        bad = s.scalars(select(GpuHealthInterval).where(GpuHealthInterval.state == Health.UNHEALTHY))
        assert {i.incident_id for i in bad} == {incident.id}
        node = s.get(Node, tfleet.nodes["TN-1"])
        assert node.state == NodeState.faulty


def test_unchanged_health_keeps_one_interval(db, tfleet):
    with db.transaction(actor="test") as s:
        service.ingest(s, SYSTEM, batch("TN-1", *(beat(k + 1, T0 + k * S) for k in range(10))))
        assert len(list(s.scalars(select(GpuHealthInterval)))) == 8
        assert not list(s.scalars(select(Incident)))


def test_sweep_marks_silent_node_down_and_a_heartbeat_brings_it_back(db, tfleet):
    policy = HealthPolicy(down_after_missed=3)
    with db.transaction(actor="test") as s:
        service.ingest(s, SYSTEM, batch("TN-1", beat(1, T0)))
        assert service.sweep(s, T0 + 3 * S, policy=policy) == []  # 2 missed
        assert service.sweep(s, T0 + 4 * S + timedelta(microseconds=1), policy=policy) == ["TN-1"]
        assert service.sweep(s, T0 + 10 * S, policy=policy) == []  # already down
        assert _intervals(s, 7) == [(Health.HEALTHY, T0, T0 + S), (Health.DOWN, T0 + S, None)]
        (incident,) = s.scalars(select(Incident))
        assert incident.status == IncidentStatus.open and len(incident.gpus) == 8
        service.ingest(s, SYSTEM, batch("TN-1", beat(2, T0 + 20 * S)))
        assert _intervals(s, 7)[-1] == (Health.HEALTHY, T0 + 20 * S, None)
        s.refresh(incident)
        assert incident.status == IncidentStatus.closed


def test_incident_and_maintenance_api(client, db, world, tfleet):
    node_id = tfleet.nodes["TN-1"]
    op = world.headers("operator")
    r = client.post(
        "/api/v1/incidents",
        json={"title": "PSU replaced", "node_id": node_id, "gpu_indexes": [1, 2]},
        headers=op,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["source"] == "manual" and [g["gpu_index"] for g in incident["gpus"]] == [1, 2]
    listed = client.get("/api/v1/incidents?status=open", headers=op).json()
    assert [i["id"] for i in listed["items"]] == [incident["id"]]
    closed = client.post(f"/api/v1/incidents/{incident['id']}/close", headers=op)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert client.post(f"/api/v1/incidents/{incident['id']}/close", headers=op).status_code == 409
    # Customers do not open incidents, and see none on nodes that do not serve them.
    assert (
        client.post("/api/v1/incidents", json={"title": "x"}, headers=world.headers("customer_a")).status_code
        == 403
    )
    assert client.get("/api/v1/incidents", headers=world.headers("customer_a")).json()["items"] == []
    assert (
        client.get(f"/api/v1/incidents/{incident['id']}", headers=world.headers("customer_a")).status_code
        == 404
    )

    window = {
        "title": "firmware",
        "node_id": node_id,
        "starts_at": (T0 + timedelta(days=5)).isoformat(),
        "ends_at": (T0 + timedelta(days=5, hours=2)).isoformat(),
        "notice_given_at": T0.isoformat(),
    }
    r = client.post("/api/v1/maintenance-windows", json=window, headers=op)
    assert r.status_code == 201, r.text
    assert r.json()["node_serial"] == "TN-1"
    bad = window | {"ends_at": window["starts_at"]}
    assert client.post("/api/v1/maintenance-windows", json=bad, headers=op).status_code == 422
    assert client.get("/api/v1/maintenance-windows", headers=op).json()["total"] == 1
    assert client.get("/api/v1/maintenance-windows", headers=world.headers("lessor_x")).json()["total"] == 0


def test_metrics_show_gpu_health_and_open_incidents(client, db, world, tfleet):
    with db.transaction(actor="test") as s:
        service.ingest(s, SYSTEM, batch("TN-1", beat(1, T0, g2={"remap_failed": True})))
    text = client.get("/metrics").text
    assert 'computelease_telemetry_gpus{state="unhealthy"} 1.0' in text
    assert 'computelease_telemetry_gpus{state="healthy"} 7.0' in text
    assert 'computelease_incidents_open{source="auto"} 1.0' in text
