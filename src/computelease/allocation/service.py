"""Allocation use cases: plan (and persist) allocations, heal a faulty node, occupancy.

Every read starts from :func:`readable_allocations` / :func:`readable_replacements`: staff see all, a
customer the allocations of its own contracts, a lessor none (finance will widen it to the nodes its
leases finance). The pure work is in :mod:`.core` and :mod:`.occupancy`; this module loads plain data,
calls them, and writes back what they decide. Services only flush.

Contracts whose compatible models need different GPU counts (capacity in PFLOPS, say 1,562 H100 or
1,806 H800): the allocator takes one quantity, so models are grouped by the GPUs (or nodes) they need
and the contract is planned with one group at a time. A contract that already holds nodes keeps the
group of the nodes it holds (its quantity was counted in their GPUs); otherwise the group needing the
fewest GPUs among the models the fleet has comes first, and when that group cannot take the contract
the next groups are tried, in that order, around what was already planned.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session, defaultload, lazyload

from computelease import metrics
from computelease.allocation import core
from computelease.allocation import occupancy as occ
from computelease.allocation.models import Allocation, Replacement
from computelease.auth.core import SYSTEM, Principal, Role
from computelease.contracts import service as contracts_service
from computelease.contracts.core import CapacityUnit as ContractUnit
from computelease.contracts.core import ContractStatus
from computelease.contracts.models import Contract, Customer
from computelease.errors import AppError, Forbidden, Unprocessable
from computelease.fleet import service as fleet_service
from computelease.fleet.core import NodeState
from computelease.fleet.models import Gpu, Node, Site
from computelease.kit import events
from computelease.kit.time import as_utc, utcnow

log = logging.getLogger(__name__)

PLANNED_STATUSES = (ContractStatus.signed, ContractStatus.active)

# ---------------------------------------------------------------------------------------- scopes


def readable_allocations(principal: Principal) -> Select[tuple[Allocation]]:
    stmt = select(Allocation)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        own = select(Contract.id).where(Contract.customer_id == principal.customer_id)
        return stmt.where(Allocation.contract_id.in_(own))
    return stmt.where(false())


def readable_replacements(principal: Principal) -> Select[tuple[Replacement]]:
    stmt = select(Replacement)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        own = select(Contract.id).where(Contract.customer_id == principal.customer_id)
        return stmt.where(Replacement.contract_id.in_(own))
    return stmt.where(false())


def filter_allocations(
    stmt: Select[tuple[Allocation]],
    *,
    contract_id: int | None = None,
    node_id: int | None = None,
    active_at: datetime | None = None,
) -> Select[tuple[Allocation]]:
    if contract_id is not None:
        stmt = stmt.where(Allocation.contract_id == contract_id)
    if node_id is not None:
        stmt = stmt.where(Allocation.node_id == node_id)
    if active_at is not None:
        at = as_utc(active_at)
        stmt = stmt.where(Allocation.start_at <= at, Allocation.end_at > at)
    return stmt.order_by(Allocation.start_at, Allocation.id)


# ------------------------------------------------------------------------------ plain data in/out


def _fabric(fabric: str | None, node_id: int) -> str:
    # A node outside any fabric can join no multi-node job, so it is a fabric of its own.
    return fabric or f"~{node_id}"


def _plain_node(node: Node) -> core.Node:
    return core.Node(
        id=str(node.id),
        state=node.state.value,
        model=node.model,
        site=node.site.code,
        fabric=_fabric(node.fabric, node.id),
        gpus=max(node.gpu_count, 1),
    )


def _plain_allocation(a: Allocation) -> core.Allocation:
    return core.Allocation(str(a.node_id), str(a.contract_id), as_utc(a.start_at), as_utc(a.end_at))


@dataclass(frozen=True, slots=True)
class _Demand:
    """One way to serve a contract: ``quantity`` ``unit`` of any of ``models``."""

    quantity: int
    unit: core.CapacityUnit
    models: frozenset[str]


def _demands(session: Session, contract: Contract) -> list[_Demand]:
    """The contract's model groups, each with the quantity it needs, fewest GPUs first."""
    evaluation = contracts_service.evaluate(session, contract)
    if contract.capacity_unit is ContractUnit.nodes:
        unit, amount = core.CapacityUnit.NODES, (lambda c: int(contract.capacity))
    else:
        unit, amount = core.CapacityUnit.GPUS, (lambda c: c.gpus)
    groups: dict[int, set[str]] = defaultdict(set)
    for model, conversion in evaluation.conversions.items():
        groups[amount(conversion)].add(model)
    return [_Demand(q, unit, frozenset(groups[q])) for q in sorted(groups)]


def _plain_contract(contract: Contract, demand: _Demand) -> core.Contract:
    return core.Contract(
        id=str(contract.id),
        quantity=demand.quantity,
        unit=demand.unit,
        models=demand.models,
        placement=contract.placement.value,
        start=as_utc(contract.starts_at),
        end=as_utc(contract.ends_at),
    )


# ------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True, slots=True)
class PlannedAllocation:
    node_id: int
    node_serial: str
    contract_id: int
    contract_name: str
    start_at: datetime
    end_at: datetime
    id: int | None = None  # set once persisted


@dataclass(frozen=True, slots=True)
class PlanShortfall:
    contract_id: int
    contract_name: str
    missing: int
    unit: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class PlanRelease:
    node_id: int
    contract_id: int
    start_at: datetime
    end_at: datetime
    new_end_at: datetime


@dataclass
class PlanResult:
    as_of: datetime
    dry_run: bool
    assignments: list[PlannedAllocation] = field(default_factory=list)
    shortfalls: list[PlanShortfall] = field(default_factory=list)
    released: list[PlanRelease] = field(default_factory=list)


def _fleet(session: Session, principal: Principal) -> dict[int, Node]:
    return {n.id: n for n in session.scalars(fleet_service.readable_nodes(principal))}


def configured_policy() -> core.AllocationPolicy:
    """The allocation policy from settings (COMPUTELEASE_SPARE_NODES_PER_FABRIC, ..._SPARE_FRACTION,
    ..._CLEANING_GAP_HOURS)."""
    from computelease.config import get_settings

    settings = get_settings()
    return core.AllocationPolicy(
        cleaning_gap=timedelta(hours=settings.cleaning_gap_hours),
        spares=core.SparePolicy(count=settings.spare_nodes_per_fabric, fraction=settings.spare_fraction),
    )


def plan(
    session: Session,
    principal: Principal,
    *,
    as_of: datetime | None = None,
    contract_ids: Sequence[int] | None = None,
    rebalance: bool = False,
    dry_run: bool = False,
    policy: core.AllocationPolicy | None = None,
) -> PlanResult:
    """Plans every signed or active contract (or those of ``contract_ids``) from ``as_of`` (now) on,
    around the allocations already recorded, and records the new ones unless ``dry_run``."""
    if not principal.is_staff:
        raise Forbidden("planning allocations needs an operator or admin")
    policy = policy or configured_policy()
    as_of = as_utc(as_of) if as_of is not None else utcnow()
    nodes = _fleet(session, principal)
    stmt = contracts_service.readable_contracts(principal).where(Contract.status.in_(PLANNED_STATUSES))
    if contract_ids is not None:
        wanted = sorted(set(contract_ids))
        stmt = stmt.where(Contract.id.in_(wanted))
    contracts = {c.id: c for c in session.scalars(stmt.order_by(Contract.id))}
    if contract_ids is not None and (missing := set(contract_ids) - set(contracts)):
        raise Unprocessable(
            f"contract(s) {', '.join(map(str, sorted(missing)))} are not signed or active, or do not exist"
        )
    rows = list(session.scalars(select(Allocation).where(Allocation.end_at > Allocation.start_at)))
    existing = [_plain_allocation(a) for a in rows]
    result = PlanResult(as_of=as_of, dry_run=dry_run)

    plain_nodes = [_plain_node(n) for n in nodes.values()]
    present = {n.model for n in plain_nodes if n.state in core.ALLOCATABLE_STATES}
    held_models: dict[int, set[str]] = defaultdict(set)
    for a in rows:
        if a.contract_id in contracts and as_utc(a.end_at) > as_of and a.node_id in nodes:
            held_models[a.contract_id].add(nodes[a.node_id].model)

    options: dict[int, list[_Demand]] = {}
    for cid, contract in contracts.items():
        try:
            demands = _demands(session, contract)
        except AppError as exc:
            result.shortfalls.append(
                PlanShortfall(cid, contract.name, 0, contract.capacity_unit.value, "terms", exc.detail)
            )
            continue
        if held := held_models.get(cid):
            demands = [d for d in demands if d.models & held][:1] or demands
        else:
            # Groups the fleet has come first; the rest stay so that a shortfall names them.
            demands = sorted(demands, key=lambda d: (not (d.models & present), d.quantity))
        options[cid] = demands

    first = [_plain_contract(contracts[cid], ds[0]) for cid, ds in options.items()]
    outcome = core.allocate(plain_nodes, first, existing, policy=policy, as_of=as_of, rebalance=rebalance)
    assignments = list(outcome.assignments)
    shortfalls = {s.contract_id: s for s in outcome.shortfalls}
    if rebalance:
        kept = {
            (r.allocation.node_id, r.allocation.contract_id, r.allocation.start) for r in outcome.released
        }
        booked = [a for a in existing if (a.node_id, a.contract_id, a.start) not in kept]
        booked += [
            core.Allocation(r.allocation.node_id, r.allocation.contract_id, r.allocation.start, r.new_end)
            for r in outcome.released
            if r.new_end > r.allocation.start
        ]
    else:
        booked = list(existing)
    for cid_s in sorted(shortfalls, key=int):
        for demand in options[int(cid_s)][1:]:
            retry = core.allocate(
                plain_nodes,
                [_plain_contract(contracts[int(cid_s)], demand)],
                booked + assignments,
                policy=policy,
                as_of=as_of,
            )
            if not retry.shortfalls:
                assignments += retry.assignments
                del shortfalls[cid_s]
                break

    for s in sorted(shortfalls.values(), key=lambda s: int(s.contract_id)):
        c = contracts[int(s.contract_id)]
        result.shortfalls.append(
            PlanShortfall(c.id, c.name, s.missing, s.unit.value, s.reason.value, s.detail)
        )

    by_key = {(str(a.node_id), str(a.contract_id), as_utc(a.start_at)): a for a in rows}
    for r in outcome.released:
        a = r.allocation
        result.released.append(PlanRelease(int(a.node_id), int(a.contract_id), a.start, a.end, r.new_end))
        if dry_run:
            continue
        row = by_key[(a.node_id, a.contract_id, a.start)]
        if r.new_end > a.start:
            row.end_at = r.new_end
        else:
            session.delete(row)
    if not dry_run:
        session.flush()
    for a in sorted(assignments, key=lambda a: (int(a.contract_id), a.start, int(a.node_id))):
        node, contract = nodes[int(a.node_id)], contracts[int(a.contract_id)]
        row_id = None
        if not dry_run:
            row = Allocation(node_id=node.id, contract_id=contract.id, start_at=a.start, end_at=a.end)
            session.add(row)
            session.flush()
            row_id = row.id
        result.assignments.append(
            PlannedAllocation(node.id, node.serial, contract.id, contract.name, a.start, a.end, row_id)
        )
    return result


# ------------------------------------------------------------------------------------------ heal


@dataclass
class HealOutcome:
    replacements: list[Replacement] = field(default_factory=list)
    shortfalls: list[PlanShortfall] = field(default_factory=list)


def heal(
    session: Session,
    node_id: int,
    at: datetime,
    *,
    reason: str = "",
    policy: core.AllocationPolicy | None = None,
) -> HealOutcome:
    """Moves every allocation of node ``node_id`` that runs past ``at`` to a compatible spare in the
    contract's placement domain, from ``at`` on; records a :class:`Replacement` for each move."""
    policy = policy or configured_policy()
    at = as_utc(at)
    outcome = HealOutcome()
    affected = list(
        session.scalars(
            select(Allocation)
            .where(Allocation.node_id == node_id, Allocation.end_at > at)
            .order_by(Allocation.id)
        )
    )
    if not affected:
        return outcome  # the common case (a node nobody rents): no need to load the fleet
    nodes = _fleet(session, SYSTEM)
    old = nodes[node_id]
    plain_contracts = []
    for cid in sorted({a.contract_id for a in affected}):
        contract = next(a.contract for a in affected if a.contract_id == cid)
        try:
            conversions = contracts_service.evaluate(session, contract).conversions
        except AppError:
            # Terms the catalog no longer supports must not block the node's state change.
            conversions = {}
        # Only models that deliver what the old node did per GPU: a slower GPU would under-serve.
        same = conversions.get(old.model)
        models = {m for m, c in conversions.items() if same is None or c.gpus == same.gpus} | {old.model}
        plain_contracts.append(
            core.Contract(
                id=str(cid),
                quantity=1,
                unit=core.CapacityUnit.NODES,
                models=frozenset(models),
                placement=contract.placement.value,
                start=as_utc(contract.starts_at),
                end=as_utc(contract.ends_at),
            )
        )
    rows = list(session.scalars(select(Allocation).where(Allocation.end_at > at)))
    result = core.heal(
        [_plain_node(n) for n in nodes.values()],
        plain_contracts,
        [_plain_allocation(a) for a in rows],
        str(node_id),
        at,
        policy=policy,
    )
    for rep in result.replacements:
        cid, new_id = int(rep.contract_id), int(rep.new_node_id)
        for row in affected:
            if row.contract_id != cid or as_utc(row.end_at) != rep.end:
                continue
            if max(as_utc(row.start_at), at) != rep.start:
                continue
            if as_utc(row.start_at) >= rep.start:
                session.delete(row)
            else:
                row.end_at = rep.start
        session.add(
            Allocation(node_id=new_id, contract_id=cid, start_at=rep.start, end_at=rep.end),
        )
        replacement = Replacement(
            contract_id=cid, old_node_id=node_id, new_node_id=new_id, at=rep.start, reason=reason[:500]
        )
        session.add(replacement)
        outcome.replacements.append(replacement)
    for s in result.shortfalls:
        c = next(a.contract for a in affected if a.contract_id == int(s.contract_id))
        log.warning("healing node %s for contract %s: %s", old.serial, c.name, s.detail)
        outcome.shortfalls.append(
            PlanShortfall(c.id, c.name, s.missing, s.unit.value, s.reason.value, s.detail)
        )
    session.flush()
    return outcome


_DOWN = frozenset({NodeState.faulty, NodeState.repair})


def _on_node_state_changed(
    session: Session, *, node_id: int, from_: NodeState | None, to: NodeState, at: datetime, **_: Any
) -> None:
    if NodeState(to) in _DOWN:
        heal(session, node_id, at, reason=f"node went {NodeState(to).value}")


events.subscribe("node.state_changed", _on_node_state_changed)

_OVER = frozenset({ContractStatus.ended, ContractStatus.terminated})


def _on_contract_status_changed(
    session: Session, *, contract_id: int, to: ContractStatus, at: datetime, **_: Any
) -> None:
    """A contract that ends or is terminated gives its nodes back from that moment: its allocations
    stop there (those not begun yet go), so occupancy and the planner see the nodes free."""
    if ContractStatus(to) not in _OVER:
        return
    at = as_utc(at)
    for a in session.scalars(
        select(Allocation).where(Allocation.contract_id == contract_id, Allocation.end_at > at)
    ):
        if as_utc(a.start_at) >= at:
            session.delete(a)
        else:
            a.end_at = at
    session.flush()


events.subscribe("contract.status_changed", _on_contract_status_changed)


# ------------------------------------------------------------------------------------- occupancy

GROUPINGS = ("site", "model", "fabric", "customer", "contract")
CUSTOMER_GROUPINGS = ("contract", "customer")


@dataclass(frozen=True, slots=True)
class OccupancyLine:
    key: str | None
    label: str
    in_service_gpu_hours: float
    allocated_gpu_hours: float
    down_gpu_hours: float
    occupancy: float | None  # a fraction; None when nothing was in service
    idle_nodes: tuple[str, ...]  # serials

    @property
    def occupancy_pct(self) -> float | None:
        return None if self.occupancy is None else round(100.0 * self.occupancy, 4)


def _occupancy_inputs(
    session: Session, principal: Principal, start: datetime, end: datetime
) -> tuple[list[core.Node], dict[int, str], list[occ.StateInterval], list[Allocation]]:
    """The plain nodes (and their serials), state intervals and allocations of ``[start, end)``.

    Nodes are read as columns with one GPU count per node: occupancy needs no Node objects, and loading
    100,000 GPU rows to count them took most of a large fleet's dashboard."""
    gpus = dict(session.execute(select(Gpu.node_id, func.count()).group_by(Gpu.node_id)).all())
    stmt = (
        fleet_service.readable_nodes(principal)
        .with_only_columns(Node.id, Node.state, Node.model, Site.code, Node.fabric, Node.serial)
        .join(Site, Site.id == Node.site_id)
    )
    nodes, serials = [], {}
    for node_id, state, model, site, fabric, serial in session.execute(stmt):
        nodes.append(
            core.Node(
                id=str(node_id),
                state=state.value,
                model=model,
                site=site,
                fabric=_fabric(fabric, node_id),
                gpus=max(gpus.get(node_id, 0), 1),
            )
        )
        serials[node_id] = serial
    states = [
        occ.StateInterval(str(s.node_id), s.state.value, s.start, s.end)
        for s in fleet_service.state_intervals(session, principal, start, end)
    ]
    allocations = list(
        session.scalars(
            readable_allocations(principal)
            .where(Allocation.start_at < end, Allocation.end_at > start)
            # Ids and the contract's name and customer are all occupancy reads of an allocation.
            .options(lazyload(Allocation.node), defaultload(Allocation.contract).lazyload(Contract.events))
        )
    )
    return nodes, serials, states, allocations


def occupancy(
    session: Session, principal: Principal, start: datetime, end: datetime, group_by: str | None = None
) -> list[OccupancyLine]:
    """In-service, allocated and down GPU-hours, occupancy and idle nodes of ``[start, end)`` per group.

    A customer sees only its contracts' capacity (grouped by contract or customer): the fleet's idle
    capacity, and what other tenants hold, are the operator's business. A lessor sees nothing yet.
    """
    (lines,) = occupancies(session, principal, start, end, (group_by,))
    return lines


def _grouping(principal: Principal, group_by: str | None) -> str:
    if principal.is_staff:
        group = group_by or "site"
    elif principal.role == Role.customer:
        group = group_by or "contract"
        if group not in CUSTOMER_GROUPINGS:
            raise Forbidden("a customer sees occupancy by contract or customer only")
    else:
        raise Forbidden("occupancy is for operators and customers")
    if group not in GROUPINGS:
        raise Unprocessable(f"group_by must be one of {', '.join(GROUPINGS)}")
    return group


def occupancies(
    session: Session,
    principal: Principal,
    start: datetime,
    end: datetime,
    groupings: Sequence[str | None],
) -> list[list[OccupancyLine]]:
    """:func:`occupancy` for several groupings of the same period, the records read once."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise Unprocessable("end must be after start")
    if end - start > timedelta(days=3700):
        raise Unprocessable("a period of at most ten years, please")
    groups = [_grouping(principal, g) for g in groupings]
    plain_nodes, serials, states, rows = _occupancy_inputs(session, principal, start, end)
    customers = {str(a.contract_id): str(a.contract.customer_id) for a in rows}
    plain_allocations = [_plain_allocation(a) for a in rows]
    out = []
    for group in groups:
        result = occ.occupancy(
            plain_nodes, states, plain_allocations, start, end, group_by=group, customers=customers
        )
        labels = _labels(session, group, rows)
        lines = []
        for r in result:
            if not principal.is_staff and r.key is None:
                continue  # time no allocation covers: the fleet's idle capacity
            idle = () if not principal.is_staff else tuple(sorted(serials[int(i)] for i in r.idle_nodes))
            lines.append(
                OccupancyLine(
                    key=r.key,
                    label=labels.get(r.key, r.key or "") if r.key is not None else "",
                    in_service_gpu_hours=r.capacity.in_service,
                    allocated_gpu_hours=r.capacity.allocated,
                    down_gpu_hours=r.capacity.down,
                    occupancy=r.capacity.occupancy,
                    idle_nodes=idle,
                )
            )
        out.append(lines)
    return out


def _labels(session: Session, group: str, rows: Iterable[Allocation]) -> Mapping[str | None, str]:
    if group == "contract":
        return {str(a.contract_id): a.contract.name for a in rows}
    if group == "customer":
        ids = {a.contract.customer_id for a in rows}
        found = session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids))) if ids else []
        return {str(i): name for i, name in found}
    return {}


def daily_occupancy(
    session: Session, principal: Principal, days: int = 90, *, until: datetime | None = None
) -> list[tuple[datetime, float | None]]:
    """The whole visible fleet's occupancy per UTC day, for the last ``days`` days (staff)."""
    if not principal.is_staff:
        raise Forbidden("the fleet's occupancy trend is for operators")
    until = as_utc(until) if until is not None else utcnow()
    end = until.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=days)
    plain_nodes, _, states, rows = _occupancy_inputs(session, principal, start, end)
    plain_allocs = [_plain_allocation(a) for a in rows]
    out = []
    for i in range(days):
        d0 = start + timedelta(days=i)
        rows = occ.occupancy(plain_nodes, states, plain_allocs, d0, d0 + timedelta(days=1))
        # An empty fleet has no row at all: no occupancy, not an error.
        out.append((d0, rows[0].capacity.occupancy if rows else None))
    return out


# --------------------------------------------------------------------------------------- metrics


@metrics.register
def _allocation_gauges(session: Session) -> Iterable[Metric]:
    now = utcnow()
    ratio = GaugeMetricFamily(
        "computelease_occupancy_ratio",
        "Allocated GPUs / in-service GPUs now, by site and accelerator model",
        labels=["site", "model"],
    )
    allocated = GaugeMetricFamily(
        "computelease_allocated_gpus", "GPUs allocated now, by contract", labels=["contract"]
    )
    nodes = _fleet(session, SYSTEM)
    active = session.execute(
        select(Allocation.node_id, Allocation.contract_id).where(
            Allocation.start_at <= now, Allocation.end_at > now
        )
    ).all()
    holder = {node_id: contract_id for node_id, contract_id in active}
    in_service: dict[tuple[str, str], int] = defaultdict(int)
    used: dict[tuple[str, str], int] = defaultdict(int)
    per_contract: dict[int, int] = defaultdict(int)
    for node in nodes.values():
        key = (node.site.code, node.model)
        taken = node.id in holder and node.state in (NodeState.in_service, NodeState.accepted)
        if node.state is NodeState.in_service or taken:
            in_service[key] += node.gpu_count
        if taken:
            used[key] += node.gpu_count
            per_contract[holder[node.id]] += node.gpu_count
    for key, total in sorted(in_service.items()):
        ratio.add_metric(list(key), used[key] / total if total else 0.0)
    for contract_id, gpus in sorted(per_contract.items()):
        allocated.add_metric([str(contract_id)], float(gpus))
    yield ratio
    yield allocated
