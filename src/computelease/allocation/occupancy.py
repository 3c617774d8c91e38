"""Capacity-time and occupancy (出租率), pure.

Every GPU-hour of every node in a period is in exactly one category:

- ``allocated``: the node is ``in_service`` or ``accepted`` and an allocation covers it;
- ``idle``: the node is ``in_service`` and no allocation covers it;
- ``down``: ``faulty`` or ``repair`` (allocated or not: the tenant is not being served);
- ``maintenance``: ``maintenance``;
- ``not_in_service``: anything else (``ordered``, ``delivered``, ``retired``, ``sold``, an ``accepted``
  node nobody uses, or a moment with no known state).

In-service GPU-hours are ``allocated + idle``; occupancy is ``allocated / in-service``.

The node's state at a moment comes from its state intervals; where intervals overlap (bad data), the
one that started last wins, so the categories still partition time. Likewise for overlapping
allocations of one node: the later one owns the moment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from computelease.allocation.core import (
    ALLOCATABLE_STATES,
    Allocation,
    AllocationInputError,
    Node,
    NodeState,
    aware_utc,
)

__all__ = [
    "CATEGORIES",
    "CapacityTime",
    "Grouping",
    "OccupancyRow",
    "StateInterval",
    "capacity_time",
    "occupancy",
]

CATEGORIES = ("allocated", "idle", "down", "maintenance", "not_in_service")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_US_PER_HOUR = 3_600_000_000


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


class Grouping(StrEnum):
    SITE = "site"
    MODEL = "model"
    FABRIC = "fabric"
    CONTRACT = "contract"
    CUSTOMER = "customer"
    NODE = "node"


@dataclass(frozen=True, slots=True)
class StateInterval:
    """Node ``node_id`` was in ``state`` over ``[start, end)``; ``end=None``: still is."""

    node_id: str
    state: NodeState
    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", NodeState(self.state))
        object.__setattr__(self, "start", aware_utc(self.start, f"state of {self.node_id} start"))
        if self.end is not None:
            object.__setattr__(self, "end", aware_utc(self.end, f"state of {self.node_id} end"))
            if self.end < self.start:
                raise AllocationInputError(f"state interval of node {self.node_id}: end before start")


@dataclass(frozen=True, slots=True)
class CapacityTime:
    """GPU-hours per category; they sum to ``total``, the node-GPUs × hours of the period."""

    allocated: float = 0.0
    idle: float = 0.0
    down: float = 0.0
    maintenance: float = 0.0
    not_in_service: float = 0.0

    @property
    def total(self) -> float:
        return self.allocated + self.idle + self.down + self.maintenance + self.not_in_service

    @property
    def in_service(self) -> float:
        return self.allocated + self.idle

    @property
    def occupancy(self) -> float | None:
        """Allocated / in-service, as a fraction; ``None`` when nothing was in service."""
        return self.allocated / self.in_service if self.in_service > 0 else None


@dataclass(frozen=True, slots=True)
class OccupancyRow:
    """One group. ``key`` is the site, model, ``site/fabric``, contract, customer or node; for
    contract and customer grouping, ``None`` holds every moment no allocation covers."""

    key: str | None
    capacity: CapacityTime
    idle_nodes: tuple[str, ...]

    @property
    def in_service_gpu_hours(self) -> float:
        return self.capacity.in_service

    @property
    def allocated_gpu_hours(self) -> float:
        return self.capacity.allocated

    @property
    def occupancy_pct(self) -> float | None:
        occ = self.capacity.occupancy
        return None if occ is None else 100.0 * occ


_DOWN = frozenset({NodeState.FAULTY, NodeState.REPAIR})


def _category(state: NodeState | None, allocated: bool) -> str:
    if state in _DOWN:
        return "down"
    if state is NodeState.MAINTENANCE:
        return "maintenance"
    if state in ALLOCATABLE_STATES and allocated:
        return "allocated"
    if state is NodeState.IN_SERVICE:
        return "idle"
    return "not_in_service"


def _latest(items: list[tuple[int, int, int, object]], lo: int, hi: int) -> object | None:
    """The payload of the item that covers [lo, hi) and started last (input order breaks ties)."""
    best = None
    for s, e, order, payload in items:
        if s <= lo and hi <= e and (best is None or (s, order) > best[0]):
            best = ((s, order), payload)
    return None if best is None else best[1]


def _pieces(
    nodes: Sequence[Node],
    states: Sequence[StateInterval],
    allocations: Sequence[Allocation],
    start: datetime,
    end: datetime,
) -> dict[str, dict[tuple[str, str | None], int]]:
    """Per node: GPU-microseconds per (category, contract covering the moment or None)."""
    p0, p1 = _us(aware_utc(start, "period start")), _us(aware_utc(end, "period end"))
    if p1 < p0:
        raise AllocationInputError("period end is before its start")
    by_id = {n.id: n for n in nodes}
    if len(by_id) != len(nodes):
        raise AllocationInputError("a node id appears twice")
    node_states: dict[str, list] = defaultdict(list)
    for order, si in enumerate(states):
        s = max(_us(si.start), p0)
        e = min(p1 if si.end is None else _us(si.end), p1)
        if si.node_id in by_id and s < e:
            node_states[si.node_id].append((s, e, order, si.state))
    node_allocs: dict[str, list] = defaultdict(list)
    for order, a in enumerate(allocations):
        s, e = max(_us(a.start), p0), min(_us(a.end), p1)
        if a.node_id in by_id and s < e:
            node_allocs[a.node_id].append((s, e, order, a.contract_id))

    out: dict[str, dict[tuple[str, str | None], int]] = {}
    for node in nodes:
        sts, als = node_states.get(node.id, []), node_allocs.get(node.id, [])
        cuts = sorted(
            {p0, p1, *(x[0] for x in sts), *(x[1] for x in sts), *(x[0] for x in als), *(x[1] for x in als)}
        )
        acc: dict[tuple[str, str | None], int] = defaultdict(int)
        for lo, hi in pairwise(cuts):
            state = _latest(sts, lo, hi)
            contract = _latest(als, lo, hi)
            acc[(_category(state, contract is not None), contract)] += (hi - lo) * node.gpus
        out[node.id] = acc
    return out


def _to_hours(acc: Mapping[str, int]) -> CapacityTime:
    return CapacityTime(**{cat: acc.get(cat, 0) / _US_PER_HOUR for cat in CATEGORIES})


def capacity_time(
    nodes: Sequence[Node],
    states: Sequence[StateInterval],
    allocations: Sequence[Allocation],
    start: datetime,
    end: datetime,
) -> dict[str, CapacityTime]:
    """GPU-hours of each node in ``[start, end)`` by category; each sums to gpus × hours."""
    result = {}
    for node_id, acc in _pieces(nodes, states, allocations, start, end).items():
        per_cat: dict[str, int] = defaultdict(int)
        for (cat, _), us in acc.items():
            per_cat[cat] += us
        result[node_id] = _to_hours(per_cat)
    return result


def occupancy(
    nodes: Sequence[Node],
    states: Sequence[StateInterval],
    allocations: Sequence[Allocation],
    start: datetime,
    end: datetime,
    group_by: Grouping | None = None,
    customers: Mapping[str, str] | None = None,
) -> tuple[OccupancyRow, ...]:
    """Occupancy of ``[start, end)`` per group (one row keyed ``None`` for the whole fleet when
    ``group_by`` is None). ``customers`` maps contract id → customer id, for customer grouping.

    Rows are sorted by key (``None`` first); ``idle_nodes`` are the nodes with any idle time in the
    group, sorted by id.
    """
    group = Grouping(group_by) if group_by is not None else None
    if group is Grouping.CUSTOMER and customers is None:
        raise AllocationInputError("grouping by customer needs the contract → customer map")
    by_id = {n.id: n for n in nodes}
    sums: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    idle: dict[str | None, set[str]] = defaultdict(set)
    for node_id, acc in _pieces(nodes, states, allocations, start, end).items():
        node = by_id[node_id]
        # Every node's group shows up, even with nothing in it (an empty period, say).
        sums.setdefault(_key(group, node, None, customers), defaultdict(int))
        for (cat, contract), us in acc.items():
            key = _key(group, node, contract, customers)
            sums[key][cat] += us
            if cat == "idle" and us > 0:
                idle[key].add(node_id)
    rows = [OccupancyRow(key, _to_hours(sums[key]), tuple(sorted(idle[key]))) for key in sums]
    rows.sort(key=lambda r: (r.key is not None, r.key or ""))
    return tuple(rows)


def _key(
    group: Grouping | None, node: Node, contract: str | None, customers: Mapping[str, str] | None
) -> str | None:
    if group is None:
        return None
    if group is Grouping.SITE:
        return node.site
    if group is Grouping.MODEL:
        return node.model
    if group is Grouping.FABRIC:
        return f"{node.site}/{node.fabric}"
    if group is Grouping.NODE:
        return node.id
    if contract is None:
        return None
    if group is Grouping.CONTRACT:
        return contract
    assert customers is not None
    customer = customers.get(contract)
    if customer is None:
        raise AllocationInputError(f"no customer given for contract {contract}")
    return customer
