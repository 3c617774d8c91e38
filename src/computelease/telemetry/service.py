"""Ingest, health intervals, incidents and maintenance windows.

Health is judged when a heartbeat is the node's newest yet: it is compared with the node's previous
heartbeat by :mod:`computelease.telemetry.health`, and each GPU's open :class:`GpuHealthInterval` is
closed and a new one opened when its state changes. A late heartbeat (older than the newest stored) is
stored and counted but does not rewrite history that later heartbeats already judged.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, func, insert, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, lazyload

from computelease import metrics
from computelease.auth.core import SYSTEM, Principal, Role
from computelease.errors import Conflict, NotFound, Unprocessable
from computelease.fleet import service as fleet
from computelease.fleet.core import HistoryInvalid, IllegalTransition, NodeState
from computelease.fleet.models import Node
from computelease.kit.time import as_utc, utcnow
from computelease.telemetry import health
from computelease.telemetry.health import Health, HealthPolicy
from computelease.telemetry.models import (
    GpuHealthInterval,
    GpuSample,
    Heartbeat,
    Incident,
    IncidentGpu,
    IncidentSource,
    IncidentStatus,
    MaintenanceWindow,
    NodeTelemetry,
)
from computelease.telemetry.schemas import Heartbeat as WireHeartbeat
from computelease.telemetry.schemas import IngestResult, describe, parse_batch

BAD = frozenset({Health.UNHEALTHY, Health.DOWN})


class BatchInvalid(Unprocessable):
    title = "Invalid heartbeat batch"


def _actor(session: Session) -> str:
    return str(session.info.get("actor", "system"))


# ------------------------------------------------------------------------------------------ ingest


def _insert(session: Session) -> Any:
    # ON CONFLICT DO NOTHING makes two concurrent resends of one batch safe: the loser sees duplicates,
    # not a unique-constraint error that would fail its whole request.
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(
        Heartbeat
    )


def ingest(
    session: Session,
    principal: Principal,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    policy: HealthPolicy | None = None,
) -> IngestResult:
    """Store a batch; see :mod:`computelease.telemetry.schemas` for the contract of the answer."""
    try:
        batch = parse_batch(payload)
    except ValidationError as exc:
        raise BatchInvalid(describe(exc)) from None
    # One writer per node at a time: health intervals are a read-modify-write of the node's history.
    # Relationships load lazily: the hot path needs only the node's id and GPUs, not its site or rack.
    node = session.scalar(
        fleet.readable_nodes(principal)
        .where(Node.serial == batch.node)
        .options(lazyload("*"))
        .with_for_update(of=Node)
    )
    if node is None:
        raise NotFound(f"no node with serial {batch.node!r} is visible to you")
    now = now or utcnow()
    if not batch.heartbeats:
        return IngestResult(accepted=0, duplicates=0, rejected=batch.rejected)
    stmt = (
        _insert(session)
        .values(
            [
                {"node_id": node.id, "seq": h.seq, "at": h.at, "received_at": now, "interval_s": h.interval_s}
                for h in batch.heartbeats
            ]
        )
        .on_conflict_do_nothing(index_elements=["node_id", "seq"])
        .returning(Heartbeat.id, Heartbeat.seq)
    )
    stored = {seq: hb_id for hb_id, seq in session.execute(stmt)}
    new = [h for h in batch.heartbeats if h.seq in stored]
    samples = [_sample_row(stored[h.seq], g) for h in new for g in h.gpus]
    if samples:
        session.execute(insert(GpuSample), samples)
    if new:
        _evaluate(session, principal, node, new, stored, policy or HealthPolicy())
    return IngestResult(
        accepted=len(new), duplicates=len(batch.heartbeats) - len(new), rejected=batch.rejected
    )


def _sample_row(heartbeat_id: int, g: Any) -> dict[str, Any]:
    return {
        "heartbeat_id": heartbeat_id,
        "gpu_index": g.index,
        "gpu_uuid": g.uuid,
        "xids": list(g.xids) or None,
        "ecc_dbe_volatile": g.ecc_dbe_volatile,
        "ecc_dbe_aggregate": g.ecc_dbe_aggregate,
        "remap_pending": g.remap_pending,
        "remap_failed": g.remap_failed,
        "lost": g.lost,
        "utilization_pct": g.utilization_pct,
        "power_w": g.power_w,
        "temperature_c": g.temperature_c,
    }


# ------------------------------------------------------------------------------------------ health


def _key(index: int) -> str:
    # GPUs are keyed by their slot in the node: the fleet may not know their UUIDs yet.
    return f"#{index}"


def _index(key: str) -> int:
    return int(key.removeprefix("#"))


def _readings_of_wire(h: WireHeartbeat) -> dict[str, health.GpuReading]:
    out = {}
    for g in h.gpus:
        reading = g.to_reading()
        if reading is not None:
            out[_key(g.index)] = dataclasses.replace(reading, gpu_id=_key(g.index))
    return out


def _readings_of_rows(session: Session, heartbeat_id: int | None) -> dict[str, health.GpuReading]:
    if heartbeat_id is None:
        return {}
    out = {}
    for s in session.scalars(select(GpuSample).where(GpuSample.heartbeat_id == heartbeat_id)):
        if s.lost and not s.xids:
            continue
        out[_key(s.gpu_index)] = health.GpuReading(
            gpu_id=_key(s.gpu_index),
            xids=tuple(s.xids or ()),
            ecc_dbe_volatile=s.ecc_dbe_volatile,
            ecc_dbe_aggregate=s.ecc_dbe_aggregate,
            remap_pending=s.remap_pending,
            remap_failed=s.remap_failed,
        )
    return out


@dataclass(frozen=True, slots=True)
class _GpuState:
    index: int
    uuid: str | None
    state: Health
    reasons: str


def _open_intervals(session: Session, node_id: int) -> dict[int, GpuHealthInterval]:
    stmt = select(GpuHealthInterval).where(
        GpuHealthInterval.node_id == node_id, GpuHealthInterval.end_at.is_(None)
    )
    return {i.gpu_index: i for i in session.scalars(stmt)}


def _apply(
    session: Session,
    principal: Principal,
    node: Node,
    states: list[_GpuState],
    at: datetime,
    opened: dict[int, GpuHealthInterval],
) -> None:
    """Moves each GPU's interval to its new state at ``at``, then opens, extends or closes the node's
    automatic incident and, on a new failure, moves an in-service node to faulty."""
    if all(s.index in opened and opened[s.index].state == s.state for s in states):
        # The steady state (nothing changed) needs no incident lookup: most heartbeats end here.
        return
    newly_bad: list[_GpuState] = []
    for s in states:
        current = opened.get(s.index)
        if current is not None and current.state == s.state:
            continue
        start = at
        if current is not None:
            # A node marked down from its first missed beat may then send a beat from before that time.
            start = max(at, current.start_at)
            current.end_at = start
        interval = GpuHealthInterval(
            node_id=node.id,
            gpu_index=s.index,
            gpu_uuid=s.uuid or (current.gpu_uuid if current is not None else None),
            state=s.state,
            reasons=s.reasons[:500],
            start_at=start,
            end_at=None,
        )
        session.add(interval)
        opened[s.index] = interval
        if s.state in BAD:
            newly_bad.append(s)
    bad_now = [opened[i] for i in sorted(opened) if opened[i].state in BAD]
    incident = session.scalar(
        select(Incident).where(
            Incident.node_id == node.id,
            Incident.source == IncidentSource.auto,
            Incident.status == IncidentStatus.open,
        )
    )
    if bad_now and newly_bad:
        if incident is None:
            incident = Incident(
                node_id=node.id,
                source=IncidentSource.auto,
                status=IncidentStatus.open,
                title=f"{node.serial}: " + "; ".join(dict.fromkeys(s.reasons for s in newly_bad))[:180],
                opened_at=min(opened[s.index].start_at for s in newly_bad),
                opened_by="telemetry",
            )
            session.add(incident)
            session.flush()
        known = {g.gpu_index for g in incident.gpus}
        for s in newly_bad:
            if s.index not in known:
                incident.gpus.append(IncidentGpu(gpu_index=s.index, gpu_uuid=s.uuid, reasons=s.reasons[:500]))
        for interval in bad_now:
            interval.incident_id = interval.incident_id or incident.id
        _mark_faulty(session, principal, node, at, incident.title)
    elif not bad_now and incident is not None:
        incident.status, incident.closed_at = IncidentStatus.closed, max(at, incident.opened_at)
    session.flush()


def _mark_faulty(session: Session, principal: Principal, node: Node, at: datetime, reason: str) -> None:
    if node.state != NodeState.in_service:
        return
    now = utcnow()
    when = min(max(at, node.state_since), now)
    # A node whose state was changed by hand meanwhile stays as it is; the incident records the failure.
    with contextlib.suppress(IllegalTransition, HistoryInvalid):
        # SYSTEM: the operator token that posts heartbeats may be narrower than the fleet's rules.
        fleet.transition(session, SYSTEM, node.id, NodeState.faulty, at=when, reason=reason[:500], now=now)


def _evaluate(
    session: Session,
    principal: Principal,
    node: Node,
    new: list[WireHeartbeat],
    ids: Mapping[int, int],
    policy: HealthPolicy,
) -> None:
    status = session.get(NodeTelemetry, node.id)
    latest = max(new, key=lambda h: (h.at, h.seq))
    if status is None:
        status = NodeTelemetry(
            node_id=node.id,
            last_heartbeat_id=None,
            last_seq=latest.seq,
            last_at=latest.at,
            interval_s=latest.interval_s,
            down=False,
        )
        session.add(status)
        previous: dict[str, health.GpuReading] | None = None
        newer = sorted(new, key=lambda h: (h.at, h.seq))
    else:
        newer = sorted((h for h in new if h.at > status.last_at), key=lambda h: (h.at, h.seq))
        previous = _readings_of_rows(session, status.last_heartbeat_id) if newer else None
    if not newer:
        return
    expected = [_key(g.index) for g in node.gpus]
    opened = _open_intervals(session, node.id)
    for h in newer:
        readings = _readings_of_wire(h)
        uuids = {g.index: g.uuid for g in h.gpus}
        judged = health.classify_node(expected, readings.values(), previous, policy=policy)
        states = [
            _GpuState(_index(g.gpu_id), uuids.get(_index(g.gpu_id)), g.state, g.summary if g.reasons else "")
            for g in judged.gpus
        ]
        _apply(session, principal, node, states, h.at, opened)
        previous = readings
    status.last_heartbeat_id, status.last_seq, status.last_at = (
        ids[newer[-1].seq],
        newer[-1].seq,
        newer[-1].at,
    )
    status.interval_s, status.down = newer[-1].interval_s, False
    session.flush()


def sweep(session: Session, now: datetime | None = None, *, policy: HealthPolicy | None = None) -> list[str]:
    """Marks down every node whose agent missed ``policy.down_after_missed`` intervals; returns their
    serials. Down starts at the first missed beat (last heartbeat + interval): that is when the node
    stopped answering, not when someone noticed."""
    policy = policy or HealthPolicy()
    now = as_utc(now or utcnow())
    downed = []
    for status in session.scalars(
        select(NodeTelemetry).where(NodeTelemetry.down.is_(False)).order_by(NodeTelemetry.node_id)
    ):
        missed = health.missed_intervals(status.last_at, now, status.interval_s)
        if missed < policy.down_after_missed:
            continue
        node = session.get(Node, status.node_id)
        assert node is not None
        down_at = status.last_at + timedelta(seconds=status.interval_s)
        opened = _open_intervals(session, node.id)
        indexes = sorted(set(opened) | {g.index for g in node.gpus})
        reason = f"no heartbeat for {missed} intervals"
        states = [
            _GpuState(i, opened[i].gpu_uuid if i in opened else None, Health.DOWN, reason) for i in indexes
        ]
        _apply(session, SYSTEM, node, states, down_at, opened)
        status.down = True
        downed.append(node.serial)
    session.flush()
    return downed


# ---------------------------------------------------------------------------------------- incidents


def _visible(principal: Principal, node_column: Any, *, fleet_wide_to_customers: bool) -> ColumnElement[bool]:
    """Staff see everything; others what concerns a node they may see. A fleet-wide maintenance window
    concerns every customer; an incident on no node may be internal, so it stays with staff."""
    if principal.is_staff:
        return true()
    on_node = node_column.in_(fleet.readable_nodes(principal).with_only_columns(Node.id))
    if principal.role == Role.customer and fleet_wide_to_customers:
        return or_(node_column.is_(None), on_node)
    return on_node


def readable_incidents(principal: Principal) -> Select[tuple[Incident]]:
    return select(Incident).where(_visible(principal, Incident.node_id, fleet_wide_to_customers=False))


def readable_maintenance(principal: Principal) -> Select[tuple[MaintenanceWindow]]:
    return select(MaintenanceWindow).where(
        _visible(principal, MaintenanceWindow.node_id, fleet_wide_to_customers=True)
    )


def readable_health_intervals(principal: Principal) -> Select[tuple[GpuHealthInterval]]:
    if principal.is_staff:
        return select(GpuHealthInterval)
    return select(GpuHealthInterval).where(
        GpuHealthInterval.node_id.in_(fleet.readable_nodes(principal).with_only_columns(Node.id))
    )


def get_incident(session: Session, principal: Principal, incident_id: int) -> Incident:
    incident = session.scalar(readable_incidents(principal).where(Incident.id == incident_id))
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist or is not visible to you")
    return incident


def _node_id(session: Session, principal: Principal, node_id: int | None) -> int | None:
    return None if node_id is None else fleet.get_node(session, principal, node_id).id


def open_incident(
    session: Session,
    principal: Principal,
    *,
    title: str,
    detail: str = "",
    node_id: int | None = None,
    gpu_indexes: Iterable[int] = (),
    opened_at: datetime | None = None,
) -> Incident:
    incident = Incident(
        node_id=_node_id(session, principal, node_id),
        source=IncidentSource.manual,
        status=IncidentStatus.open,
        title=title,
        detail=detail,
        opened_at=as_utc(opened_at or utcnow()),
        opened_by=_actor(session),
    )
    indexes = sorted(set(gpu_indexes))
    if indexes and incident.node_id is None:
        raise Unprocessable("GPUs are named by their index in a node: give node_id with gpu_indexes")
    incident.gpus = [IncidentGpu(gpu_index=i) for i in indexes]
    session.add(incident)
    session.flush()
    return incident


def close_incident(
    session: Session, principal: Principal, incident_id: int, *, at: datetime | None = None
) -> Incident:
    incident = get_incident(session, principal, incident_id)
    if incident.status == IncidentStatus.closed:
        raise Conflict(f"incident {incident_id} is already closed")
    at = as_utc(at or utcnow())
    if at < incident.opened_at:
        raise Unprocessable("an incident cannot close before it opened")
    incident.status, incident.closed_at = IncidentStatus.closed, at
    session.flush()
    return incident


def announce_maintenance(
    session: Session,
    principal: Principal,
    *,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    notice_given_at: datetime | None = None,
    node_id: int | None = None,
) -> MaintenanceWindow:
    if ends_at <= starts_at:
        raise Unprocessable("a maintenance window must end after it starts")
    window = MaintenanceWindow(
        node_id=_node_id(session, principal, node_id),
        title=title,
        starts_at=as_utc(starts_at),
        ends_at=as_utc(ends_at),
        notice_given_at=as_utc(notice_given_at or utcnow()),
    )
    session.add(window)
    session.flush()
    return window


# ------------------------------------------------------------------------------------------ metrics


@metrics.register
def _telemetry_gauges(session: Session) -> Iterable[Metric]:
    gpus = GaugeMetricFamily(
        "computelease_telemetry_gpus", "GPUs by current health state (from heartbeats)", labels=["state"]
    )
    counts = dict(
        session.execute(
            select(GpuHealthInterval.state, func.count())
            .where(GpuHealthInterval.end_at.is_(None))
            .group_by(GpuHealthInterval.state)
        ).all()
    )
    for state in Health:
        gpus.add_metric([state.value], float(counts.get(state, 0)))
    yield gpus
    incidents = GaugeMetricFamily(
        "computelease_incidents_open", "Open incidents by source", labels=["source"]
    )
    open_ = dict(
        session.execute(
            select(Incident.source, func.count())
            .where(Incident.status == IncidentStatus.open)
            .group_by(Incident.source)
        ).all()
    )
    for source in IncidentSource:
        incidents.add_metric([source.value], float(open_.get(source, 0)))
    yield incidents
