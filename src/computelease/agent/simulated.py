"""A simulated GPU fleet: realistic heartbeats and failures for demos and tests, with no GPU.

Failures follow the Llama 3 training figures (DOMAIN.md): ≈0.47 unexpected interruptions per 1,000 GPUs
per day, of which 30.1% were faulty GPUs, 17.2% HBM3 memory and 8.4% network switches or cables. DOMAIN.md
does not break down the other 44.3% (host, software, power, …); here they take the whole host down. How a
failure shows in telemetry:

=============  ============================================================  =========================
cause          what the agent reports                                        until repaired
=============  ============================================================  =========================
faulty_gpu     XID 79 (fell off the bus), then the GPU ``lost``              the card is reseated
hbm3           XID 48 (DBE), 94 (contained) or 95 (uncontained ECC); a new   a GPU reset applies the
               DBE for 48 and 95; a row remap pending (sometimes failed)     remap
network        nothing: heartbeats pile up in the spool, arrive late         the link is fixed
host           no heartbeats at all (missed intervals)                       the host is back
=============  ============================================================  =========================

Besides failures, GPUs log application XIDs (13, 31, 43: the job's fault, never the GPU's) and correctable
(SBE) ECC errors, and nodes are busy or idle by the hour. Rates of these, repair times and the share of
failed remaps are not in DOMAIN.md: they are labelled assumptions in :class:`FailureModel`.

Everything is derived from ``seed`` and each node's serial, and failure times do not depend on how often
the fleet is sampled, so two runs with one seed produce the same incidents and the same heartbeats. Time
is whatever the given clock says: with a :class:`~computelease.agent.clock.SimClock`, days pass in
milliseconds.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from computelease.agent.backends import Sample, make_gpu
from computelease.agent.clock import Clock
from computelease.kit.time import as_utc
from computelease.telemetry.schemas import GpuSample

DAY_S = 86_400.0
APPLICATION_XIDS = (13, 31, 43)
HBM_XIDS = (48, 94, 95)


class Cause(StrEnum):
    FAULTY_GPU = "faulty_gpu"
    HBM3 = "hbm3"
    NETWORK = "network"
    HOST = "host"


@dataclass(frozen=True, kw_only=True)
class FailureModel:
    # Llama 3 on 16,384 H100s for 54 days: 419 unexpected interruptions (DOMAIN.md).
    interruptions_per_1000_gpu_days: float = 0.47
    mix: Mapping[Cause, float] = field(
        default_factory=lambda: MappingProxyType(
            {Cause.FAULTY_GPU: 0.301, Cause.HBM3: 0.172, Cause.NETWORK: 0.084, Cause.HOST: 0.443}
        )
    )
    # Assumptions, not in DOMAIN.md: mean hours to repair (each draw is 0.5–1.5× the mean).
    repair_hours: Mapping[Cause, float] = field(
        default_factory=lambda: MappingProxyType(
            {Cause.FAULTY_GPU: 24.0, Cause.HBM3: 2.0, Cause.NETWORK: 4.0, Cause.HOST: 6.0}
        )
    )
    # Assumptions: how often jobs raise application XIDs and cards correct an ECC error, and how many
    # HBM failures leave a failed remap (the card must be replaced: repaired like a faulty GPU).
    app_xids_per_1000_gpu_days: float = 3.0
    sbe_per_1000_gpu_days: float = 10.0
    remap_failed_share: float = 0.05
    # Share of node-hours with a job running; DOMAIN.md: well-run GPU clouds achieve 85–95%.
    occupancy: float = 0.9

    def __post_init__(self) -> None:
        if abs(sum(self.mix.values()) - 1) > 1e-9 or any(v < 0 for v in self.mix.values()):
            raise ValueError("the failure mix must be shares ≥ 0 that add up to 1")
        rates = (
            self.interruptions_per_1000_gpu_days,
            self.app_xids_per_1000_gpu_days,
            self.sbe_per_1000_gpu_days,
        )
        if any(r < 0 for r in rates) or not 0 <= self.occupancy <= 1:
            raise ValueError("rates must be ≥ 0 and occupancy within 0..1")

    def scaled(self, factor: float) -> FailureModel:
        """Every rate times ``factor``: at Llama 3's rates a small demo fleet sees no failure in a month."""
        return replace(
            self,
            interruptions_per_1000_gpu_days=self.interruptions_per_1000_gpu_days * factor,
            app_xids_per_1000_gpu_days=self.app_xids_per_1000_gpu_days * factor,
            sbe_per_1000_gpu_days=self.sbe_per_1000_gpu_days * factor,
        )


@dataclass(frozen=True)
class GpuProfile:
    name: str
    memory_mb: int
    tdp_w: float
    max_sm_mhz: int
    idle_sm_mhz: int
    pcie_gen: int


# Plausible figures as nvidia-smi shows them on common boards; the simulation needs realistic values,
# not exact ones.
PROFILES = {
    "h100": GpuProfile("NVIDIA H100 80GB HBM3", 81_559, 700, 1_980, 345, 5),
    "h800": GpuProfile("NVIDIA H800", 81_559, 700, 1_980, 345, 5),
    "h200": GpuProfile("NVIDIA H200", 143_771, 700, 1_980, 345, 5),
    "h20": GpuProfile("NVIDIA H20", 97_871, 400, 1_980, 345, 5),
    "a100": GpuProfile("NVIDIA A100-SXM4-80GB", 81_920, 400, 1_410, 210, 4),
    "a800": GpuProfile("NVIDIA A800-SXM4-80GB", 81_920, 400, 1_410, 210, 4),
}


def profile_for(model: str | None) -> GpuProfile:
    key = (model or "").lower()
    # Longest key first, so "h200" is not taken for "h20".
    for name in sorted(PROFILES, key=len, reverse=True):
        if name in key:
            return PROFILES[name]
    return PROFILES["h100"]


@dataclass(frozen=True)
class NodeSpec:
    serial: str
    model: str | None = None
    gpu_uuids: tuple[str | None, ...] = ()
    gpu_serials: tuple[str | None, ...] = ()


@dataclass
class Incident:
    cause: Cause
    node: str
    start: datetime
    gpu_index: int | None = None
    xid: int | None = None
    end: datetime | None = None
    remap_failed: bool = False


@dataclass
class _Gpu:
    index: int
    uuid: str | None
    serial: str | None
    lost: bool = False
    remap_pending: bool = False
    remap_failed: bool = False
    sbe_volatile: int = 0
    dbe_volatile: int = 0
    sbe_aggregate: int = 0
    dbe_aggregate: int = 0
    xids: list[int] = field(default_factory=list)

    def reset(self) -> None:
        # A reset or reboot clears the volatile ECC counters; the aggregate ones live in the InfoROM.
        self.sbe_volatile = self.dbe_volatile = 0
        self.remap_pending = False


@dataclass
class _Node:
    serial: str
    profile: GpuProfile
    gpus: list[_Gpu]
    events: random.Random
    noise: random.Random
    down: bool = False
    unreachable: bool = False
    busy_hour: tuple[int, bool] = (-1, False)


class SimulatedFleet:
    """Nodes whose GPUs fail at the Llama 3 rates; :meth:`backend` gives one node's agent backend."""

    def __init__(
        self,
        nodes: int | Sequence[NodeSpec],
        *,
        seed: int = 0,
        clock: Clock,
        gpus_per_node: int = 8,
        model: str = "H100",
        failures: FailureModel | None = None,
        prefix: str = "SIM",
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.start = as_utc(clock.now())
        self.failures = failures or FailureModel()
        specs = (
            [NodeSpec(f"{prefix}-{i:04d}", model) for i in range(1, nodes + 1)]
            if isinstance(nodes, int)
            else list(nodes)
        )
        if len({s.serial for s in specs}) != len(specs):
            raise ValueError("node serials repeat")
        self.nodes = [self._node(spec, gpus_per_node) for spec in specs]
        self.incidents: list[Incident] = []
        self.counts: Counter[str] = Counter()
        self._order = 0
        self._queue: list[tuple[float, int, int, str, Incident | None]] = []
        f = self.failures
        self._per_gpu_day = (
            f.interruptions_per_1000_gpu_days + f.app_xids_per_1000_gpu_days + f.sbe_per_1000_gpu_days
        ) / 1000
        for i, node in enumerate(self.nodes):
            self._schedule_next(i, node, 0.0)

    @classmethod
    def single(cls, *, node: str = "SIM-0001", seed: int = 0, clock: Clock, **options: Any) -> SimulatedFleet:
        return cls([NodeSpec(node, options.pop("model", None))], seed=seed, clock=clock, **options)

    def _node(self, spec: NodeSpec, gpus_per_node: int) -> _Node:
        ids = random.Random(f"{self.seed}/{spec.serial}/ids")
        count = max(len(spec.gpu_uuids), len(spec.gpu_serials)) or gpus_per_node
        gpus = []
        for index in range(count):
            given_uuid = spec.gpu_uuids[index] if index < len(spec.gpu_uuids) else None
            given_serial = spec.gpu_serials[index] if index < len(spec.gpu_serials) else None
            made_uuid = f"GPU-{uuid.UUID(int=ids.getrandbits(128), version=4)}"
            made_serial = f"{1650000000000 + ids.randrange(10**9):013d}"
            if spec.gpu_uuids or spec.gpu_serials:  # identities from the fleet are kept as they are
                gpus.append(_Gpu(index, given_uuid, given_serial))
            else:
                gpus.append(_Gpu(index, made_uuid, made_serial))
        return _Node(
            spec.serial,
            profile_for(spec.model),
            gpus,
            events=random.Random(f"{self.seed}/{spec.serial}/events"),
            noise=random.Random(f"{self.seed}/{spec.serial}/noise"),
        )

    # -- the failure process ---------------------------------------------------------------------------

    def _push(self, at: float, node: int, kind: str, incident: Incident | None = None) -> None:
        self._order += 1
        heapq.heappush(self._queue, (at, self._order, node, kind, incident))

    def _schedule_next(self, i: int, node: _Node, now: float) -> None:
        rate = self._per_gpu_day * len(node.gpus) / DAY_S
        if rate > 0:
            self._push(now + node.events.expovariate(rate), i, "event")

    def _time(self, elapsed: float) -> datetime:
        return self.start + timedelta(seconds=elapsed)

    def advance(self, to: datetime | None = None) -> None:
        """Apply every failure, repair and event due up to ``to`` (default: the clock's now)."""
        target = ((to or self.clock.now()) - self.start).total_seconds()
        while self._queue and self._queue[0][0] <= target:
            at, _, i, kind, incident = heapq.heappop(self._queue)
            node = self.nodes[i]
            if kind == "repair":
                assert incident is not None
                self._repair(node, incident, at)
            else:
                self._event(i, node, at)

    def _event(self, i: int, node: _Node, at: float) -> None:
        f = self.failures
        self._schedule_next(i, node, at)
        draw = node.events.random() * self._per_gpu_day * 1000
        gpu = node.gpus[node.events.randrange(len(node.gpus))]
        if draw < f.interruptions_per_1000_gpu_days:
            self._interrupt(i, node, gpu, at)
        elif node.down or gpu.lost:
            return
        elif draw < f.interruptions_per_1000_gpu_days + f.app_xids_per_1000_gpu_days:
            gpu.xids.append(node.events.choice(APPLICATION_XIDS))
            self.counts["application_xid"] += 1
        else:
            errors = 1 + node.events.randrange(3)
            gpu.sbe_volatile += errors
            gpu.sbe_aggregate += errors
            self.counts["sbe"] += 1

    def _interrupt(self, i: int, node: _Node, gpu: _Gpu, at: float) -> None:
        f = self.failures
        causes = list(f.mix)
        cause = node.events.choices(causes, weights=[f.mix[c] for c in causes])[0]
        hours = f.repair_hours[cause] * node.events.uniform(0.5, 1.5)
        self.counts["interruptions"] += 1
        # A failure of something already broken changes nothing that telemetry could show.
        if node.down or (cause in (Cause.FAULTY_GPU, Cause.HBM3) and (gpu.lost or gpu.remap_pending)):
            self.counts["skipped"] += 1
            return
        if cause is Cause.NETWORK and node.unreachable:
            self.counts["skipped"] += 1
            return
        incident = Incident(cause, node.serial, self._time(at))
        if cause is Cause.FAULTY_GPU:
            incident.gpu_index, incident.xid = gpu.index, 79
            gpu.lost = True
            gpu.xids.append(79)
        elif cause is Cause.HBM3:
            xid = node.events.choice(HBM_XIDS)
            incident.gpu_index, incident.xid = gpu.index, xid
            if xid in (48, 95):
                gpu.dbe_volatile += 1
                gpu.dbe_aggregate += 1
            gpu.remap_pending = True
            if node.events.random() < f.remap_failed_share:
                gpu.remap_failed = incident.remap_failed = True
                hours = f.repair_hours[Cause.FAULTY_GPU] * node.events.uniform(0.5, 1.5)
            if xid not in gpu.xids:
                gpu.xids.append(xid)
        elif cause is Cause.NETWORK:
            node.unreachable = True
        else:
            node.down = True
            for g in node.gpus:
                g.xids.clear()  # nothing ran to see them
        self.incidents.append(incident)
        self.counts[cause.value] += 1
        self._push(at + hours * 3600, i, "repair", incident)

    def _repair(self, node: _Node, incident: Incident, at: float) -> None:
        incident.end = self._time(at)
        if incident.cause is Cause.NETWORK:
            node.unreachable = False
        elif incident.cause is Cause.HOST:
            node.down = False
            for gpu in node.gpus:
                gpu.reset()
        else:
            # Assumption: the card is reseated or reset in place and keeps its identity.
            assert incident.gpu_index is not None
            gpu = node.gpus[incident.gpu_index]
            gpu.lost = gpu.remap_failed = False
            gpu.reset()

    # -- what one node's agent sees --------------------------------------------------------------------

    def node_up(self, i: int) -> bool:
        self.advance()
        return not self.nodes[i].down

    def reachable(self, i: int) -> bool:
        self.advance()
        return not self.nodes[i].unreachable

    def backend(self, i: int) -> SimulatedBackend:
        return SimulatedBackend(self, i)

    def _busy(self, node: _Node, now: datetime) -> bool:
        # Busy or idle by the hour, from the hour alone: the same whatever the sampling interval.
        hour = int((now - self.start).total_seconds() // 3600)
        if node.busy_hour[0] != hour:
            draw = random.Random(f"{self.seed}/{node.serial}/busy/{hour}").random()
            node.busy_hour = (hour, draw < self.failures.occupancy)
        return node.busy_hour[1]

    def sample(self, i: int) -> Sample | None:
        """One heartbeat's GPUs for node ``i`` now, or None while its host is down."""
        self.advance()
        node = self.nodes[i]
        if node.down:
            return None
        now = self.clock.now()
        busy = self._busy(node, now)
        return Sample([self._gpu_sample(node, gpu, busy) for gpu in node.gpus], [])

    def _gpu_sample(self, node: _Node, gpu: _Gpu, busy: bool) -> GpuSample:
        xids, gpu.xids = gpu.xids, []
        if gpu.lost:
            return make_gpu(
                {"index": gpu.index, "uuid": gpu.uuid, "lost": True, "xids": list(dict.fromkeys(xids))},
                ["GPU is lost"],
            )
        p, r = node.profile, node.noise
        if busy:
            power = round(p.tdp_w * r.uniform(0.72, 0.98), 1)
            util, temp = r.randint(85, 100), round(r.uniform(55, 78))
            sm = p.max_sm_mhz - r.choice((0, 0, 0, 15, 30, 60, 105))
            used = int(p.memory_mb * r.uniform(0.7, 0.96))
            throttle = ["sw_power_cap"] if power > 0.9 * p.tdp_w else []
        else:
            power, util, temp = round(r.uniform(60, 85), 1), 0, round(r.uniform(28, 38))
            sm, used, throttle = p.idle_sm_mhz, 4, ["gpu_idle"]
        return make_gpu(
            {
                "index": gpu.index,
                "uuid": gpu.uuid,
                "serial": gpu.serial,
                "name": p.name,
                "memory_total_mb": p.memory_mb,
                "memory_used_mb": used,
                "utilization_pct": util,
                "power_w": power,
                "temperature_c": temp,
                "sm_clock_mhz": sm,
                "ecc_sbe_volatile": gpu.sbe_volatile,
                "ecc_dbe_volatile": gpu.dbe_volatile,
                "ecc_sbe_aggregate": gpu.sbe_aggregate,
                "ecc_dbe_aggregate": gpu.dbe_aggregate,
                "remap_pending": gpu.remap_pending,
                "remap_failed": gpu.remap_failed,
                "pcie_gen": p.pcie_gen,
                "pcie_width": 16,
                "throttle_reasons": throttle,
                "lost": False,
                "xids": list(dict.fromkeys(xids)),
            }
        )


class SimulatedBackend:
    """One simulated node seen through the :class:`~computelease.agent.backends.Backend` protocol."""

    name = "simulated"

    def __init__(self, fleet: SimulatedFleet, index: int) -> None:
        self.fleet = fleet
        self.index = index
        self.serial = fleet.nodes[index].serial

    def sample(self) -> Sample | None:
        return self.fleet.sample(self.index)

    def wait(self, seconds: float) -> None:
        self.fleet.clock.sleep(seconds)

    def close(self) -> None:
        pass
