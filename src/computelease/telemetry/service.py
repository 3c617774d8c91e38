"""Ingest, health intervals, incidents and maintenance windows.

**Ingest.** A request carries one node's batch or, from a site relay, many nodes' batches (see
:mod:`computelease.telemetry.schemas`); each node batch is stored and judged the same way, all in the
request's one transaction, with a fixed number of set-wise statements per request, never per heartbeat:

1. the nodes are looked up by serial among those the caller may see, and locked in serial order
   (``FOR UPDATE`` on PostgreSQL; on SQLite the heartbeat insert that follows takes the database's
   write lock), so that two requests for one node judge its history one after the other;
2. heartbeats go in with one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (a resent
   ``(node, seq)`` is a duplicate, not an error), their GPU samples with one ``executemany``;
3. health is judged from compact rows: each node's :class:`NodeTelemetry`, its GPU slots, the samples of
   its newest heartbeat and the state of each GPU's open :class:`GpuHealthInterval`, compared in Python.
   A heartbeat that leaves every GPU in its state (nearly all of them) only moves ``NodeTelemetry`` on;
   interval and incident rows are loaded and written only for a node whose state changes.

**Health.** A heartbeat newer than the node's newest is judged against that newest one by
:mod:`computelease.telemetry.health`; each GPU's open interval is closed and a new one opened when its
state changes, and the node's automatic incident opens, gains GPUs and closes with them; a new failure
moves an in-service node to faulty.

**Late heartbeats** (older than the node's newest: a spool flushed out of order, two relays racing) are
placed in time. Every rule compares a heartbeat only with the one before it, so inserting one changes
the judgement of exactly two heartbeats: itself (against its predecessor by time) and its successor (now
judged against it). The node's history is therefore re-judged over ``[late.at, successor's
successor.at)`` (open-ended when the successor is the newest) and nowhere else: each GPU's intervals
there are repainted with the new states, except time the sweep recorded as **down**, which a heartbeat
placed late does not undo. The node's automatic incidents are then made to match its unhealthy time
around that window again: a failure revealed late opens (closed, when it is over) or extends an incident
at its own time, with its GPUs; an incident left with no unhealthy time is closed at its opening as
withdrawn; a late failure that is still current moves the node to faulty as a fresh one would.

**Down.** :func:`sweep` marks down every node whose agent missed ``policy.down_after_missed`` intervals,
from the first missed beat.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, any_, bindparam, event, func, or_, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, lazyload

from computelease import metrics
from computelease.auth.core import SYSTEM, Principal, Role
from computelease.errors import AppError, Conflict, NotFound, Unprocessable
from computelease.fleet import service as fleet
from computelease.fleet.core import HistoryInvalid, IllegalTransition, NodeState
from computelease.fleet.models import Gpu, Node
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
from computelease.telemetry.schemas import (
    IngestResult,
    NodeProblem,
    NodeResult,
    ParsedBatch,
    RelayResult,
    RelayTooLarge,
    describe,
    parse_batch,
    parse_body,
    parse_relay,
)

try:
    import fcntl
except ImportError:  # not on Windows: there a thread lock serves one worker process
    fcntl = None  # type: ignore[assignment]

BAD = frozenset({Health.UNHEALTHY, Health.DOWN})
IN_LIST = 500  # values per IN (...) list and rows per multi-row INSERT
WITHDRAWN = "withdrawn: a heartbeat placed late re-judged this time as healthy"

T = TypeVar("T")


class BatchInvalid(Unprocessable):
    title = "Invalid heartbeat batch"


class RequestTooLarge(AppError):
    status = 413
    title = "Request too large"


def _actor(session: Session) -> str:
    return str(session.info.get("actor", "system"))


def _chunks(values: Sequence[T], size: int = IN_LIST) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# ------------------------------------------------------------------------------------------ ingest


@contextlib.contextmanager
def _refusing_bad_input() -> Iterator[None]:
    """The parsers' refusals as the API answers them: 422 naming the bad field, 413 past a relay's limits."""
    try:
        yield
    except ValidationError as exc:
        raise BatchInvalid(describe(exc)) from None
    except RelayTooLarge as exc:
        raise RequestTooLarge(str(exc)) from None
    except ValueError as exc:  # json.loads or the bytes' encoding: only parse_body reads raw bytes
        raise BatchInvalid(f"the body is not valid JSON: {exc}") from None


def ingest(
    session: Session,
    principal: Principal,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    policy: HealthPolicy | None = None,
) -> IngestResult:
    """Store one node's batch; see :mod:`computelease.telemetry.schemas` for the contract of the answer."""
    with _refusing_bad_input():
        batch = parse_batch(payload)
    return _single(session, principal, batch, now, policy)


def ingest_relay(
    session: Session,
    principal: Principal,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    policy: HealthPolicy | None = None,
) -> RelayResult:
    """Store a relay request's node batches, each answered on its own (see schemas)."""
    with _refusing_bad_input():
        parsed = parse_relay(payload)
    return _relay(session, principal, parsed, now, policy)


def ingest_body(
    session: Session,
    principal: Principal,
    body: bytes,
    *,
    now: datetime | None = None,
    policy: HealthPolicy | None = None,
) -> IngestResult | RelayResult:
    """Store a request body as sent: one node's batch or a relay request."""
    with _refusing_bad_input():
        parsed = parse_body(body)
    if isinstance(parsed, ParsedBatch):
        return _single(session, principal, parsed, now, policy)
    return _relay(session, principal, parsed, now, policy)


def _single(
    session: Session,
    principal: Principal,
    batch: ParsedBatch,
    now: datetime | None,
    policy: HealthPolicy | None,
) -> IngestResult:
    (outcome,) = _store(session, principal, [batch], now=now, policy=policy)
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


def _relay(
    session: Session,
    principal: Principal,
    parsed: list[ParsedBatch | NodeResult],
    now: datetime | None,
    policy: HealthPolicy | None,
) -> RelayResult:
    batches = [p for p in parsed if isinstance(p, ParsedBatch)]
    outcomes = iter(_store(session, principal, batches, now=now, policy=policy))
    results: list[NodeResult] = []
    for index, item in enumerate(parsed):
        if isinstance(item, NodeResult):
            results.append(item)
            continue
        outcome = next(outcomes)
        if isinstance(outcome, AppError):
            title = outcome.title or HTTPStatus(outcome.status).phrase
            error = NodeProblem(status=outcome.status, title=title, detail=outcome.detail)
            results.append(NodeResult(index=index, node=item.node, error=error))
        else:
            results.append(
                NodeResult.model_construct(
                    index=index,
                    node=item.node,
                    accepted=outcome.accepted,
                    duplicates=outcome.duplicates,
                    rejected=outcome.rejected,
                    error=None,
                )
            )
    return RelayResult(
        accepted=sum(r.accepted for r in results),
        duplicates=sum(r.duplicates for r in results),
        results=results,
    )


def _insert(session: Session, table: Any) -> Any:
    # ON CONFLICT DO NOTHING makes two concurrent resends of one batch safe: the loser sees duplicates,
    # not a unique-constraint error that would fail its whole request.
    return (postgresql.insert if _is_pg(session) else sqlite.insert)(table)


# SQLite has one writer at a time, and a writer that finds the database locked polls it with sleeps of
# up to 25 ms (its busy handler): under many concurrent requests most of the time goes to sleeping.
# Ingest writers on one SQLite file therefore take turns through a lock of their own instead: an flock
# on "<database>.ingest-lock", one open file per thread, so that the threads of every worker process
# queue for it alike and a waiting writer wakes as soon as it is free (a thread lock where there is no
# file or no flock). It is taken before ingest's first statement and released when the request's
# transaction ends (commit or rollback). Other writers are unaffected and still meet SQLite's own lock.
WRITER_WAIT_S = 30.0
_writer_guard = threading.Lock()
_writer_locks: dict[str, threading.Lock] = {}
_writer_files = threading.local()


class IngestBusy(AppError):
    status = 503
    title = "Heartbeat ingest is busy"


def _lock_file(path: str) -> int | None:
    if fcntl is None or not path or path == ":memory:" or path.startswith("file:"):
        return None
    files = _writer_files.__dict__.setdefault("fds", {})
    if path not in files:
        files[path] = os.open(f"{path}.ingest-lock", os.O_RDWR | os.O_CREAT, 0o600)
    return files[path]


def _sqlite_writer(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or session.info.get("telemetry_writer"):
        return
    path = bind.url.database or ""
    fd = _lock_file(path)
    lock: threading.Lock | None = None
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        with _writer_guard:
            lock = _writer_locks.setdefault(path, threading.Lock())
        if not lock.acquire(timeout=WRITER_WAIT_S):
            raise IngestBusy("heartbeat ingest is busy; retry shortly", headers={"Retry-After": "5"})
    session.info["telemetry_writer"] = True
    held = [True]

    def release(_session: Session, transaction: Any) -> None:
        if transaction.parent is not None or not held[0]:
            return
        held[0] = False
        session.info.pop("telemetry_writer", None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if lock is not None:
            lock.release()

    event.listen(session, "after_transaction_end", release)


def _store(
    session: Session,
    principal: Principal,
    batches: list[ParsedBatch],
    *,
    now: datetime | None,
    policy: HealthPolicy | None,
) -> list[IngestResult | AppError]:
    """Stores node batches (one per node) and judges them; answers each in order, a node the caller
    cannot see with its error instead of raising it."""
    now = now or utcnow()
    policy = policy or HealthPolicy()
    # With its connection (waiting for the pool while holding the lock could deadlock) and before any
    # statement (the autoflush of the first one may already write: a token's last use, say).
    session.connection()
    _sqlite_writer(session)
    # Locked in serial order, so that two relay requests naming the same nodes cannot deadlock.
    serials = sorted({b.node for b in batches})
    node_ids: dict[str, int] = {}
    for chunk in _chunks(serials):
        stmt = (
            fleet.readable_nodes(principal)
            .with_only_columns(Node.id, Node.serial)
            .where(_member(Node.serial, _is_pg(session)))
            .order_by(Node.serial)
            .with_for_update(of=Node)
        )
        node_ids.update({serial: node_id for node_id, serial in session.execute(stmt, {"ids": list(chunk)})})
    outcomes: list[IngestResult | AppError | None] = [None] * len(batches)
    rows = []
    for k, b in enumerate(batches):
        node_id = node_ids.get(b.node)
        if node_id is None:
            outcomes[k] = NotFound(f"no node with serial {b.node!r} is visible to you")
            continue
        rows.extend(
            {"node_id": node_id, "seq": h.seq, "at": h.at, "received_at": now, "interval_s": h.interval_s}
            for h in b.heartbeats
        )
    stored = _insert_heartbeats(session, rows)
    new_by_node: dict[int, list[WireHeartbeat]] = {}
    samples: list[dict[str, Any]] = []
    for k, b in enumerate(batches):
        if outcomes[k] is not None:
            continue
        node_id = node_ids[b.node]
        new = [h for h in b.heartbeats if (node_id, h.seq) in stored]
        outcomes[k] = IngestResult.model_construct(
            accepted=len(new), duplicates=len(b.heartbeats) - len(new), rejected=b.rejected
        )
        if new:
            new_by_node.setdefault(node_id, []).extend(new)
            samples.extend(_sample_row(stored[node_id, h.seq], g) for h in new for g in h.gpus)
    _insert_samples(session, samples)
    if new_by_node:
        _judge(session, principal, new_by_node, stored, policy)
    return [o for o in outcomes if o is not None]


def _insert_heartbeats(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """Inserts what is not stored yet; returns ``(node_id, seq) → id`` of the rows inserted now."""
    if not rows:
        return {}
    if _is_pg(session):
        # One statement of five arrays, whatever the number of rows: its text never changes, so the
        # driver does not re-parse a statement of thousands of placeholders on every request.
        params = {
            name: [r[name] for r in rows] for name in ("node_id", "seq", "at", "received_at", "interval_s")
        }
        return {(node_id, seq): hb_id for hb_id, node_id, seq in session.execute(_PG_HEARTBEATS, params)}
    table = Heartbeat.__table__
    # executemany with RETURNING: SQLAlchemy sends it as batched multi-row INSERTs from one cached
    # compilation ("insertmanyvalues").
    stmt = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=["node_id", "seq"])
        .returning(table.c.id, table.c.node_id, table.c.seq)
    )
    return {(node_id, seq): hb_id for hb_id, node_id, seq in session.execute(stmt, rows)}


_PG_HEARTBEATS = text(
    "INSERT INTO heartbeat (node_id, seq, at, received_at, interval_s) "
    "SELECT * FROM unnest(CAST(:node_id AS bigint[]), CAST(:seq AS bigint[]), CAST(:at AS timestamptz[]), "
    "CAST(:received_at AS timestamptz[]), CAST(:interval_s AS integer[])) "
    "ON CONFLICT (node_id, seq) DO NOTHING RETURNING id, node_id, seq"
)
_SAMPLE_COLUMNS = (
    "heartbeat_id",
    "gpu_index",
    "gpu_uuid",
    "xids",
    "ecc_dbe_volatile",
    "ecc_dbe_aggregate",
    "remap_pending",
    "remap_failed",
    "lost",
    "utilization_pct",
    "power_w",
    "temperature_c",
)


def _insert_samples(session: Session, samples: list[dict[str, Any]]) -> None:
    if not samples:
        return
    if not _is_pg(session):
        session.execute(GpuSample.__table__.insert(), samples)  # sqlite3's executemany is a C loop
        return
    # PostgreSQL: COPY, the server's bulk path (an executemany is a statement per row; a multi-row
    # INSERT of thousands of placeholders costs the driver more to prepare than to send).
    session.flush()
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY gpu_sample ({', '.join(_SAMPLE_COLUMNS)}) FROM STDIN") as copy:
            for row in samples:
                values = [row[c] for c in _SAMPLE_COLUMNS]
                if values[3] is not None:
                    values[3] = json.dumps(values[3])  # the xids column is JSON
                copy.write_row(values)
    finally:
        cursor.close()


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


def _order(h: WireHeartbeat) -> tuple[datetime, int]:
    return h.at, h.seq


def _reading(index: int, s: Any) -> health.GpuReading | None:
    """What health judges of a wire or stored sample; a lost GPU without XIDs is missing (None)."""
    if s.lost and not s.xids:
        return None
    key = _key(index)
    return health.GpuReading(
        gpu_id=key,
        xids=tuple(s.xids or ()),
        ecc_dbe_volatile=s.ecc_dbe_volatile,
        ecc_dbe_aggregate=s.ecc_dbe_aggregate,
        remap_pending=s.remap_pending,
        remap_failed=s.remap_failed,
    )


def _readings_of_wire(h: WireHeartbeat) -> dict[str, health.GpuReading]:
    out = {}
    for g in h.gpus:
        reading = _reading(g.index, g)
        if reading is not None:
            out[reading.gpu_id] = reading
    return out


@dataclass(frozen=True, slots=True)
class _Stored:
    readings: dict[str, health.GpuReading]
    uuids: dict[int, str | None]


def _stored_readings(session: Session, heartbeat_ids: Iterable[int]) -> dict[int, _Stored]:
    """The readings of stored heartbeats, by heartbeat id (one with no GPUs has none)."""
    ids = sorted(set(heartbeat_ids))
    out = {i: _Stored({}, {}) for i in ids}
    t = GpuSample.__table__
    columns = (
        t.c.heartbeat_id,
        t.c.gpu_index,
        t.c.gpu_uuid,
        t.c.xids,
        t.c.ecc_dbe_volatile,
        t.c.ecc_dbe_aggregate,
        t.c.remap_pending,
        t.c.remap_failed,
        t.c.lost,
    )
    for chunk in _chunks(ids):
        for row in session.execute(select(*columns).where(t.c.heartbeat_id.in_(chunk))):
            stored = out[row.heartbeat_id]
            stored.uuids[row.gpu_index] = row.gpu_uuid
            reading = _reading(row.gpu_index, row)
            if reading is not None:
                stored.readings[reading.gpu_id] = reading
    return out


@dataclass(frozen=True, slots=True)
class _GpuState:
    index: int
    uuid: str | None
    state: Health
    reasons: str


def _states(judged: health.NodeHealth, uuids: Mapping[int, str | None]) -> list[_GpuState]:
    return [
        _GpuState(_index(g.gpu_id), uuids.get(_index(g.gpu_id)), g.state, g.summary if g.reasons else "")
        for g in judged.gpus
    ]


def _open_intervals(session: Session, node_id: int) -> dict[int, GpuHealthInterval]:
    stmt = select(GpuHealthInterval).where(
        GpuHealthInterval.node_id == node_id, GpuHealthInterval.end_at.is_(None)
    )
    return {i.gpu_index: i for i in session.scalars(stmt)}


def _member(column: Any, pg: bool) -> ColumnElement[bool]:
    """``column IN (:ids)``: on PostgreSQL as ``= ANY(:ids)`` with one array, so that the statement's
    text is the same for any number of ids (the driver caches it); elsewhere an expanding IN list."""
    if pg:
        return column == any_(bindparam("ids", type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam("ids", expanding=True))


_STATUS_T, _GPU_T, _INTERVAL_T, _SAMPLE_T = (
    NodeTelemetry.__table__,
    Gpu.__table__,
    GpuHealthInterval.__table__,
    GpuSample.__table__,
)


def _reads(pg: bool) -> dict[str, Any]:
    """The hot path's reads, built once per kind of database; each for many nodes or heartbeats."""
    status, gpu, interval, sample = _STATUS_T.c, _GPU_T.c, _INTERVAL_T.c, _SAMPLE_T.c
    return {
        "status": select(status.node_id, status.last_heartbeat_id, status.last_at).where(
            _member(status.node_id, pg)
        ),
        "slots": select(gpu.node_id, gpu.index)
        .where(_member(gpu.node_id, pg))
        .order_by(gpu.node_id, gpu.index),
        "open_states": select(interval.node_id, interval.gpu_index, interval.state).where(
            _member(interval.node_id, pg), interval.end_at.is_(None)
        ),
        "counters": select(
            sample.heartbeat_id,
            sample.gpu_index,
            sample.ecc_dbe_volatile,
            sample.ecc_dbe_aggregate,
            sample.lost,
            sample.xids,
        ).where(_member(sample.heartbeat_id, pg)),
    }


_READS = {True: _reads(True), False: _reads(False)}


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_STATUS_UPDATE = (
    _STATUS_T.update()
    .where(_STATUS_T.c.node_id == bindparam("b_node_id"))
    .values(
        last_heartbeat_id=bindparam("b_last_heartbeat_id"),
        last_seq=bindparam("b_last_seq"),
        last_at=bindparam("b_last_at", type_=_STATUS_T.c.last_at.type),
        interval_s=bindparam("b_interval_s"),
        down=False,
    )
)

_PG_STATUS_UPDATE = text(
    "UPDATE node_telemetry AS t SET last_heartbeat_id = v.hb, last_seq = v.seq, last_at = v.at, "
    "interval_s = v.iv, down = false FROM unnest(CAST(:node_id AS integer[]), "
    "CAST(:last_heartbeat_id AS bigint[]), CAST(:last_seq AS bigint[]), CAST(:last_at AS timestamptz[]), "
    "CAST(:interval_s AS integer[])) AS v(node_id, hb, seq, at, iv) WHERE t.node_id = v.node_id"
)

# A GPU's previous (ecc_dbe_volatile, ecc_dbe_aggregate): all that the rules read of the previous beat.
Counters = dict[int, tuple[int | None, int | None]]


def _rows(session: Session, read: str, ids: Sequence[int]) -> Iterator[Any]:
    stmt = _READS[_is_pg(session)][read]
    for chunk in _chunks(ids):
        yield from session.execute(stmt, {"ids": list(chunk)}).all()


def _has_reading(lost: bool, xids: Any) -> bool:
    # A lost GPU without XIDs has no reading (health.GpuReading), so no counters to compare with.
    return not (lost and not xids)


def _counters(samples: Iterable[Any]) -> Counters:
    return {
        g.index: (g.ecc_dbe_volatile, g.ecc_dbe_aggregate) for g in samples if _has_reading(g.lost, g.xids)
    }


def _judge(
    session: Session,
    principal: Principal,
    new_by_node: Mapping[int, list[WireHeartbeat]],
    ids: Mapping[tuple[int, int], int],
    policy: HealthPolicy,
) -> None:
    node_ids = sorted(new_by_node)
    status = {r.node_id: r for r in _rows(session, "status", node_ids)}
    slots: dict[int, list[int]] = defaultdict(list)
    for node_id, index in _rows(session, "slots", node_ids):
        slots[node_id].append(index)
    newer: dict[int, list[WireHeartbeat]] = {}
    late: dict[int, list[WireHeartbeat]] = {}
    for node_id in node_ids:
        row = status.get(node_id)
        for h in sorted(new_by_node[node_id], key=_order):
            (newer if row is None or h.at > row.last_at else late).setdefault(node_id, []).append(h)
    last_ids = sorted(r.last_heartbeat_id for n, r in status.items() if n in newer and r.last_heartbeat_id)
    previous: dict[int, Counters] = defaultdict(dict)
    for hb_id, index, volatile, aggregate, lost, xids in _rows(session, "counters", last_ids):
        if _has_reading(lost, xids):
            previous[hb_id][index] = (volatile, aggregate)
    current: dict[int, dict[int, Health]] = defaultdict(dict)
    for node_id, index, state in _rows(session, "open_states", sorted(newer)):
        current[node_id][index] = Health(state)
    updates, inserts = [], []
    for node_id, beats in newer.items():
        row = status.get(node_id)
        before = previous[row.last_heartbeat_id] if row is not None and row.last_heartbeat_id else None
        _forward(session, principal, node_id, slots[node_id], beats, before, current[node_id], policy)
        last = beats[-1]
        values = {
            "b_node_id": node_id,
            "b_last_heartbeat_id": ids[node_id, last.seq],
            "b_last_seq": last.seq,
            "b_last_at": last.at,
            "b_interval_s": last.interval_s,
        }
        (updates if row is not None else inserts).append(values)
    if updates and _is_pg(session):
        # One statement over arrays rather than a statement per node.
        session.execute(
            _PG_STATUS_UPDATE,
            {
                name: [u[f"b_{name}"] for u in updates]
                for name in ("node_id", "last_heartbeat_id", "last_seq", "last_at", "interval_s")
            },
        )
    elif updates:
        session.execute(_STATUS_UPDATE, updates)
    if inserts:
        session.execute(
            _STATUS_T.insert(),
            [
                {
                    "node_id": v["b_node_id"],
                    "last_heartbeat_id": v["b_last_heartbeat_id"],
                    "last_seq": v["b_last_seq"],
                    "last_at": v["b_last_at"],
                    "interval_s": v["b_interval_s"],
                    "down": False,
                }
                for v in inserts
            ],
        )
    for node_id, beats in late.items():
        for h in beats:
            _rejudge(session, principal, node_id, h, policy)


def _forward(
    session: Session,
    principal: Principal,
    node_id: int,
    slots: list[int],
    beats: list[WireHeartbeat],
    previous: Counters | None,
    current: Mapping[int, Health],
    policy: HealthPolicy,
) -> None:
    """Judges a node's heartbeats newer than its newest, in time order. ``current`` is each GPU's open
    state, ``previous`` the counters of the node's newest heartbeat (None: it has none yet). ORM rows are
    loaded only once a state changes."""
    expected = [_key(i) for i in slots]
    opened: dict[int, GpuHealthInterval] | None = None
    node: Node | None = None
    for h in beats:
        if (
            opened is None
            and health.all_healthy(slots, h.gpus, previous or {}, policy=policy)
            and all(current.get(i) == Health.HEALTHY for i in slots)
            and all(current.get(g.index) == Health.HEALTHY for g in h.gpus)
        ):
            previous = _counters(h.gpus)
            continue  # the steady state: nothing to write but NodeTelemetry
        readings = _readings_of_wire(h)
        before = None
        if previous is not None:
            before = {
                _key(i): health.GpuReading(gpu_id=_key(i), ecc_dbe_volatile=v, ecc_dbe_aggregate=a)
                for i, (v, a) in previous.items()
            }
        judged = health.classify_node(expected, readings.values(), before, policy=policy)
        previous = _counters(h.gpus)
        states = _states(judged, {g.index: g.uuid for g in h.gpus})
        if opened is None:
            if all(current.get(s.index) == s.state for s in states):
                continue
            opened = _open_intervals(session, node_id)
            node = session.get(Node, node_id, options=[lazyload("*")])
        assert node is not None
        _apply(session, principal, node, states, h.at, opened)


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
                title=_title(node, newly_bad),
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


def _title(node: Node, bad: Iterable[Any]) -> str:
    return f"{node.serial}: " + "; ".join(dict.fromkeys(s.reasons for s in bad))[:180]


def _mark_faulty(session: Session, principal: Principal, node: Node, at: datetime, reason: str) -> None:
    if node.state != NodeState.in_service:
        return
    now = utcnow()
    when = min(max(at, node.state_since), now)
    # A node whose state was changed by hand meanwhile stays as it is; the incident records the failure.
    with contextlib.suppress(IllegalTransition, HistoryInvalid):
        # SYSTEM: the operator token that posts heartbeats may be narrower than the fleet's rules.
        fleet.transition(session, SYSTEM, node.id, NodeState.faulty, at=when, reason=reason[:500], now=now)


# ------------------------------------------------------------------------------------ late heartbeats


def _rejudge(
    session: Session, principal: Principal, node_id: int, late: WireHeartbeat, policy: HealthPolicy
) -> None:
    """Places a heartbeat older than the node's newest in time (see the module's docstring)."""
    hb = Heartbeat
    before = or_(hb.at < late.at, and_(hb.at == late.at, hb.seq < late.seq))
    after = or_(hb.at > late.at, and_(hb.at == late.at, hb.seq > late.seq))
    prev_id = session.scalar(
        select(hb.id).where(hb.node_id == node_id, before).order_by(hb.at.desc(), hb.seq.desc()).limit(1)
    )
    nexts = session.execute(
        select(hb.id, hb.at).where(hb.node_id == node_id, after).order_by(hb.at, hb.seq).limit(2)
    ).all()
    stored = _stored_readings(session, [i for i in (prev_id, nexts[0].id if nexts else None) if i])
    expected = [_key(i) for i in session.scalars(select(Gpu.index).where(Gpu.node_id == node_id))]
    mine = _readings_of_wire(late)
    judged = health.classify_node(
        expected, mine.values(), stored[prev_id].readings if prev_id else None, policy=policy
    )
    # (start, end, states): the late heartbeat's own time, then its successor's, now judged against it.
    windows = [
        (late.at, nexts[0].at if nexts else None, _states(judged, {g.index: g.uuid for g in late.gpus}))
    ]
    if nexts:
        successor = stored[nexts[0].id]
        judged = health.classify_node(expected, successor.readings.values(), mine, policy=policy)
        windows.append(
            (nexts[0].at, nexts[1].at if len(nexts) > 1 else None, _states(judged, successor.uuids))
        )
    changed = False
    for start, end, states in windows:
        if end is not None and end <= start:
            continue
        for s in states:
            changed = _paint(session, node_id, s, start, end) or changed
    if changed:
        session.flush()
        _reconcile_incidents(session, principal, node_id, late.at, windows[-1][1])


@dataclass(slots=True)
class _Piece:
    start: datetime
    end: datetime | None  # None: open
    state: Health
    reasons: str
    uuid: str | None


def _before(a: datetime | None, b: datetime | None) -> bool:
    """a < b, where None is the open end (later than any time)."""
    if a is None:
        return False
    return b is None or a < b


def _paint(session: Session, node_id: int, s: _GpuState, start: datetime, end: datetime | None) -> bool:
    """Gives GPU ``s.index`` the state ``s.state`` over ``[start, end)``, except where it was down;
    merges neighbours of one state. Returns whether any interval changed."""
    iv = GpuHealthInterval
    stmt = select(iv).where(
        iv.node_id == node_id, iv.gpu_index == s.index, or_(iv.end_at.is_(None), iv.end_at >= start)
    )
    if end is not None:
        stmt = stmt.where(iv.start_at <= end)
    olds = list(session.scalars(stmt.order_by(iv.start_at, iv.id)))
    pieces: list[_Piece] = []
    downs: list[tuple[datetime, datetime | None]] = []
    for old in olds:
        uuid = old.gpu_uuid
        if old.start_at < start:
            pieces.append(
                _Piece(
                    old.start_at,
                    min(old.end_at, start) if old.end_at else start,
                    old.state,
                    old.reasons,
                    uuid,
                )
            )
        if end is not None and _before(end, old.end_at):
            pieces.append(_Piece(max(old.start_at, end), old.end_at, old.state, old.reasons, uuid))
        lo, hi = (
            max(old.start_at, start),
            old.end_at if end is None else (end if old.end_at is None else min(old.end_at, end)),
        )
        if old.state == Health.DOWN and _before(lo, hi):
            # Down is the sweep's record of silence: a heartbeat placed late does not undo it.
            pieces.append(_Piece(lo, hi, old.state, old.reasons, uuid))
            downs.append((lo, hi))
    uuid = s.uuid or next((o.gpu_uuid for o in olds if o.gpu_uuid), None)
    cursor: datetime | None = start
    for lo, hi in sorted(downs, key=lambda d: d[0]):
        if cursor is not None and cursor < lo:
            pieces.append(_Piece(cursor, lo, s.state, s.reasons[:500], uuid))
        cursor = hi if cursor is None or hi is None else max(cursor, hi)
        if cursor is None:
            break
    if cursor is not None and _before(cursor, end):
        pieces.append(_Piece(cursor, end, s.state, s.reasons[:500], uuid))
    merged: list[_Piece] = []
    for piece in sorted((p for p in pieces if _before(p.start, p.end)), key=lambda p: p.start):
        last = merged[-1] if merged else None
        if last is not None and last.state == piece.state and last.end == piece.start:
            last.end = piece.end
        else:
            merged.append(piece)
    if [(o.start_at, o.end_at, o.state) for o in olds] == [(p.start, p.end, p.state) for p in merged]:
        return False
    for k, piece in enumerate(merged):
        target = olds[k] if k < len(olds) else GpuHealthInterval(node_id=node_id, gpu_index=s.index)
        if k >= len(olds):
            session.add(target)
        if target.state != piece.state or piece.state not in BAD:
            target.incident_id = None  # linked again by _reconcile_incidents
        target.start_at, target.end_at, target.state = piece.start, piece.end, piece.state
        target.reasons, target.gpu_uuid = piece.reasons, piece.uuid
    for old in olds[len(merged) :]:
        session.delete(old)
    return True


def _reconcile_incidents(
    session: Session, principal: Principal, node_id: int, lo: datetime, hi: datetime | None
) -> None:
    """Makes the node's automatic incidents around ``[lo, hi)`` match its unhealthy time: one incident
    per stretch of time in which some GPU is unhealthy or down, from its start to its end."""
    iv = GpuHealthInterval
    bad: list[GpuHealthInterval] = []
    incidents: list[Incident] = []
    while True:
        # Widen [lo, hi) until it holds every unhealthy stretch and automatic incident that touches it.
        stmt = select(iv).where(
            iv.node_id == node_id, iv.state.in_(list(BAD)), or_(iv.end_at.is_(None), iv.end_at >= lo)
        )
        bad = list(session.scalars(stmt if hi is None else stmt.where(iv.start_at <= hi)))
        stmt_i = select(Incident).where(
            Incident.node_id == node_id,
            Incident.source == IncidentSource.auto,
            or_(Incident.closed_at.is_(None), Incident.closed_at >= lo),
        )
        incidents = list(session.scalars(stmt_i if hi is None else stmt_i.where(Incident.opened_at <= hi)))
        spans = [(b.start_at, b.end_at) for b in bad] + [(i.opened_at, i.closed_at) for i in incidents]
        new_lo = min([lo, *(a for a, _ in spans)])
        new_hi = hi
        for _, b in spans:
            new_hi = None if new_hi is None or b is None else max(new_hi, b)
        if (new_lo, new_hi) == (lo, hi):
            break
        lo, hi = new_lo, new_hi
    stretches: list[tuple[datetime, datetime | None, list[GpuHealthInterval]]] = []
    for b in sorted(bad, key=lambda b: b.start_at):
        if b.end_at is not None and b.end_at <= b.start_at:
            continue
        if stretches and not _before(stretches[-1][1], b.start_at):
            a, e, members = stretches[-1]
            stretches[-1] = (a, None if e is None or b.end_at is None else max(e, b.end_at), [*members, b])
        else:
            stretches.append((b.start_at, b.end_at, [b]))
    was_open = any(i.status == IncidentStatus.open for i in incidents)
    unused = sorted(incidents, key=lambda i: (i.opened_at, i.id))
    node = session.get(Node, node_id, options=[lazyload("*")])
    assert node is not None
    for a, e, members in stretches:
        incident = next(
            (i for i in unused if not _before(e, i.opened_at) and not _before(i.closed_at, a)), None
        )
        if incident is None:
            incident = Incident(
                node_id=node_id,
                source=IncidentSource.auto,
                status=IncidentStatus.open,
                title=_title(node, members),
                opened_at=a,
                opened_by="telemetry",
            )
            session.add(incident)
            session.flush()
        else:
            unused.remove(incident)
        incident.opened_at, incident.closed_at = a, e
        incident.status = IncidentStatus.open if e is None else IncidentStatus.closed
        known = {g.gpu_index for g in incident.gpus}
        for b in members:
            if b.gpu_index not in known:
                known.add(b.gpu_index)
                incident.gpus.append(
                    IncidentGpu(gpu_index=b.gpu_index, gpu_uuid=b.gpu_uuid, reasons=b.reasons)
                )
            b.incident_id = incident.id
        if e is None and not was_open:
            _mark_faulty(session, principal, node, a, incident.title)
    for incident in unused:
        incident.status, incident.closed_at = IncidentStatus.closed, incident.opened_at
        if WITHDRAWN not in incident.detail:
            incident.detail = f"{incident.detail} {WITHDRAWN}".strip()[:1000]
    session.flush()


# -------------------------------------------------------------------------------------------- down


def sweep(session: Session, now: datetime | None = None, *, policy: HealthPolicy | None = None) -> list[str]:
    """Marks down every node whose agent missed ``policy.down_after_missed`` intervals; returns their
    serials. Down starts at the first missed beat (last heartbeat + interval): that is when the node
    stopped answering, not when someone noticed."""
    policy = policy or HealthPolicy()
    now = as_utc(now or utcnow())
    downed = []
    stmt = (
        select(NodeTelemetry)
        .where(NodeTelemetry.down.is_(False))
        .order_by(NodeTelemetry.node_id)
        # Ingest moves NodeTelemetry on with plain UPDATEs: never trust a copy this session holds.
        .execution_options(populate_existing=True)
    )
    for status in session.scalars(stmt):
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


# ------------------------------------------------------------------------------------ node health


@dataclass(frozen=True, slots=True)
class GpuNow:
    """One GPU as its node's heartbeats leave it: its health since when and why, and its last reading."""

    index: int
    uuid: str | None
    health: Health
    since: datetime | None  # None: healthy and never recorded otherwise
    reasons: str
    incident_id: int | None
    utilization_pct: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    ecc_dbe_volatile: int | None = None
    ecc_dbe_aggregate: int | None = None
    remap_pending: bool | None = None
    remap_failed: bool | None = None
    xids: list[int] | None = None


@dataclass(frozen=True, slots=True)
class NodeNow:
    node_id: int
    serial: str
    last_heartbeat_at: datetime | None  # None: the agent has never reported
    interval_s: int | None
    down: bool  # marked down by the sweep: heartbeats stopped
    gpus: list[GpuNow]
    incidents: list[Incident]  # open ones


def node_health(session: Session, principal: Principal, node_id: int) -> NodeNow:
    """The node's live state for whoever may see the node: each GPU's open health interval (healthy
    where there is none) and its reading in the last heartbeat, the node's last heartbeat, and its open
    incidents."""
    node = fleet.get_node(session, principal, node_id)
    status = session.get(NodeTelemetry, node.id)
    samples: dict[int, GpuSample] = {}
    if status is not None and status.last_heartbeat_id is not None:
        samples = {
            s.gpu_index: s
            for s in session.scalars(
                select(GpuSample).where(GpuSample.heartbeat_id == status.last_heartbeat_id)
            )
        }
    open_ = {
        h.gpu_index: h
        for h in session.scalars(
            select(GpuHealthInterval)
            .where(GpuHealthInterval.node_id == node.id, GpuHealthInterval.end_at.is_(None))
            .order_by(GpuHealthInterval.start_at)
        )
    }
    gpus = []
    for index in sorted({g.index for g in node.gpus} | set(samples) | set(open_)):
        uuid = next((g.uuid for g in node.gpus if g.index == index), None)
        h, s = open_.get(index), samples.get(index)
        reading = {}
        if s is not None:
            reading = {
                name: getattr(s, name)
                for name in (
                    "utilization_pct",
                    "power_w",
                    "temperature_c",
                    "ecc_dbe_volatile",
                    "ecc_dbe_aggregate",
                    "remap_pending",
                    "remap_failed",
                    "xids",
                )
            }
        gpus.append(
            GpuNow(
                index=index,
                uuid=uuid or (s.gpu_uuid if s is not None else None),
                health=h.state if h is not None else Health.HEALTHY,
                since=h.start_at if h is not None else None,
                reasons=h.reasons if h is not None else "",
                incident_id=h.incident_id if h is not None else None,
                **reading,
            )
        )
    incidents = list(
        session.scalars(
            readable_incidents(principal)
            .where(Incident.node_id == node.id, Incident.status == IncidentStatus.open)
            .order_by(Incident.opened_at.desc())
        )
    )
    return NodeNow(
        node_id=node.id,
        serial=node.serial,
        last_heartbeat_at=status.last_at if status is not None else None,
        interval_s=status.interval_s if status is not None else None,
        down=bool(status.down) if status is not None else False,
        gpus=gpus,
        incidents=incidents,
    )
