"""Demo telemetry: last month and this month of failures on the demo fleet, so that the SLA pages show
real incidents and one contract earns a credit (appended to computelease.demo.SEEDERS after the
allocation seeder).

Writing a month of heartbeats (~250 nodes every 30 s: 20M GPU samples) is far too slow for ``make run``,
so the records that heartbeats would have produced are written directly:

- the failures come from the simulated backend's failure model (:class:`~computelease.agent.simulated.
  SimulatedFleet`: Llama 3 rates and causes from DOMAIN.md, seeded and deterministic), run from a few days
  before last month until now;
- each failure becomes what ingest and the sweep would record: GPU health intervals (a lost card or an
  HBM error makes one GPU ``unhealthy``, a host or network failure makes the node ``down``) and an
  automatic incident with its GPUs, closed at the repair, still open when it is not repaired yet;
- the nodes the fleet seeder left faulty get an open incident that says why;
- two maintenance windows last month: one announced a week ahead (excluded within the allowance), one
  announced on the day (counted against the SLA);
- a host failure of several hours on a node of the strictest contract (99.99%, the EC2-like tiers) last
  month: that contract misses its target and earns a credit;
- the last three heartbeats of every live node, with their GPU samples, so the fleet looks live.

The failure draw is random, so the seed is chosen, deterministically, as the first whose failures leave
every other contract at or above its target last month: "most contracts meet their SLA" holds whatever
the day the demo is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from computelease.agent.clock import SimClock
from computelease.agent.simulated import Cause, NodeSpec, SimulatedFleet
from computelease.allocation.models import Allocation
from computelease.contracts.core import ContractStatus
from computelease.contracts.models import Contract
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node, NodeEvent
from computelease.kit.time import as_utc, utcnow
from computelease.sla import core
from computelease.sla import service as sla
from computelease.telemetry.health import Health
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

SEEDS = range(40)
INTERVAL_S = 30
HEARTBEATS = 3
# The scripted failure that costs the strictest contract its target (assumed: a power supply).
PSU_HOURS = 5
_RANK = {Health.HEALTHY: 0, Health.DEGRADED: 1, Health.UNHEALTHY: 2, Health.DOWN: 3}


@dataclass(frozen=True)
class Bad:
    """A failure as telemetry records it: GPUs of a node in a bad state over [start, end)."""

    node: Node
    gpus: tuple[int, ...]
    state: Health
    reasons: str
    start: datetime
    end: datetime | None  # None: not repaired yet
    incident: bool = True  # planned maintenance is down time without an incident


def _previous_period(now: datetime, tz: str) -> str:
    start, _ = core.month_bounds(core.period_of(now, tz), tz)
    return core.period_of(start - timedelta(seconds=1), tz)


def _in_service_since(session: Session, nodes: Sequence[Node]) -> dict[int, datetime]:
    stmt = (
        select(NodeEvent.node_id, NodeEvent.at)
        .where(NodeEvent.node_id.in_([n.id for n in nodes]), NodeEvent.to_state == NodeState.in_service)
        .order_by(NodeEvent.at)
    )
    first: dict[int, datetime] = {}
    for node_id, at in session.execute(stmt):
        first.setdefault(node_id, as_utc(at))
    return first


def _failures(nodes: Sequence[Node], seed: int, start: datetime, now: datetime) -> list[Bad]:
    specs = [NodeSpec(n.serial, n.model, tuple(g.uuid for g in n.gpus)) for n in nodes]
    fleet = SimulatedFleet(specs, seed=seed, clock=SimClock(start))
    fleet.advance(now)
    by_serial = {n.serial: n for n in nodes}
    out = []
    for incident in fleet.incidents:
        node = by_serial[incident.node]
        end = incident.end if incident.end is not None and incident.end <= now else None
        every = tuple(range(len(node.gpus)))
        if incident.cause is Cause.FAULTY_GPU:
            assert incident.gpu_index is not None
            out.append(
                Bad(node, (incident.gpu_index,), Health.UNHEALTHY, "XID 79; GPU missing", incident.start, end)
            )
        elif incident.cause is Cause.HBM3:
            assert incident.gpu_index is not None
            reasons = [f"XID {incident.xid}"]
            if incident.xid in (48, 95):
                reasons.append("1 new uncorrected (DBE) ECC error(s)")
            reasons.append(
                "row remap failed" if incident.remap_failed else "row remap pending: reset the GPU"
            )
            out.append(
                Bad(node, (incident.gpu_index,), Health.UNHEALTHY, "; ".join(reasons), incident.start, end)
            )
        else:
            # A host that stopped, or a link that cut the agent off: the sweep sees missed heartbeats.
            down_at = incident.start + timedelta(seconds=INTERVAL_S)
            if end is not None and end <= down_at:
                continue
            out.append(Bad(node, every, Health.DOWN, "no heartbeat for 3 intervals", down_at, end))
    return out


def _current_trouble(nodes: Iterable[Node]) -> list[Bad]:
    """The nodes the fleet seeder left faulty: an open incident that says why."""
    out = []
    for node in nodes:
        if node.state is not NodeState.faulty or not node.events:
            continue
        reason = node.events[-1].reason or "faulty"
        since = as_utc(node.state_since)
        gpu = re.search(r"GPU (\d+)", reason)
        if "link" in reason.lower() and gpu is None:
            out.append(Bad(node, tuple(range(len(node.gpus))), Health.DOWN, reason, since, None))
        else:
            out.append(Bad(node, (int(gpu.group(1)) if gpu else 0,), Health.UNHEALTHY, reason, since, None))
    return out


@dataclass(frozen=True)
class _Plan:
    maintenance: list[dict[str, Any]]
    scripted: list[Bad]


def _plan(contracts: dict[str, Contract], allocated: dict[int, list[Node]], now: datetime) -> _Plan:
    """The maintenance windows and the scripted failure, placed in last month of each contract."""
    windows: list[dict[str, Any]] = []
    scripted: list[Bad] = []

    def month(contract: Contract) -> datetime:
        return core.month_bounds(_previous_period(now, contract.timezone), contract.timezone)[0]

    flagship, by_nodes, strict = (contracts.get(k) for k in ("flagship", "by_nodes", "usd"))
    if flagship is not None and allocated.get(flagship.id):
        node = allocated[flagship.id][1 % len(allocated[flagship.id])]
        start = month(flagship) + timedelta(days=11, hours=18)  # 02:00 on the 12th, Beijing time
        windows.append(
            {
                "node": node,
                "title": "BMC and NVSwitch firmware upgrade (announced a week ahead)",
                "starts_at": start,
                "ends_at": start + timedelta(hours=3),
                "notice_given_at": start - timedelta(days=7),
            }
        )
    if by_nodes is not None and allocated.get(by_nodes.id):
        node = allocated[by_nodes.id][2 % len(allocated[by_nodes.id])]
        start = month(by_nodes) + timedelta(days=19, hours=6)  # 14:00 on the 20th, Beijing time
        windows.append(
            {
                "node": node,
                "title": "Emergency PDU swap in the rack (announced the same morning)",
                "starts_at": start,
                "ends_at": start + timedelta(hours=2),
                "notice_given_at": start - timedelta(hours=5),
            }
        )
    if strict is not None and allocated.get(strict.id):
        node = allocated[strict.id][0]
        start = month(strict) + timedelta(days=7, hours=3, minutes=40)
        scripted.append(
            Bad(
                node,
                tuple(range(len(node.gpus))),
                Health.DOWN,
                "no heartbeat for 3 intervals",
                start,
                start + timedelta(hours=PSU_HOURS, minutes=25),
            )
        )
    return _Plan(windows, scripted)


def _maintenance_downtime(windows: list[dict[str, Any]]) -> list[Bad]:
    return [
        Bad(
            w["node"],
            tuple(range(len(w["node"].gpus))),
            Health.DOWN,
            f"planned maintenance: {w['title']}",
            w["starts_at"],
            w["ends_at"],
            incident=False,
        )
        for w in windows
    ]


def _served_last_month(contract: Contract, now: datetime) -> bool:
    lo, hi = core.month_bounds(_previous_period(now, contract.timezone), contract.timezone)
    return max(lo, as_utc(contract.starts_at)) < min(hi, as_utc(contract.ends_at))


def _sla_of(
    contract: Contract, nodes: list[Node], bads: list[Bad], windows: list[dict[str, Any]], now: datetime
) -> core.SlaResult:
    """Last month's SLA of the contract from the planned records, before anything is written: the same
    intervals :mod:`computelease.sla.service` will build from them."""
    period = _previous_period(now, contract.timezone)
    lo, hi = core.month_bounds(period, contract.timezone)
    lo, hi = max(lo, as_utc(contract.starts_at)), min(hi, as_utc(contract.ends_at))
    ids = {n.id for n in nodes}
    intervals = [
        core.GpuInterval(
            gpu_id=sla.gpu_key(n, g.index), node_id=str(n.id), start=lo, end=hi, state=core.ALLOCATED
        )
        for n in nodes
        for g in n.gpus
    ]
    for bad in bads:
        if bad.node.id not in ids:
            continue
        start, end = max(bad.start, lo), min(bad.end or now, hi)
        if end <= start:
            continue
        state = core.DOWN if bad.state is Health.DOWN else core.UNHEALTHY
        intervals += [
            core.GpuInterval(
                gpu_id=sla.gpu_key(bad.node, i), node_id=str(bad.node.id), start=start, end=end, state=state
            )
            for i in bad.gpus
        ]
    maintenance = [
        core.MaintenanceWindow(
            start=w["starts_at"],
            end=w["ends_at"],
            notice_given_at=w["notice_given_at"],
            node_ids=frozenset({str(w["node"].id)}),
        )
        for w in windows
        if w["node"].id in ids
    ]
    return core.compute_sla(
        sla.policy_of(contract), sla.window_of(contract, period), period, intervals, maintenance
    )


def _timeline(bads: list[Bad], start: datetime) -> list[tuple[datetime, datetime | None, Bad | None]]:
    """One GPU's intervals from ``start``: the worst bad state at each moment, healthy in between; the
    last one is open."""
    points = sorted({start, *(b.start for b in bads), *(b.end for b in bads if b.end is not None)})
    out: list[tuple[datetime, datetime | None, Bad | None]] = []
    for a, b in [*pairwise(points), (points[-1], None)]:
        active = [x for x in bads if x.start <= a and (x.end is None or x.end > a)]
        worst = max(active, key=lambda x: (_RANK[x.state], x.start), default=None)
        if out and out[-1][2] is worst:
            out[-1] = (out[-1][0], b, worst)
        else:
            out.append((a, b, worst))
    return out


def _write_health(
    session: Session, nodes: Sequence[Node], bads: list[Bad], since: dict[int, datetime]
) -> int:
    """Incidents for the failures, then every GPU's health intervals; returns the number of incidents."""
    incidents: dict[int, Incident] = {}
    for k, bad in enumerate(bads):
        if not bad.incident:
            continue
        incident = Incident(
            node_id=bad.node.id,
            source=IncidentSource.auto,
            status=IncidentStatus.open if bad.end is None else IncidentStatus.closed,
            title=f"{bad.node.serial}: {bad.reasons}"[:200],
            detail="",
            opened_at=bad.start,
            closed_at=bad.end,
            opened_by="telemetry",
        )
        incident.gpus = [
            IncidentGpu(
                gpu_index=i, gpu_uuid=bad.node.gpus[i].uuid, reasons=bad.reasons[:500], added_at=bad.start
            )
            for i in bad.gpus
        ]
        session.add(incident)
        incidents[k] = incident
    session.flush()
    ids = {id(bad): incidents[k].id for k, bad in enumerate(bads) if k in incidents}
    per_gpu: dict[tuple[int, int], list[Bad]] = {}
    for bad in bads:
        for i in bad.gpus:
            per_gpu.setdefault((bad.node.id, i), []).append(bad)
    rows = []
    for node in nodes:
        for gpu in node.gpus:
            for start, end, bad in _timeline(per_gpu.get((node.id, gpu.index), []), since[node.id]):
                rows.append(
                    {
                        "node_id": node.id,
                        "gpu_index": gpu.index,
                        "gpu_uuid": gpu.uuid,
                        "state": Health.HEALTHY if bad is None else bad.state,
                        "reasons": "" if bad is None else bad.reasons[:500],
                        "start_at": start,
                        "end_at": end,
                        "incident_id": None if bad is None else ids.get(id(bad)),
                    }
                )
    session.execute(insert(GpuHealthInterval), rows)
    return len(incidents)


def _write_heartbeats(session: Session, nodes: Sequence[Node], bads: list[Bad], now: datetime) -> None:
    """The last few heartbeats of every node that is up now; a node down now stopped sending."""
    down_now = {b.node.id: b for b in bads if b.end is None and b.state is Health.DOWN}
    specs = [NodeSpec(n.serial, n.model, tuple(g.uuid for g in n.gpus)) for n in nodes]
    first = now - timedelta(seconds=INTERVAL_S * (HEARTBEATS - 1))
    clock = SimClock(first)
    quiet = SimulatedFleet(specs, seed=0, clock=clock)  # readings only: failures are already written
    beats: list[tuple[Node, Heartbeat, list[Any]]] = []
    for k in range(HEARTBEATS):
        clock.set(first + timedelta(seconds=INTERVAL_S * k))
        for i, node in enumerate(nodes):
            if node.id in down_now:
                continue
            sample = quiet.sample(i)
            if sample is None:
                continue
            hb = Heartbeat(node_id=node.id, seq=k + 1, at=clock.now(), received_at=clock.now(), interval_s=30)
            beats.append((node, hb, sample.gpus))
    session.add_all([hb for _, hb, _ in beats])
    session.flush()
    unhealthy = {
        (b.node.id, i) for b in bads if b.end is None and b.state is Health.UNHEALTHY for i in b.gpus
    }
    rows = []
    for node, hb, gpus in beats:
        for g in gpus:
            lost = (node.id, g.index) in unhealthy
            rows.append(
                {
                    "heartbeat_id": hb.id,
                    "gpu_index": g.index,
                    "gpu_uuid": g.uuid,
                    "xids": None,
                    "ecc_dbe_volatile": None if lost else g.ecc_dbe_volatile,
                    "ecc_dbe_aggregate": None if lost else g.ecc_dbe_aggregate,
                    "remap_pending": None if lost else g.remap_pending,
                    "remap_failed": None if lost else g.remap_failed,
                    "lost": lost,
                    "utilization_pct": None if lost else g.utilization_pct,
                    "power_w": None if lost else g.power_w,
                    "temperature_c": None if lost else g.temperature_c,
                }
            )
    if rows:
        session.execute(insert(GpuSample), rows)
    last = {node.id: hb for node, hb, _ in beats}
    for node in nodes:
        hb = last.get(node.id)
        if hb is None:
            bad = down_now.get(node.id)
            at = (bad.start - timedelta(seconds=INTERVAL_S)) if bad else now
            session.add(
                NodeTelemetry(
                    node_id=node.id, last_heartbeat_id=None, last_seq=0, last_at=at, interval_s=30, down=True
                )
            )
        else:
            session.add(
                NodeTelemetry(
                    node_id=node.id,
                    last_heartbeat_id=hb.id,
                    last_seq=hb.seq,
                    last_at=hb.at,
                    interval_s=30,
                    down=False,
                )
            )


def seed(session: Session, world: Any) -> None:
    """Writes the demo's telemetry; leaves ``world.extra["telemetry"]`` = {"seed", "incidents",
    "maintenance", "sla"} with last month's SLA result of every active contract."""
    now = utcnow()
    contracts: dict[str, Contract] = dict(world.extra["contracts"]["contracts"])
    # Active and in its term last month: a demo seeded after a contract's end date must not measure it.
    active = {
        k: c for k, c in contracts.items() if c.status is ContractStatus.active and _served_last_month(c, now)
    }
    all_nodes: list[Node] = list(world.extra["fleet"]["nodes"])
    # From a couple of days before the earliest "last month" (time zones differ) until now.
    start = min(core.month_bounds(_previous_period(now, tz), tz)[0] for tz in {"UTC", "Asia/Shanghai"})
    start -= timedelta(days=2)
    first_service = _in_service_since(session, all_nodes)
    live = [
        n
        for n in all_nodes
        if n.id in first_service and first_service[n.id] <= start and n.state is NodeState.in_service
    ]
    trouble = _current_trouble(all_nodes)
    nodes = live + [b.node for b in trouble if b.node not in live]
    since = {n.id: max(start, first_service.get(n.id, start)) for n in nodes}

    allocated: dict[int, list[Node]] = {}
    for a in session.scalars(
        select(Allocation)
        .where(Allocation.contract_id.in_([c.id for c in active.values()]))
        .order_by(Allocation.start_at, Allocation.id)
    ):
        allocated.setdefault(a.contract_id, []).append(a.node)
    plan = _plan(active, allocated, now)
    planned = _maintenance_downtime(plan.maintenance)
    strict = contracts.get("usd")

    chosen, results, bads = SEEDS[0], {}, []
    for candidate in SEEDS:
        bads = _failures(live, candidate, start, now) + trouble + plan.scripted + planned
        results = {
            k: _sla_of(c, allocated.get(c.id, []), bads, plan.maintenance, now) for k, c in active.items()
        }
        chosen = candidate
        if all(r.met_target for k, r in results.items() if strict is None or k != "usd"):
            break

    for w in plan.maintenance:
        session.add(
            MaintenanceWindow(
                node_id=w["node"].id,
                title=w["title"],
                starts_at=w["starts_at"],
                ends_at=w["ends_at"],
                notice_given_at=w["notice_given_at"],
            )
        )
    count = _write_health(session, nodes, bads, since)
    _write_heartbeats(session, nodes, bads, now)
    session.flush()
    world.extra["telemetry"] = {
        "seed": chosen,
        "incidents": count,
        "maintenance": len(plan.maintenance),
        "sla": results,
    }
