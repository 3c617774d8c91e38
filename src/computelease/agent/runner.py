"""The agent's loop (sample, spool, send, wait) and the driver that runs a simulated fleet of agents."""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from computelease import __version__
from computelease.agent.backends import Backend
from computelease.agent.clock import Clock, SimClock, SystemClock
from computelease.agent.errors import AgentError
from computelease.agent.sender import FlushReport, Outcome, Sender
from computelease.agent.simulated import SimulatedFleet
from computelease.agent.spool import MEMORY, Spool
from computelease.telemetry.schemas import AgentInfo, Heartbeat, HeartbeatBody

log = logging.getLogger("computelease.agent")


@dataclass(frozen=True)
class TickReport:
    heartbeat: Heartbeat | None
    flush: FlushReport | None


class Agent:
    """One node's agent. Every heartbeat is spooled before it is sent, so a crash loses nothing."""

    def __init__(
        self,
        *,
        node: str,
        backend: Backend,
        spool: Spool,
        sender: Sender | None,
        interval_s: int = 30,
        batch_size: int = 100,
        clock: Clock | None = None,
        host: str | None = None,
    ) -> None:
        if spool.node != node:
            raise AgentError(f"the spool belongs to node {spool.node}, not {node}")
        if not 1 <= interval_s <= 86_400:
            raise AgentError("--interval must be between 1 and 86400 seconds")
        self.node = node
        self.backend = backend
        self.spool = spool
        self.sender = sender
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.clock = clock or SystemClock()
        self.info = AgentInfo(
            version=__version__, backend=backend.name, host=(host or socket.gethostname() or "unknown")[:255]
        )
        self._stopped_since: Outcome | None = None

    def heartbeat(self) -> Heartbeat | None:
        """Sample the GPUs and commit the heartbeat to the spool; None when the backend has nothing."""
        sample = self.backend.sample()
        if sample is None:
            return None
        body = HeartbeatBody(
            at=self.clock.now(), interval_s=self.interval_s, gpus=sample.gpus, unsupported=sample.unsupported
        )
        return self.spool.append(body)

    def flush(self) -> FlushReport:
        if self.sender is None:
            return FlushReport(pending=len(self.spool))
        report = self.sender.flush(self.spool, self.info, batch_size=self.batch_size)
        # Say so when delivery stops and when it resumes, not at every interval in between.
        if report.stopped is not None and self._stopped_since is None:
            log.warning(
                "cannot deliver heartbeats (%s); keeping them in %s", report.stopped.detail, self.spool.path
            )
            self._stopped_since = report.stopped.outcome
        elif report.stopped is None and self._stopped_since is not None:
            log.warning("delivering again: %d heartbeats sent from the spool", report.sent)
            self._stopped_since = None
        return report

    def tick(self, *, flush: bool = True) -> TickReport:
        heartbeat = self.heartbeat()
        return TickReport(heartbeat, self.flush() if flush else None)

    def run(self, *, once: bool = False, stop: Callable[[], bool] = lambda: False) -> FlushReport:
        """Heartbeat every ``interval_s`` until ``stop()``; the backend's wait collects XIDs meanwhile."""
        total = FlushReport()
        next_at = self.clock.monotonic()
        while not stop():
            report = self.tick()
            if report.flush is not None:
                total.add(report.flush)
            if once:
                break
            next_at += self.interval_s
            late = self.clock.monotonic() - next_at
            if late > 0:
                # A slow server must not cause a burst of catch-up heartbeats: skip the missed beats.
                next_at += (late // self.interval_s + 1) * self.interval_s
            while (left := next_at - self.clock.monotonic()) > 0 and not stop():
                self.backend.wait(min(left, 1.0))
        return total


# -- simulation ------------------------------------------------------------------------------------------


@dataclass
class SimulationReport:
    nodes: int
    gpus: int
    start: datetime
    end: datetime
    interval_s: int
    heartbeats: int = 0
    missed: int = 0
    delivery: FlushReport = field(default_factory=FlushReport)
    pending: int = 0
    incidents: Counter[str] = field(default_factory=Counter)
    open_incidents: int = 0
    application_xids: int = 0
    sbe_events: int = 0
    wall_s: float = 0.0
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = self.delivery
        return {
            "nodes": self.nodes,
            "gpus": self.gpus,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "interval_s": self.interval_s,
            "heartbeats": self.heartbeats,
            "missed_heartbeats": self.missed,
            "sent": d.sent,
            "accepted": d.accepted,
            "duplicates": d.duplicates,
            "rejected": len(d.rejected),
            "dropped": len(d.dropped),
            "pending": self.pending,
            "incidents": dict(sorted(self.incidents.items())),
            "open_incidents": self.open_incidents,
            "application_xids": self.application_xids,
            "sbe_events": self.sbe_events,
            "wall_s": round(self.wall_s, 3),
            "stopped": self.stopped,
        }


def run_simulation(
    fleet: SimulatedFleet,
    *,
    end: datetime,
    interval_s: int = 30,
    sender: Sender | None = None,
    batch_size: int = 100,
    speed: float = 0.0,
    first_seq: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[SimulationReport], None] | None = None,
) -> SimulationReport:
    """Run one agent per node from ``fleet.start`` to ``end`` on the fleet's simulated clock.

    ``speed`` is simulated seconds per wall-clock second (0: as fast as possible, sending full batches;
    otherwise every node sends at every interval, as a live fleet would). Nodes whose network is down
    keep their heartbeats spooled and send them when it is back. When the server cannot take a batch,
    sending pauses for a simulated hour rather than hammering it; whatever is still spooled at the end
    is reported as ``pending``.
    """
    clock = fleet.clock
    if not isinstance(clock, SimClock):
        raise AgentError("a simulation runs on a simulated clock")
    agents = [
        Agent(
            node=node.serial,
            backend=fleet.backend(i),
            spool=Spool(MEMORY, node=node.serial, first_seq=first_seq),
            sender=sender,
            interval_s=interval_s,
            batch_size=batch_size,
            clock=clock,
            host=f"sim-{node.serial}".lower(),
        )
        for i, node in enumerate(fleet.nodes)
    ]
    report = SimulationReport(
        len(agents), sum(len(n.gpus) for n in fleet.nodes), fleet.start, end, interval_s
    )
    wall_start = time.monotonic()
    step = timedelta(seconds=interval_s)
    paused_until = fleet.start
    day = 0
    now = fleet.start
    try:
        while now < end:
            clock.set(now)
            live = speed > 0
            for i, agent in enumerate(agents):
                heartbeat = agent.heartbeat()
                if heartbeat is None:
                    report.missed += 1
                    continue
                report.heartbeats += 1
                if sender is None:  # simulating only: nothing to keep
                    agent.spool.ack([heartbeat.seq])
                    continue
                due = sender is not None and (live or len(agent.spool) >= batch_size)
                if due and now >= paused_until and fleet.reachable(i) and not _deliver(agent, report):
                    paused_until = now + timedelta(hours=1)
            if live:
                behind = (now - fleet.start).total_seconds() / speed - (time.monotonic() - wall_start)
                sleep(max(0.0, behind))
            now += step
            if progress is not None and (now - fleet.start) // timedelta(days=1) > day:
                day += 1
                _count(fleet, agents, report, wall_start)
                progress(report)
        clock.set(max(now, end))
        if sender is not None:
            for i, agent in enumerate(agents):
                if len(agent.spool) and fleet.reachable(i) and not _deliver(agent, report):
                    break
    finally:
        _count(fleet, agents, report, wall_start)
        for agent in agents:
            agent.spool.close()
    return report


def _deliver(agent: Agent, report: SimulationReport) -> bool:
    flushed = agent.flush()
    report.delivery.add(flushed)
    report.stopped = flushed.stopped.detail if flushed.stopped is not None else None
    return flushed.stopped is None


def _count(fleet: SimulatedFleet, agents: list[Agent], report: SimulationReport, wall_start: float) -> None:
    report.pending = sum(len(a.spool) for a in agents)
    report.incidents = Counter(i.cause.value for i in fleet.incidents)
    report.open_incidents = sum(1 for i in fleet.incidents if i.end is None)
    report.application_xids = fleet.counts["application_xid"]
    report.sbe_events = fleet.counts["sbe"]
    report.wall_s = time.monotonic() - wall_start
