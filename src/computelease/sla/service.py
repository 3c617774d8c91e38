"""The SLA of a stored contract for a month: records in, :func:`computelease.sla.core.compute_sla` out.

The intervals handed to the pure core are built from three records:

- **allocations** (which node served the contract, when): one ``allocated`` interval per GPU of the
  node, cut to the service window; a replacement node counts from its allocation's start;
- **GPU health intervals** from telemetry: ``unhealthy`` and ``down`` time (and ``degraded``) of those
  GPUs, linked to the incident that covers it; healthy time needs no record of its own;
- **maintenance windows** on the contract's nodes, or on every node;
- **acceptance runs**: each GPU's measured delivered share (``probe.service.share_history``, matched
  by the GPU's UUID, else by node and index), from the run that measured it until the next run. The
  GPU's allocated time is weighted by it, so a card measured at 0.9 of its calibrated rating delivers
  0.9 of its time; below the contract's threshold (:func:`degraded_below`) the time is also labelled
  ``degraded`` with the measurement as the reason. Time before a card's first measurement counts as a
  full share, so a run recorded today never rewrites a month already billed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from computelease import metrics
from computelease.allocation.models import Allocation
from computelease.auth.core import SYSTEM, Principal
from computelease.contracts import core as contracts_core
from computelease.contracts import service as contracts
from computelease.contracts.models import Contract
from computelease.errors import AppError
from computelease.fleet.models import Gpu, Node
from computelease.kit.time import utcnow
from computelease.money import CONTEXT
from computelease.probe import service as probe
from computelease.sla import core
from computelease.telemetry.health import Health
from computelease.telemetry.models import GpuHealthInterval, MaintenanceWindow

# Health states the SLA counts against delivery; healthy time is what the allocation already says.
_COUNTED = {Health.UNHEALTHY: core.UNHEALTHY, Health.DOWN: core.DOWN, Health.DEGRADED: core.DEGRADED}


# Without a minimum spec in the contract, a card is degraded below its calibrated rating: the SKU's
# bf16 acceptance pass level, which the measured share is already relative to.
DEFAULT_DEGRADED_BELOW = Decimal(1)


def gpu_key(node: Node, index: int) -> str:
    return f"{node.serial}#{index}"


def degraded_below(session: Session, contract: Contract, model: str) -> Decimal:
    """The delivered share below which a GPU of ``model`` is degraded for ``contract``.

    A contract with a minimum spec (``min_tflops`` at a precision) accepts cards down to that fraction of
    the catalog figure (900 of the H100's 989.4 dense BF16 TFLOPS: 0.9096…); the same fraction of the
    calibrated rating is its threshold, never above 1. Otherwise, and when the catalog has no figure for
    the model, :data:`DEFAULT_DEGRADED_BELOW`.
    """
    if contract.min_tflops is None:
        return DEFAULT_DEGRADED_BELOW
    try:
        accelerator = contracts.catalog(session).accelerator(model)
    except AppError:
        return DEFAULT_DEGRADED_BELOW
    figure = accelerator.tflops(contract.min_tflops_precision or "bf16")
    if figure is None or figure.value is None or figure.value <= 0:
        return DEFAULT_DEGRADED_BELOW
    with localcontext(CONTEXT):
        return min(DEFAULT_DEGRADED_BELOW, Decimal(contract.min_tflops) / figure.value)


def _shares_of(
    shares: dict[probe.GpuKey, list[tuple[datetime, Decimal | None]]],
    node_id: int,
    index: int,
    uuid: str | None,
    lo: datetime,
    hi: datetime,
) -> list[tuple[datetime, datetime, Decimal | None]]:
    """``[lo, hi)`` cut where the GPU's measured share changes: (start, end, share), None = unmeasured."""
    runs = (shares.get(uuid) if uuid else None) or shares.get((node_id, index)) or []
    pieces: list[tuple[datetime, datetime, Decimal | None]] = []
    current: Decimal | None = None
    at = lo
    for when, share in runs:
        if when <= lo:
            current = share
            continue
        if when >= hi:
            break
        pieces.append((at, when, current))
        at, current = when, share
    pieces.append((at, hi, current))
    # Stored to 4 places; shown as measured (0.9, not 0.9000). Shares are at most 1: no exponent.
    return [(a, b, None if v is None else v.normalize()) for a, b, v in pieces if b > a]


def policy_of(contract: Contract) -> core.SlaPolicy:
    p = contract.sla_policy
    if p is None:
        # No policy: availability is still measured, and no credit is owed.
        return core.SlaPolicy()
    return core.SlaPolicy(
        target_pct=p.target_pct,
        tiers=tuple(core.CreditTier(t.below, t.credit_pct) for t in contracts.credit_tiers(p)),
        cap_pct=p.cap_pct,
        maintenance_allowance_hours=p.maintenance_allowance_hours,
        notice_hours=p.notice_hours,
    )


def window_of(contract: Contract, period: str) -> core.ContractWindow:
    terms = contracts.terms_of(contract)
    quantity = contracts_core.BillableQuantity(gpus=contract.billable_gpus, pflops=contract.billable_pflops)
    fee = contracts_core.month_fee(terms.price, period, tz=contract.timezone, quantity=quantity)
    gpus = contract.billable_gpus
    if gpus is None:
        # A PFLOPS contract over several models has no single GPU count; the allocator's own demand
        # is then the best measure, and without one the capacity is taken as GPUs.
        gpus = int(contract.capacity)
    return core.ContractWindow(
        start=contract.starts_at,
        end=contract.ends_at,
        contracted_gpus=gpus,
        monthly_fee=fee,
        tz=contract.timezone,
        currency=contract.currency,
        contract_id=str(contract.id),
    )


@dataclass(frozen=True)
class _NodeInfo:
    serial: str
    model: str
    gpus: tuple[tuple[int, str | None], ...]  # (index, uuid)


@dataclass
class Sources:
    """What the SLA of many contracts is computed from, loaded in a handful of queries: allocations,
    their nodes and GPUs, health intervals, measured shares and maintenance windows overlapping a
    window. A month close measures thousands of contracts; per-contract queries would dominate it."""

    start: datetime
    end: datetime
    allocations: dict[int, list[tuple[int, datetime, datetime]]]  # contract id -> (node id, start, end)
    nodes: dict[int, _NodeInfo]
    health: dict[int, list[GpuHealthInterval]]  # node id -> intervals, in time order
    shares: dict[probe.GpuKey, list[tuple[datetime, Decimal | None]]]
    maintenance: list[core.MaintenanceWindow]


def _chunks(ids: list[int], size: int = 5000) -> Iterable[list[int]]:
    # Bounded IN lists: SQLite caps bound parameters per statement.
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def load_sources(
    session: Session, start: datetime, end: datetime, contract_ids: Iterable[int] | None = None
) -> Sources:
    """The records of ``contract_ids`` (None: every contract) overlapping ``[start, end)``."""
    stmt = select(Allocation.contract_id, Allocation.node_id, Allocation.start_at, Allocation.end_at).where(
        Allocation.start_at < end, Allocation.end_at > start
    )
    rows: list = []
    if contract_ids is None:
        rows = list(session.execute(stmt))
    else:
        for chunk in _chunks(sorted(set(contract_ids))):
            rows.extend(session.execute(stmt.where(Allocation.contract_id.in_(chunk))))
    allocations: dict[int, list[tuple[int, datetime, datetime]]] = {}
    for contract_id, node_id, a_start, a_end in sorted(rows, key=lambda r: (r[2], r[0], r[1])):
        allocations.setdefault(contract_id, []).append((node_id, a_start, a_end))
    node_ids = sorted({r[1] for r in rows})
    nodes: dict[int, _NodeInfo] = {}
    gpus: dict[int, list[tuple[int, str | None]]] = {}
    health: dict[int, list[GpuHealthInterval]] = {}
    for chunk in _chunks(node_ids):
        for node_id, index, uuid in session.execute(
            select(Gpu.node_id, Gpu.index, Gpu.uuid).where(Gpu.node_id.in_(chunk)).order_by(Gpu.index)
        ):
            gpus.setdefault(node_id, []).append((index, uuid))
        for node_id, serial, model in session.execute(
            select(Node.id, Node.serial, Node.model).where(Node.id.in_(chunk))
        ):
            nodes[node_id] = _NodeInfo(serial, model, tuple(gpus.get(node_id, ())))
        for h in session.scalars(
            select(GpuHealthInterval)
            .where(
                GpuHealthInterval.node_id.in_(chunk),
                GpuHealthInterval.state.in_(list(_COUNTED)),
                GpuHealthInterval.start_at < end,
                or_(GpuHealthInterval.end_at.is_(None), GpuHealthInterval.end_at > start),
            )
            .order_by(GpuHealthInterval.start_at, GpuHealthInterval.id)
        ):
            health.setdefault(h.node_id, []).append(h)
    return Sources(
        start=start,
        end=end,
        allocations=allocations,
        nodes=nodes,
        health=health,
        shares=probe.share_history(session, node_ids),
        maintenance=maintenance_for(session, None, start, end),
    )


def intervals_for(
    session: Session,
    contract: Contract,
    start: datetime,
    end: datetime,
    sources: Sources | None = None,
) -> tuple[list[core.GpuInterval], set[int]]:
    """The contract's GPU intervals over ``[start, end)`` and the ids of the nodes that served it;
    ``sources`` loaded for a wider window are reused (:func:`load_sources`)."""
    if sources is None:
        sources = load_sources(session, start, end, [contract.id])
    out: list[core.GpuInterval] = []
    allocations = sources.allocations.get(contract.id, [])
    node_ids: set[int] = {node_id for node_id, _, _ in allocations}
    thresholds: dict[str, Decimal] = {}
    now = utcnow()
    for node_id, a_start, a_end in allocations:
        lo, hi = max(a_start, start), min(a_end, end)
        if hi <= lo:
            continue
        node = sources.nodes[node_id]
        node_shares: dict[int, list[tuple[datetime, datetime, Decimal | None]]] = {}
        for index, uuid in node.gpus:
            pieces = node_shares[index] = _shares_of(sources.shares, node_id, index, uuid, lo, hi)
            for p_start, p_end, share in pieces:
                common = {
                    "gpu_id": f"{node.serial}#{index}",
                    "node_id": str(node_id),
                    "start": p_start,
                    "end": p_end,
                }
                out.append(core.GpuInterval(state=core.ALLOCATED, delivered_share=share, **common))
                if share is None or share >= 1:
                    continue
                if node.model not in thresholds:
                    thresholds[node.model] = degraded_below(session, contract, node.model)
                threshold = thresholds[node.model]
                if share < threshold:
                    # The same weight as the allocated record: only the label and the reason change.
                    shown = threshold.quantize(Decimal("0.0001")).normalize()
                    reason = f"measured throughput share {share} below {shown:f} (acceptance run)"
                    out.append(
                        core.GpuInterval(state=core.DEGRADED, delivered_share=share, reason=reason, **common)
                    )
        for h in sources.health.get(node_id, ()):
            # An open interval lasts until now; the core cuts it to the allocation and the period.
            h_end = min(h.end_at or max(now, lo), hi)
            h_start = max(h.start_at, lo)
            if h_end <= h_start:
                continue
            out.append(
                core.GpuInterval(
                    gpu_id=f"{node.serial}#{h.gpu_index}",
                    node_id=str(node_id),
                    start=h_start,
                    end=h_end,
                    state=_COUNTED[h.state],
                    # A degraded record delivers what the card was measured at (unmeasured: in full).
                    delivered_share=_share_at(node_shares.get(h.gpu_index, []), h_start)
                    if h.state == Health.DEGRADED
                    else None,
                    reason=h.reasons,
                    incident_id=None if h.incident_id is None else str(h.incident_id),
                )
            )
    return out, node_ids


def _share_at(pieces: list[tuple[datetime, datetime, Decimal | None]], at: datetime) -> Decimal | None:
    return next((share for a, b, share in pieces if a <= at < b), None)


def maintenance_in(
    sources: Sources, node_ids: set[int], start: datetime, end: datetime
) -> list[core.MaintenanceWindow]:
    """The windows of ``sources`` that touch ``node_ids`` (or every node) within ``[start, end)``."""
    mine = {str(n) for n in node_ids}
    return [
        w
        for w in sources.maintenance
        if w.start < end and w.end > start and (w.node_ids is None or w.node_ids & mine)
    ]


def maintenance_for(
    session: Session, node_ids: set[int] | None, start: datetime, end: datetime
) -> list[core.MaintenanceWindow]:
    """Windows within ``[start, end)`` on ``node_ids`` or on every node (``node_ids`` None: all)."""
    stmt = select(MaintenanceWindow).where(
        MaintenanceWindow.starts_at < end, MaintenanceWindow.ends_at > start
    )
    if node_ids is not None:
        stmt = stmt.where(
            or_(MaintenanceWindow.node_id.is_(None), MaintenanceWindow.node_id.in_(sorted(node_ids)))
        )
    return [
        core.MaintenanceWindow(
            start=w.starts_at,
            end=w.ends_at,
            notice_given_at=w.notice_given_at,
            node_ids=None if w.node_id is None else frozenset({str(w.node_id)}),
            maintenance_id=str(w.id),
        )
        for w in session.scalars(stmt.order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id))
    ]


@dataclass(frozen=True)
class Measured:
    """A report with what it was computed from, for pages that show more than the figures."""

    contract: Contract
    period: str
    result: core.SlaResult
    maintenance: list[core.MaintenanceWindow]


def measure(
    session: Session,
    principal: Principal,
    contract_id: int,
    period: str | None = None,
    *,
    as_of: datetime | None = None,
) -> Measured:
    """:func:`report`, with the contract and the maintenance windows it took into account."""
    contract = contracts.get_contract(session, principal, contract_id)
    now = as_of or utcnow()
    period = period or core.period_of(now, contract.timezone)
    start, end = core.month_bounds(period, contract.timezone)
    cut = None if now >= end else now
    intervals, node_ids = intervals_for(session, contract, start, end)
    maintenance = maintenance_for(session, node_ids, start, end)
    result = core.compute_sla(
        policy_of(contract),
        dataclasses.replace(window_of(contract, period), end=contracts.service_end(session, contract)),
        period,
        intervals,
        maintenance,
        as_of=cut,
    )
    return Measured(contract, result.period, result, maintenance)


def report(
    session: Session,
    principal: Principal,
    contract_id: int,
    period: str | None = None,
    *,
    as_of: datetime | None = None,
) -> core.SlaResult:
    """The SLA of one contract you may see for ``period`` (``YYYY-MM`` in the contract's time zone;
    None: the current month). A month still running is measured up to now (``as_of``), so its figures
    are provisional.
    """
    return measure(session, principal, contract_id, period, as_of=as_of).result


@dataclass(frozen=True, slots=True)
class Day:
    """One local day of a contract's service: GPU-hours contracted and delivered, and the GPUs they
    average to over the hours of the day in service (today: up to now)."""

    day: date
    hours: Decimal
    contracted_gpu_hours: Decimal
    delivered_gpu_hours: Decimal

    @property
    def contracted_gpus(self) -> Decimal:
        return self.contracted_gpu_hours / self.hours

    @property
    def delivered_gpus(self) -> Decimal:
        return self.delivered_gpu_hours / self.hours


def daily(
    session: Session, principal: Principal, contract_id: int, *, days: int = 90, as_of: datetime | None = None
) -> list[Day]:
    """Contracted and delivered capacity per local day over the last ``days`` days (the contract's
    time zone), each day measured as :func:`report` measures a month, from one read of the records."""
    contract = contracts.get_contract(session, principal, contract_id)
    now = as_of or utcnow()
    where = core.zone(contract.timezone)
    today = now.astimezone(where).date()
    first = today - timedelta(days=days - 1)

    def midnight(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=where).astimezone(UTC)

    start, end = max(midnight(first), contract.starts_at), min(now, contracts.service_end(session, contract))
    if end <= start:
        return []
    intervals, node_ids = intervals_for(session, contract, start, end)
    maintenance = maintenance_for(session, node_ids, start, end)
    policy = policy_of(contract)
    windows: dict[str, core.ContractWindow] = {}
    out = []
    for i in range(days):
        d = first + timedelta(days=i)
        lo, hi = max(midnight(d), start), min(midnight(d + timedelta(days=1)), end)
        if hi <= lo:
            continue
        period = core.period_of(lo, contract.timezone)
        if period not in windows:
            windows[period] = window_of(contract, period)
        window = dataclasses.replace(windows[period], start=lo, end=hi)
        result = core.compute_sla(policy, window, period, intervals, maintenance)
        hours = Decimal((hi - lo) // timedelta(microseconds=1)) / Decimal(3_600_000_000)
        out.append(Day(d, hours, result.contracted_gpu_hours, result.delivered_gpu_hours))
    return out


def months(
    session: Session, principal: Principal, contract_id: int, *, last: int = 12, as_of: datetime | None = None
) -> list[core.SlaResult]:
    """:func:`report` for each month of service among the ``last`` months, newest first (the current
    month measured up to now)."""
    contract = contracts.get_contract(session, principal, contract_id)
    now = as_of or utcnow()
    final = contracts.service_end(session, contract) - timedelta(microseconds=1)
    newest = core.period_of(min(now, final), contract.timezone)
    oldest = core.period_of(contract.starts_at, contract.timezone)
    out = []
    first = date(*core.parse_period(newest), 1)
    for i in range(last):
        period = f"{contracts_core.add_months(first, -i):%Y-%m}"
        if period < oldest or contract.starts_at > now:
            break
        out.append(report(session, principal, contract_id, period, as_of=now))
    return out


def readable_contract_ids(session: Session, principal: Principal) -> list[int]:
    return list(session.scalars(contracts.readable_contracts(principal).with_only_columns(Contract.id)))


@metrics.register
def _sla_gauges(session: Session) -> Iterable[Metric]:
    from computelease.contracts.core import ContractStatus

    family = GaugeMetricFamily(
        "computelease_sla_availability_pct",
        "Availability of the current month so far, by active contract",
        labels=["contract"],
    )
    now = utcnow()
    active = session.scalars(select(Contract).where(Contract.status == ContractStatus.active).limit(500))
    for contract in active:
        try:
            result = report(session, SYSTEM, contract.id, core.period_of(now, contract.timezone), as_of=now)
        except AppError:
            # One contract whose terms cannot be measured must not take the whole scrape down.
            continue
        family.add_metric([str(contract.id)], float(Decimal(result.availability_pct)))
    yield family
