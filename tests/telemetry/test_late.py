"""Late heartbeats are placed in time: the history they change is re-judged, intervals and incidents too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.telemetry.conftest import T0, batch, beat
from tests.telemetry.test_incidents import _intervals

from computelease.auth.core import SYSTEM
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node
from computelease.telemetry import service
from computelease.telemetry.health import Health, HealthPolicy
from computelease.telemetry.models import GpuHealthInterval, Incident, IncidentStatus

S = timedelta(seconds=30)
H, U, D = Health.HEALTHY, Health.UNHEALTHY, Health.DOWN


def _incidents(s):
    stmt = select(Incident).order_by(Incident.opened_at, Incident.id)
    return [
        (i.status, i.opened_at, i.closed_at, sorted(g.gpu_index for g in i.gpus)) for i in s.scalars(stmt)
    ]


def _ingest(s, *beats):
    return service.ingest(s, SYSTEM, batch("TN-1", *beats))


def test_late_critical_xid_opens_interval_and_incident_at_its_own_time(db, tfleet):
    with db.transaction(actor="test") as s:
        _ingest(s, beat(1, T0), beat(2, T0 + S), beat(4, T0 + 3 * S), beat(5, T0 + 4 * S))
        assert _intervals(s, 2) == [(H, T0, None)]
        # Heartbeat 3 (T0+60s) arrives last, with XID 79 on GPU 2: the GPU was unhealthy from then
        # until heartbeat 4, judged healthy again.
        result = _ingest(s, beat(3, T0 + 2 * S, g2={"xids": [79], "lost": False}))
        assert result.accepted == 1
        assert _intervals(s, 2) == [
            (H, T0, T0 + 2 * S),
            (U, T0 + 2 * S, T0 + 3 * S),
            (H, T0 + 3 * S, None),
        ]
        assert _intervals(s, 0) == [(H, T0, None)]
        (incident,) = s.scalars(select(Incident))
        assert (incident.status, incident.opened_at, incident.closed_at) == (
            IncidentStatus.closed,
            T0 + 2 * S,
            T0 + 3 * S,
        )
        assert [(g.gpu_index, g.reasons) for g in incident.gpus] == [(2, "XID 79")]
        bad = s.scalar(select(GpuHealthInterval).where(GpuHealthInterval.state == U))
        assert bad.incident_id == incident.id
        # A failure that is over does not move the node: it is in service now.
        assert s.get(Node, tfleet.nodes["TN-1"]).state == NodeState.in_service
        # Resending the late heartbeat changes nothing.
        assert _ingest(s, beat(3, T0 + 2 * S, g2={"xids": [79]})).duplicates == 1
        assert len(_intervals(s, 2)) == 3 and len(_incidents(s)) == 1


def test_late_uncorrected_error_moves_the_failure_to_its_time(db, tfleet):
    with db.transaction(actor="test") as s:
        # Heartbeat 3 is judged against heartbeat 1: one new DBE error, at T0+60s.
        _ingest(
            s,
            beat(1, T0),
            beat(3, T0 + 2 * S, g1={"ecc_dbe_aggregate": 1}),
            beat(4, T0 + 3 * S, g1={"ecc_dbe_aggregate": 1}),
        )
        assert _intervals(s, 1) == [(H, T0, T0 + 2 * S), (U, T0 + 2 * S, T0 + 3 * S), (H, T0 + 3 * S, None)]
        # Heartbeat 2 (T0+30s) arrives late and already counts the error: the error happened before it,
        # and heartbeat 3, judged against heartbeat 2 now, has nothing new.
        _ingest(s, beat(2, T0 + S, g1={"ecc_dbe_aggregate": 1}))
        assert _intervals(s, 1) == [(H, T0, T0 + S), (U, T0 + S, T0 + 2 * S), (H, T0 + 2 * S, None)]
        assert _incidents(s) == [(IncidentStatus.closed, T0 + S, T0 + 2 * S, [1])]


def test_late_heartbeat_before_all_history_is_placed_first(db, tfleet):
    with db.transaction(actor="test") as s:
        _ingest(s, beat(5, T0 + 5 * S), beat(6, T0 + 6 * S))
        _ingest(s, beat(1, T0, g4={"remap_failed": True}))
        assert _intervals(s, 4) == [(U, T0, T0 + 5 * S), (H, T0 + 5 * S, None)]
        assert _intervals(s, 0) == [(H, T0, None)]
        assert _incidents(s) == [(IncidentStatus.closed, T0, T0 + 5 * S, [4])]


def test_late_failure_joins_the_incident_it_touches(db, tfleet):
    with db.transaction(actor="test") as s:
        _ingest(
            s,
            beat(1, T0),
            beat(2, T0 + S),
            beat(4, T0 + 3 * S, g6={"remap_pending": True}),
            beat(5, T0 + 4 * S),
        )
        assert _incidents(s) == [(IncidentStatus.closed, T0 + 3 * S, T0 + 4 * S, [6])]
        _ingest(s, beat(3, T0 + 2 * S, g0={"xids": [48]}))
        # GPU 0 was unhealthy over [60s, 90s), GPU 6 over [90s, 120s): one stretch, one incident.
        assert _intervals(s, 0) == [(H, T0, T0 + 2 * S), (U, T0 + 2 * S, T0 + 3 * S), (H, T0 + 3 * S, None)]
        assert _incidents(s) == [(IncidentStatus.closed, T0 + 2 * S, T0 + 4 * S, [0, 6])]


def test_late_failure_that_is_still_current_opens_the_incident_and_faults_the_node(db, tfleet):
    with db.transaction(actor="test") as s:
        # GPU 3 goes missing in heartbeat 3 and stays missing; heartbeat 2, arriving late, already
        # misses it: the failure starts there.
        _ingest(s, beat(1, T0), beat(3, T0 + 2 * S, gpus=3))
        assert s.get(Node, tfleet.nodes["TN-1"]).state == NodeState.faulty
        (incident,) = s.scalars(select(Incident))
        assert (incident.status, incident.opened_at) == (IncidentStatus.open, T0 + 2 * S)
        _ingest(s, beat(2, T0 + S, gpus=3))
        assert _intervals(s, 5) == [(H, T0, T0 + S), (U, T0 + S, None)]
        s.refresh(incident)
        assert (incident.status, incident.opened_at, incident.closed_at) == (
            IncidentStatus.open,
            T0 + S,
            None,
        )
        assert [g.gpu_index for g in incident.gpus] == [3, 4, 5, 6, 7]


def test_late_heartbeat_does_not_undo_down_time(db, tfleet):
    policy = HealthPolicy(down_after_missed=3)
    with db.transaction(actor="test") as s:
        _ingest(s, beat(1, T0))
        assert service.sweep(s, T0 + 10 * S, policy=policy) == ["TN-1"]
        _ingest(s, beat(20, T0 + 20 * S))
        assert _intervals(s, 2) == [(H, T0, T0 + S), (D, T0 + S, T0 + 20 * S), (H, T0 + 20 * S, None)]
        # A late heartbeat inside the silence, with an XID: the XID counts up to the down time, which
        # stays as the sweep recorded it.
        _ingest(s, beat(2, T0 + S // 2, g2={"xids": [94]}))
        assert _intervals(s, 2) == [
            (H, T0, T0 + S // 2),
            (U, T0 + S // 2, T0 + S),
            (D, T0 + S, T0 + 20 * S),
            (H, T0 + 20 * S, None),
        ]
        assert _intervals(s, 3) == [(H, T0, T0 + S), (D, T0 + S, T0 + 20 * S), (H, T0 + 20 * S, None)]
        ((status, opened, closed, gpus),) = _incidents(s)
        assert (status, opened, closed) == (IncidentStatus.closed, T0 + S // 2, T0 + 20 * S)
        assert gpus == list(range(8))


def test_late_healthy_heartbeat_writes_no_interval(db, tfleet):
    with db.transaction(actor="test") as s:
        _ingest(s, beat(1, T0), beat(3, T0 + 2 * S))
        before = [(i.id, i.start_at, i.end_at) for i in s.scalars(select(GpuHealthInterval))]
        _ingest(s, beat(2, T0 + S))
        assert [(i.id, i.start_at, i.end_at) for i in s.scalars(select(GpuHealthInterval))] == before
        assert not _incidents(s)
