"""The pure allocator: which nodes serve which contract, from when to when.

No database, no clock, no I/O. The service loads plain data (nodes, contracts with capacity already
converted from PFLOPS to GPUs or nodes, existing allocations), calls :func:`allocate` or :func:`heal`,
and persists what comes back.

Rules, in the words of the domain:

- a node serves a contract only if its accelerator model is one the contract accepts and its state is
  ``in_service`` or ``accepted``;
- placement: ``same_fabric`` puts every node of a contract in one fabric (the NVLink/InfiniBand domain a
  job can span), ``same_site`` in one site, ``any`` anywhere;
- a node is never in two overlapping allocations, and between two different contracts it rests for
  the cleaning gap: released at ``t``, it is free for another contract from ``t + gap``;
- each (site, fabric) keeps a spare pool unallocated, for healing;
- contracts are packed onto as few fabrics as it can, best-fit decreasing: biggest contracts first,
  each into the fabric (or site) whose free capacity fits it most tightly;
- an existing allocation is never moved unless ``rebalance=True``;
- ties are broken by ids, so the same input always gives the same output.

Times are tz-aware datetimes; internally they are integer microseconds since the epoch, so that the
interval arithmetic is exact and vectorises with numpy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from computelease.errors import Unprocessable

__all__ = [
    "ALLOCATABLE_STATES",
    "DEFAULT_CLEANING_GAP",
    "Allocation",
    "AllocationInputError",
    "AllocationPlan",
    "AllocationPolicy",
    "CapacityUnit",
    "Contract",
    "HealResult",
    "Node",
    "NodeState",
    "Placement",
    "Release",
    "Replacement",
    "Shortfall",
    "ShortfallReason",
    "SparePolicy",
    "allocate",
    "heal",
]


class AllocationInputError(Unprocessable, ValueError):
    """Input the allocator cannot work with (naive datetime, duplicate id, empty interval...)."""


class NodeState(StrEnum):
    ORDERED = "ordered"
    DELIVERED = "delivered"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    FAULTY = "faulty"
    REPAIR = "repair"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"
    SOLD = "sold"


# An accepted node has passed its acceptance test, so it may be handed to a tenant; the service moves
# it to in_service when the allocation starts.
ALLOCATABLE_STATES = frozenset({NodeState.IN_SERVICE, NodeState.ACCEPTED})


class Placement(StrEnum):
    SAME_FABRIC = "same_fabric"
    SAME_SITE = "same_site"
    ANY = "any"


class CapacityUnit(StrEnum):
    GPUS = "gpus"
    NODES = "nodes"


class ShortfallReason(StrEnum):
    NO_COMPATIBLE_MODEL = "no_compatible_model"
    """No allocatable node of an accepted model (in the contract's placement domain)."""
    INSUFFICIENT_CAPACITY = "insufficient_capacity"
    """Even idle and without spares, all compatible nodes together are fewer than the contract needs."""
    PLACEMENT = "placement"
    """Enough compatible nodes in total, but not within any single fabric / site the placement allows."""
    OVERLAPPING_ALLOCATIONS = "overlapping_allocations"
    """Enough compatible nodes in one domain, but too many are booked (or cleaning) during the term."""
    SPARES_RESERVED = "spares_reserved"
    """Free nodes exist, but handing them out would eat into the spare pool kept for healing."""


# Long enough to wipe local disks, reimage and rerun a short acceptance check between two tenants.
DEFAULT_CLEANING_GAP = timedelta(hours=4)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def aware_utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise AllocationInputError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")
    return value.astimezone(UTC)


_E = TypeVar("_E", bound=StrEnum)


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _enum(kind: type[_E], value: object, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise AllocationInputError(f"{what}: {value!r} is not one of {allowed}") from None


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    state: NodeState
    model: str
    site: str
    fabric: str
    gpus: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", _enum(NodeState, self.state, f"node {self.id} state"))
        if self.gpus < 1:
            raise AllocationInputError(f"node {self.id}: gpus must be at least 1, got {self.gpus}")


@dataclass(frozen=True, slots=True)
class Contract:
    """Capacity wanted over ``[start, end)``; ``quantity`` is in ``unit`` (GPUs or whole nodes)."""

    id: str
    quantity: int
    unit: CapacityUnit
    models: frozenset[str]
    placement: Placement
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        models = frozenset({self.models}) if isinstance(self.models, str) else frozenset(self.models)
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "unit", _enum(CapacityUnit, self.unit, f"contract {self.id} unit"))
        object.__setattr__(
            self, "placement", _enum(Placement, self.placement, f"contract {self.id} placement")
        )
        object.__setattr__(self, "start", aware_utc(self.start, f"contract {self.id} start"))
        object.__setattr__(self, "end", aware_utc(self.end, f"contract {self.id} end"))
        if self.quantity < 1:
            raise AllocationInputError(f"contract {self.id}: quantity must be at least 1")
        if not models:
            raise AllocationInputError(f"contract {self.id}: accepts no accelerator model")
        if self.end <= self.start:
            raise AllocationInputError(f"contract {self.id}: end must be after start")


@dataclass(frozen=True, slots=True)
class Allocation:
    """Node ``node_id`` serves contract ``contract_id`` over ``[start, end)``."""

    node_id: str
    contract_id: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", aware_utc(self.start, f"allocation {self.node_id} start"))
        object.__setattr__(self, "end", aware_utc(self.end, f"allocation {self.node_id} end"))
        if self.end < self.start:
            raise AllocationInputError(
                f"allocation of node {self.node_id} to {self.contract_id}: end before start"
            )


@dataclass(frozen=True, slots=True)
class SparePolicy:
    """Nodes of each (site, fabric) kept unallocated, so that a faulty node can be replaced at once.

    A fabric keeps ``per_fabric[(site, fabric)]`` spares if given, otherwise
    ``max(count, ceil(fraction × its allocatable nodes))``.
    """

    count: int = 0
    fraction: float = 0.0
    per_fabric: Mapping[tuple[str, str], int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.count < 0 or not 0.0 <= self.fraction <= 1.0:
            raise AllocationInputError("spares: count must be ≥ 0 and fraction within [0, 1]")
        if any(v < 0 for v in self.per_fabric.values()):
            raise AllocationInputError("spares: per-fabric counts must be ≥ 0")
        object.__setattr__(self, "per_fabric", MappingProxyType(dict(self.per_fabric)))

    def for_fabric(self, site: str, fabric: str, allocatable_nodes: int) -> int:
        override = self.per_fabric.get((site, fabric))
        if override is not None:
            return override
        # The epsilon keeps 0.1 × 30 from becoming 4 through float error.
        return max(self.count, math.ceil(self.fraction * allocatable_nodes - 1e-9))


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    cleaning_gap: timedelta = DEFAULT_CLEANING_GAP
    spares: SparePolicy = field(default_factory=SparePolicy)

    def __post_init__(self) -> None:
        if self.cleaning_gap < timedelta(0):
            raise AllocationInputError("cleaning gap must not be negative")


@dataclass(frozen=True, slots=True)
class Shortfall:
    """``missing`` units of contract ``contract_id`` could not be placed, and why."""

    contract_id: str
    missing: int
    unit: CapacityUnit
    reason: ShortfallReason
    detail: str


@dataclass(frozen=True, slots=True)
class Release:
    """With ``rebalance``: an existing allocation now ends at ``new_end`` (``== start``: dropped)."""

    allocation: Allocation
    new_end: datetime


@dataclass(frozen=True, slots=True)
class AllocationPlan:
    assignments: tuple[Allocation, ...]
    shortfalls: tuple[Shortfall, ...]
    released: tuple[Release, ...] = ()


@dataclass(frozen=True, slots=True)
class Replacement:
    """Contract ``contract_id`` moves from ``old_node_id`` to ``new_node_id`` over ``[start, end)``.

    The service ends the old allocation at ``start`` (drops it if it had not begun) and records a new
    one for the new node.
    """

    contract_id: str
    old_node_id: str
    new_node_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class HealResult:
    replacements: tuple[Replacement, ...]
    shortfalls: tuple[Shortfall, ...]


# --------------------------------------------------------------------------------------------------
# the fleet as arrays


@dataclass(slots=True)
class _Compat:
    mask: np.ndarray  # allocatable and of an accepted model
    gpus: int  # GPUs per node when every compatible node has the same count, else 0
    max_gpus: int
    models: tuple[int, ...]  # model codes present among the compatible nodes


class _Fleet:
    """Nodes sorted by (site, fabric, most GPUs first, id): each fabric is one contiguous slice."""

    def __init__(self, nodes: Sequence[Node], spares: SparePolicy) -> None:
        ordered = sorted(nodes, key=lambda n: (n.site, n.fabric, -n.gpus, n.id))
        self.nodes = ordered
        self.index = {n.id: i for i, n in enumerate(ordered)}
        if len(self.index) != len(ordered):
            seen: set[str] = set()
            dup = next(n.id for n in ordered if n.id in seen or seen.add(n.id))
            raise AllocationInputError(f"node id {dup} appears twice")
        n = len(ordered)
        self.size = n
        fabrics: list[tuple[str, str]] = []
        fab = np.empty(n, dtype=np.int64)
        for i, node in enumerate(ordered):
            key = (node.site, node.fabric)
            if not fabrics or fabrics[-1] != key:
                fabrics.append(key)
            fab[i] = len(fabrics) - 1
        self.fabrics = fabrics
        self.fab = fab
        counts = np.bincount(fab, minlength=len(fabrics))
        self.hi = np.cumsum(counts)
        self.lo = self.hi - counts
        self.sites = sorted({s for s, _ in fabrics})
        site_index = {s: i for i, s in enumerate(self.sites)}
        self.fab_site = np.array([site_index[s] for s, _ in fabrics], dtype=np.int64)
        self.models = sorted({node.model for node in ordered})
        model_index = {m: i for i, m in enumerate(self.models)}
        self.model = np.array([model_index[node.model] for node in ordered], dtype=np.int64)
        self.gpus = np.array([node.gpus for node in ordered], dtype=np.int64)
        self.alloc_ok = np.array([node.state in ALLOCATABLE_STATES for node in ordered], dtype=bool)
        per_fabric = self.per_fabric(self.alloc_ok)
        self.spare = np.array(
            [spares.for_fabric(s, f, int(c)) for (s, f), c in zip(fabrics, per_fabric, strict=True)],
            dtype=np.int64,
        )
        self._compat: dict[frozenset[str], _Compat] = {}

    def per_fabric(self, mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``mask`` (times ``weights``) per fabric; fabrics are contiguous slices."""
        if self.size == 0:
            return np.zeros(0, dtype=np.int64)
        values = mask.view(np.int8) if weights is None else np.where(mask, weights, 0)
        return np.add.reduceat(values, self.lo, dtype=np.int64)

    def compat(self, models: frozenset[str]) -> _Compat:
        hit = self._compat.get(models)
        if hit is None:
            codes = [i for i, m in enumerate(self.models) if m in models]
            mask = self.alloc_ok & np.isin(self.model, codes)
            g = np.unique(self.gpus[mask])
            present = tuple(int(m) for m in np.unique(self.model[mask]))
            hit = _Compat(mask, int(g[0]) if len(g) == 1 else 0, int(g.max()) if len(g) else 0, present)
            self._compat[models] = hit
        return hit


class _Bookings:
    """Every interval a node is booked for, as growable flat arrays, so that one vectorised pass
    finds the nodes that clash with a window."""

    def __init__(self, n_nodes: int, gap: int) -> None:
        self.n_nodes = n_nodes
        self.gap = gap
        self.n = 0
        cap = 1024
        self.node = np.empty(cap, dtype=np.int64)
        self.start = np.empty(cap, dtype=np.int64)
        self.end = np.empty(cap, dtype=np.int64)
        self.contract = np.empty(cap, dtype=np.int64)
        # start - gap and end + gap, the reach of a booking against other contracts
        self.start_gap = np.empty(cap, dtype=np.int64)
        self.end_gap = np.empty(cap, dtype=np.int64)
        self.contracts_booked: set[int] = set()

    def add(self, nodes: np.ndarray, start: int, end: int, contract: int) -> None:
        k = len(nodes)
        if self.n + k > len(self.node):
            cap = max(2 * len(self.node), self.n + k)
            for name in ("node", "start", "end", "contract", "start_gap", "end_gap"):
                old = getattr(self, name)
                new = np.empty(cap, dtype=np.int64)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        sl = slice(self.n, self.n + k)
        self.node[sl] = nodes
        self.start[sl] = start
        self.end[sl] = end
        self.contract[sl] = contract
        self.start_gap[sl] = start - self.gap
        self.end_gap[sl] = end + self.gap
        self.n += k
        self.contracts_booked.add(contract)

    def held_by(self, contract: int, w0: int, w1: int) -> np.ndarray:
        """Nodes ``contract`` itself holds at some moment of [w0, w1)."""
        n = self.n
        mine = (self.contract[:n] == contract) & (self.start[:n] < w1) & (self.end[:n] > w0)
        held = np.zeros(self.n_nodes, dtype=bool)
        held[self.node[:n][mine]] = True
        return held

    def busy(self, w0: int, w1: int, contract: int) -> np.ndarray:
        """Nodes that cannot take ``contract`` over ``[w0, w1)``.

        Another contract's booking [s, e) blocks [s - gap, e + gap); the same contract's blocks only
        [s, e), since a node needs no cleaning between two stretches of the same tenant.
        """
        busy = np.zeros(self.n_nodes, dtype=bool)
        n = self.n
        if n == 0:
            return busy
        clash = self.start_gap[:n] < w1
        clash &= self.end_gap[:n] > w0
        if contract in self.contracts_booked:
            same = self.contract[:n] == contract
            clash &= ~same | ((self.start[:n] < w1) & (self.end[:n] > w0))
        busy[self.node[:n][clash]] = True
        return busy


# --------------------------------------------------------------------------------------------------
# allocate


@dataclass(slots=True)
class _Job:
    contract: Contract
    code: int
    w0: datetime
    w1: datetime
    need: int
    size_gpus: int
    domain: np.ndarray | None  # fabrics the contract is held to by the nodes it already has


_BIG = np.iinfo(np.int64).max


def allocate(
    nodes: Sequence[Node],
    contracts: Sequence[Contract],
    existing: Sequence[Allocation] = (),
    *,
    policy: AllocationPolicy = AllocationPolicy(),
    as_of: datetime | None = None,
    rebalance: bool = False,
    allow_partial: bool = False,
) -> AllocationPlan:
    """Assign nodes to ``contracts`` around the ``existing`` allocations.

    Each contract is planned over ``[max(start, as_of), end)``. Capacity it already holds there
    (existing allocations with its id) counts towards its quantity; for the rest, new allocations
    cover the stretch where it is short. ``as_of`` (usually now) keeps the plan out of the past.

    ``rebalance=True`` (needs ``as_of``) releases every existing allocation from ``as_of`` on
    (reported in ``released``) and plans all contracts afresh; history before ``as_of`` stays.

    A contract that cannot be met in full gets a :class:`Shortfall` and no nodes, unless
    ``allow_partial``, in which case it gets what fits and the shortfall says what is missing.

    Best-fit decreasing: contracts by size in GPUs, biggest first; a ``same_fabric`` contract goes to
    the fabric whose usable capacity is the smallest that still fits; ``same_site`` to the tightest
    site, then within it as ``any``; ``any`` to the tightest single fabric if one fits, else the
    largest fabrics first until the rest fits one tightly.
    """
    as_of_utc = aware_utc(as_of, "as_of") if as_of is not None else None
    if rebalance and as_of_utc is None:
        raise AllocationInputError("rebalance needs as_of: history before it is never moved")
    fleet = _Fleet(nodes, policy.spares)
    codes: dict[str, int] = {}
    for c in contracts:
        if c.id in codes:
            raise AllocationInputError(f"contract id {c.id} appears twice")
        codes[c.id] = len(codes)

    released: list[Release] = []
    kept: list[Allocation] = []
    for a in existing:
        if rebalance and as_of_utc is not None and a.end > as_of_utc:
            new_end = max(a.start, as_of_utc)
            released.append(Release(a, new_end))
            if new_end > a.start:
                kept.append(Allocation(a.node_id, a.contract_id, a.start, new_end))
        elif a.end > a.start:
            kept.append(a)

    run = _Run(fleet, _Bookings(fleet.size, policy.cleaning_gap // _MICROSECOND), allow_partial)
    held: dict[str, list[Allocation]] = defaultdict(list)
    for a in kept:
        i = fleet.index.get(a.node_id)
        if i is None:
            continue  # a node the caller left out cannot clash with nodes it passed
        code = codes.setdefault(a.contract_id, len(codes))
        run.book(np.array([i]), _us(a.start), _us(a.end), code)
        held[a.contract_id].append(a)

    jobs: list[_Job] = []
    for c in contracts:
        job = _job(fleet, c, codes[c.id], held.get(c.id, ()), as_of_utc)
        if job is not None:
            jobs.append(job)
    jobs.sort(key=lambda j: (-j.size_gpus, j.w0, j.contract.id))
    for job in jobs:
        run.expect(job, +1)
    for job in jobs:
        run.expect(job, -1)
        run.place(job)

    assignments, shortfalls = run.assignments, run.shortfalls
    assignments.sort(key=lambda a: (a.contract_id, a.start, a.node_id))
    shortfalls.sort(key=lambda s: s.contract_id)
    released.sort(key=lambda r: (r.allocation.contract_id, r.allocation.node_id, r.allocation.start))
    return AllocationPlan(tuple(assignments), tuple(shortfalls), tuple(released))


def _job(
    fleet: _Fleet, c: Contract, code: int, held: Sequence[Allocation], as_of: datetime | None
) -> _Job | None:
    w0 = max(c.start, as_of) if as_of is not None else c.start
    w1 = c.end
    if w0 >= w1:
        return None
    compat = fleet.compat(c.models)
    per_unit = 1 if c.unit is CapacityUnit.NODES else 0
    # Clip what the contract holds to the window; each piece covers its node's GPUs (or one node).
    pieces = []
    for a in held:
        s, e = max(a.start, w0), min(a.end, w1)
        if s < e:
            i = fleet.index[a.node_id]
            pieces.append((s, e, i, per_unit or int(fleet.gpus[i])))
    need, h0, h1 = c.quantity, w0, w1
    domain = None
    if pieces:
        need, h0, h1 = _deficit(c.quantity, w0, w1, pieces)
        if need <= 0:
            return None
        domain = _domain(fleet, c.placement, [i for _, _, i, _ in pieces])
    size = need if c.unit is CapacityUnit.GPUS else need * (compat.max_gpus or 1)
    return _Job(c, code, h0, h1, need, size, domain)


def _deficit(
    quantity: int, w0: datetime, w1: datetime, pieces: list[tuple[datetime, datetime, int, int]]
) -> tuple[int, datetime, datetime]:
    """Largest shortfall of held capacity over the window, and the stretch from its first to last
    short moment. Planning that stretch with that amount may over-serve a dip in the middle; it never
    under-serves."""
    cuts = sorted({w0, w1, *(p[0] for p in pieces), *(p[1] for p in pieces)})
    need, h0, h1 = 0, None, None
    for lo, hi in pairwise(cuts):
        held = sum(units for s, e, _, units in pieces if s <= lo and hi <= e)
        short = quantity - held
        if short > 0:
            need = max(need, short)
            h0 = lo if h0 is None else h0
            h1 = hi
    if h0 is None or h1 is None:
        return 0, w0, w1
    return need, h0, h1


def _domain(fleet: _Fleet, placement: Placement, held_nodes: list[int]) -> np.ndarray | None:
    """Fabrics a contract may grow into, given the nodes it already holds: its fabric or its site.
    If data already spread it (it should not), the fabric/site holding most of it wins, ties by key."""
    if placement is Placement.ANY:
        return None
    fabs = fleet.fab[held_nodes]
    if placement is Placement.SAME_FABRIC:
        f = int(np.argmax(np.bincount(fabs, minlength=len(fleet.fabrics))))
        return np.arange(len(fleet.fabrics)) == f
    s = int(np.argmax(np.bincount(fleet.fab_site[fabs], minlength=len(fleet.sites))))
    return fleet.fab_site == s


def _capacity(
    fleet: _Fleet, mask: np.ndarray, limit: np.ndarray | None, unit: CapacityUnit, compat: _Compat
) -> np.ndarray:
    """Capacity per fabric, in the contract's unit, of the nodes in ``mask``, at most ``limit`` nodes
    of each fabric (taken most-GPUs-first, the order :func:`_take` uses)."""
    counts = fleet.per_fabric(mask)
    if limit is not None:
        counts = np.minimum(counts, limit)
    if unit is CapacityUnit.NODES:
        return counts
    if compat.gpus:
        return counts * compat.gpus
    if limit is None:
        return fleet.per_fabric(mask, fleet.gpus)
    rank = np.cumsum(mask)
    before = np.concatenate(([0], rank[fleet.hi - 1][:-1]))
    chosen = mask & (rank - before[fleet.fab] <= limit[fleet.fab])
    return fleet.per_fabric(chosen, fleet.gpus)


def _best(fleet: _Fleet, cap: np.ndarray, placement: Placement) -> int:
    if len(cap) == 0:
        return 0
    if placement is Placement.SAME_FABRIC:
        return int(cap.max())
    if placement is Placement.SAME_SITE:
        return int(np.bincount(fleet.fab_site, weights=cap, minlength=len(fleet.sites)).max())
    return int(cap.sum())


def _trusted(node_id: str, contract_id: str, start: datetime, end: datetime) -> Allocation:
    """An Allocation from values already checked, without the per-field validation: a run makes
    thousands of them."""
    a = object.__new__(Allocation)
    object.__setattr__(a, "node_id", node_id)
    object.__setattr__(a, "contract_id", contract_id)
    object.__setattr__(a, "start", start)
    object.__setattr__(a, "end", end)
    return a


def _pick(cap: np.ndarray, need: int, in_use: np.ndarray) -> int | None:
    """The fabric to put ``need`` units in whole.

    Best fit among fabrics already in use: the one whose free capacity is the smallest that fits.
    Only if none fits is an empty fabric opened, and then the largest: contracts come biggest first,
    so what follows fits in its remainder, and small fabrics are left empty rather than large ones
    (on the benchmark fleet this uses 1–2 fewer fabrics than opening the tightest empty one).
    """
    fits = cap >= need
    if not fits.any():
        return None
    used = fits & in_use
    if used.any():
        return int(np.argmin(np.where(used, cap, _BIG)))
    return int(np.argmax(np.where(fits, cap, -1)))


def _fill(cap: np.ndarray, need: int, in_use: np.ndarray) -> tuple[list[tuple[int, int]], int]:
    """One fabric if one fits; else whole fabrics, largest first, until the rest fits in one."""
    cap = cap.copy()
    out: list[tuple[int, int]] = []
    while need > 0 and len(cap):
        f = _pick(cap, need, in_use)
        if f is not None:
            out.append((f, need))
            return out, 0
        f = int(np.argmax(cap))
        got = int(cap[f])
        if got <= 0:
            break
        out.append((f, got))
        need -= got
        cap[f] = 0
    return out, need


def _take(
    fleet: _Fleet, f: int, cand: np.ndarray, units: int, unit: CapacityUnit, compat: _Compat
) -> np.ndarray:
    """The first candidates of fabric ``f`` (most GPUs first, then id) that make up ``units``."""
    lo, hi = int(fleet.lo[f]), int(fleet.hi[f])
    idx = np.flatnonzero(cand[lo:hi]) + lo
    if unit is CapacityUnit.NODES:
        k = units
    elif compat.gpus:
        k = -(-units // compat.gpus)
    else:
        k = int(np.searchsorted(np.cumsum(fleet.gpus[idx]), units)) + 1
    return idx[:k]


class _Run:
    """One allocation run: the fleet, its bookings, and what has been decided so far."""

    def __init__(self, fleet: _Fleet, bookings: _Bookings, allow_partial: bool) -> None:
        self.fleet = fleet
        self.bookings = bookings
        self.allow_partial = allow_partial
        # GPUs still to place for contracts that accept exactly one model, per model code.
        self.pending = np.zeros(len(fleet.models), dtype=np.int64)
        self.assignments: list[Allocation] = []
        self.shortfalls: list[Shortfall] = []

    def book(self, nodes: np.ndarray, w0: int, w1: int, code: int) -> None:
        self.bookings.add(nodes, w0, w1, code)

    def expect(self, job: _Job, sign: int) -> None:
        models = self.fleet.compat(job.contract.models).models
        if len(models) == 1:
            self.pending[models[0]] += sign * job.size_gpus

    def _model_order(self, compat: _Compat, cand: np.ndarray) -> list[int]:
        """For a contract that accepts several models: the model with the most free GPUs left over
        after the single-model contracts still to come, first. Greedy best fit alone would take the
        scarce model and strand those contracts."""
        fleet = self.fleet
        free = np.bincount(fleet.model[cand], weights=fleet.gpus[cand], minlength=len(fleet.models))
        headroom = free - self.pending
        return sorted(compat.models, key=lambda m: (-headroom[m], m))

    def choose(
        self, cap: np.ndarray, need: int, placement: Placement, in_use: np.ndarray
    ) -> tuple[list[tuple[int, int]], int]:
        """Where to take ``need`` units from: [(fabric, units)], and how much is still missing."""
        fleet = self.fleet
        if len(cap) == 0:
            return [], need
        if placement is Placement.SAME_FABRIC:
            f = _pick(cap, need, in_use)
            if f is not None:
                return [(f, need)], 0
            f = int(np.argmax(cap))
            got = int(cap[f])
            return ([(f, got)] if got > 0 else []), need - got
        if placement is Placement.SAME_SITE:
            site_cap = np.bincount(fleet.fab_site, weights=cap, minlength=len(fleet.sites))
            fits = site_cap >= need
            s = int(np.argmin(np.where(fits, site_cap, np.inf))) if fits.any() else int(np.argmax(site_cap))
            return _fill(np.where(fleet.fab_site == s, cap, 0), need, in_use)
        return _fill(cap, need, in_use)

    def place(self, job: _Job) -> None:
        fleet = self.fleet
        c = job.contract
        w0, w1 = _us(job.w0), _us(job.w1)
        compat = fleet.compat(c.models)
        busy = self.bookings.busy(w0, w1, job.code)
        cand = compat.mask & ~busy
        # Spares are counted over every allocatable node of the fabric, whatever its model.
        room = np.maximum(fleet.per_fabric(fleet.alloc_ok & ~busy) - fleet.spare, 0)
        # Fabrics with any node booked during the window count as in use: packing is about what
        # runs at the same time, not about a fabric used once last year.
        in_use = fleet.per_fabric(busy) > 0
        # A contract that accepts several models is placed on one model if it can: a tenant's job
        # rarely wants a mix, and it leaves the scarcer model to those who accept nothing else.
        tries = self._model_order(compat, cand) if len(compat.models) > 1 else []
        for m in [*tries, None]:
            mask = cand if m is None else cand & (fleet.model == m)
            cap = _capacity(fleet, mask, room, c.unit, compat)
            if job.domain is not None:
                cap = np.where(job.domain, cap, 0)
            picks, missing = self.choose(cap, job.need, c.placement, in_use)
            if missing == 0:
                cand = mask
                break
        if missing > 0:
            own = self.bookings.held_by(job.code, w0, w1)
            self.shortfalls.append(_diagnose(fleet, job, compat, cand, own, missing))
            if not self.allow_partial:
                return
        for f, units in picks:
            taken = _take(fleet, f, cand, units, c.unit, compat)
            self.book(taken, w0, w1, job.code)
            nodes = fleet.nodes
            self.assignments.extend(_trusted(nodes[i].id, c.id, job.w0, job.w1) for i in taken.tolist())


def _diagnose(
    fleet: _Fleet, job: _Job, compat: _Compat, cand: np.ndarray, own: np.ndarray, missing: int
) -> Shortfall:
    """Name the first constraint that makes the contract not fit: model, total size, placement,
    bookings, spares (each check relaxes the ones after it). Nodes the contract already holds in
    the window (``own``) are not counted: they are why it needs only ``job.need`` more."""
    c = job.contract
    where = " in the fabric or site it already occupies" if job.domain is not None else ""

    def restricted(cap: np.ndarray) -> np.ndarray:
        return cap if job.domain is None else np.where(job.domain, cap, 0)

    everywhere = _capacity(fleet, compat.mask & ~own, None, c.unit, compat)
    total = int(everywhere.sum())
    static = restricted(everywhere)
    free = restricted(_capacity(fleet, cand, None, c.unit, compat))
    models = ", ".join(sorted(c.models))
    unit = c.unit.value
    if total == 0:
        reason = ShortfallReason.NO_COMPATIBLE_MODEL
        detail = f"no in_service or accepted node of {models}"
    elif total < job.need:
        reason = ShortfallReason.INSUFFICIENT_CAPACITY
        detail = f"needs {job.need} {unit} of {models}; only {total} exist in the whole fleet"
    elif _best(fleet, static, c.placement) < job.need:
        reason = ShortfallReason.PLACEMENT
        scope = "fabric" if c.placement is Placement.SAME_FABRIC else "site"
        detail = (
            f"needs {job.need} {unit} in one {scope}; the largest {scope} has "
            f"{_best(fleet, static, c.placement)}{where}"
        )
    elif _best(fleet, free, c.placement) < job.need:
        reason = ShortfallReason.OVERLAPPING_ALLOCATIONS
        detail = (
            f"needs {job.need} {unit} from {job.w0.isoformat()} to {job.w1.isoformat()}; at most "
            f"{_best(fleet, free, c.placement)} are free of other bookings and cleaning gaps{where}"
        )
    else:
        reason = ShortfallReason.SPARES_RESERVED
        detail = f"needs {job.need} {unit}; the rest of the free nodes are the spare pool{where}"
    return Shortfall(c.id, missing, c.unit, reason, detail)


# --------------------------------------------------------------------------------------------------
# heal


def heal(
    nodes: Sequence[Node],
    contracts: Sequence[Contract],
    allocations: Sequence[Allocation],
    faulty_node_id: str,
    at: datetime,
    *,
    policy: AllocationPolicy = AllocationPolicy(),
) -> HealResult:
    """Replace ``faulty_node_id`` from ``at`` on, in every allocation of it that ends after ``at``.

    The replacement is an allocatable node of an accepted model with at least as many GPUs, free of
    other bookings (and their cleaning gaps) for the rest of the allocation, in the contract's
    placement domain: the same fabric for ``same_fabric``, the same site for ``same_site``. Spares are
    what healing is for, so the spare pool does not hold it back. Preference: same fabric, then same
    site, then the faulty node's model, then the fewest extra GPUs, then id.
    """
    at_utc = aware_utc(at, "at")
    by_id = {n.id: n for n in nodes}
    if len(by_id) != len(nodes):
        raise AllocationInputError("a node id appears twice")
    old = by_id.get(faulty_node_id)
    if old is None:
        raise AllocationInputError(f"unknown node {faulty_node_id}")
    contract_by_id = {c.id: c for c in contracts}
    gap = policy.cleaning_gap

    booked: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for a in allocations:
        if a.end > a.start:
            booked[a.node_id].append((a.start, a.end, a.contract_id))

    def free(node_id: str, contract_id: str, s: datetime, e: datetime) -> bool:
        for bs, be, bc in booked.get(node_id, ()):
            g = timedelta(0) if bc == contract_id else gap
            if bs < e + g and s < be + g:
                return False
        return True

    affected = sorted(
        (a for a in allocations if a.node_id == faulty_node_id and a.end > at_utc and a.end > a.start),
        key=lambda a: (a.start, a.contract_id),
    )
    candidates = sorted(
        (n for n in nodes if n.id != old.id and n.state in ALLOCATABLE_STATES and n.gpus >= old.gpus),
        key=lambda n: n.id,
    )
    replacements: list[Replacement] = []
    shortfalls: list[Shortfall] = []
    for a in affected:
        c = contract_by_id.get(a.contract_id)
        if c is None:
            raise AllocationInputError(f"allocation of {old.id} refers to unknown contract {a.contract_id}")
        s, e = max(a.start, at_utc), a.end
        compatible = [n for n in candidates if n.model in c.models]
        if c.placement is Placement.SAME_FABRIC:
            in_domain = [n for n in compatible if (n.site, n.fabric) == (old.site, old.fabric)]
        elif c.placement is Placement.SAME_SITE:
            in_domain = [n for n in compatible if n.site == old.site]
        else:
            in_domain = compatible
        ready = [n for n in in_domain if free(n.id, c.id, s, e)]
        if ready:
            new = min(
                ready,
                key=lambda n: (
                    (n.site, n.fabric) != (old.site, old.fabric),
                    n.site != old.site,
                    n.model != old.model,
                    n.gpus,
                    n.id,
                ),
            )
            replacements.append(Replacement(c.id, old.id, new.id, s, e))
            booked[new.id].append((s, e, c.id))
            continue
        missing = 1 if c.unit is CapacityUnit.NODES else old.gpus
        scope = {
            Placement.SAME_FABRIC: f"fabric {old.site}/{old.fabric}",
            Placement.SAME_SITE: f"site {old.site}",
        }
        where = scope.get(c.placement, "the fleet")
        if not compatible:
            reason = ShortfallReason.NO_COMPATIBLE_MODEL
            detail = f"no other allocatable node of {', '.join(sorted(c.models))} with ≥{old.gpus} GPUs"
        elif not in_domain:
            reason = ShortfallReason.PLACEMENT
            detail = f"compatible nodes exist, but none in {where}"
        else:
            reason = ShortfallReason.OVERLAPPING_ALLOCATIONS
            detail = (
                f"every compatible node in {where} is booked or cleaning "
                f"between {s.isoformat()} and {e.isoformat()}"
            )
        shortfalls.append(Shortfall(c.id, missing, c.unit, reason, detail))
    return HealResult(tuple(replacements), tuple(shortfalls))
