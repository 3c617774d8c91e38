"""The SLA of a stored contract for a month: records in, :func:`computelease.sla.core.compute_sla` out.

The intervals handed to the pure core are built from three records:

- **allocations** (which node served the contract, when): one ``allocated`` interval per GPU of the
  node, cut to the service window; a replacement node counts from its allocation's start;
- **GPU health intervals** from telemetry: ``unhealthy`` and ``down`` time (and ``degraded``) of those
  GPUs, linked to the incident that covers it; healthy time needs no record of its own;
- **maintenance windows** on the contract's nodes, or on every node.

Throughput shares from acceptance runs are not applied yet (``delivered_share`` None counts as 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

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
from computelease.fleet.models import Node
from computelease.kit.time import utcnow
from computelease.sla import core
from computelease.telemetry.health import Health
from computelease.telemetry.models import GpuHealthInterval, MaintenanceWindow

# Health states the SLA counts against delivery; healthy time is what the allocation already says.
_COUNTED = {Health.UNHEALTHY: core.UNHEALTHY, Health.DOWN: core.DOWN, Health.DEGRADED: core.DEGRADED}


def gpu_key(node: Node, index: int) -> str:
    return f"{node.serial}#{index}"


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


def intervals_for(
    session: Session, contract: Contract, start: datetime, end: datetime
) -> tuple[list[core.GpuInterval], set[int]]:
    """The contract's GPU intervals over ``[start, end)`` and the ids of the nodes that served it."""
    allocations = list(
        session.scalars(
            select(Allocation)
            .where(
                Allocation.contract_id == contract.id, Allocation.start_at < end, Allocation.end_at > start
            )
            .order_by(Allocation.start_at, Allocation.id)
        )
    )
    out: list[core.GpuInterval] = []
    node_ids: set[int] = set()
    for a in allocations:
        lo, hi = max(a.start_at, start), min(a.end_at, end)
        node = a.node
        node_ids.add(node.id)
        for gpu in node.gpus:
            out.append(
                core.GpuInterval(
                    gpu_id=gpu_key(node, gpu.index),
                    node_id=str(node.id),
                    start=lo,
                    end=hi,
                    state=core.ALLOCATED,
                )
            )
        health = session.scalars(
            select(GpuHealthInterval)
            .where(
                GpuHealthInterval.node_id == node.id,
                GpuHealthInterval.state.in_(list(_COUNTED)),
                GpuHealthInterval.start_at < hi,
                or_(GpuHealthInterval.end_at.is_(None), GpuHealthInterval.end_at > lo),
            )
            .order_by(GpuHealthInterval.start_at, GpuHealthInterval.id)
        )
        for h in health:
            # An open interval lasts until now; the core cuts it to the allocation and the period.
            h_end = min(h.end_at or max(utcnow(), lo), hi)
            h_start = max(h.start_at, lo)
            if h_end <= h_start:
                continue
            out.append(
                core.GpuInterval(
                    gpu_id=gpu_key(node, h.gpu_index),
                    node_id=str(node.id),
                    start=h_start,
                    end=h_end,
                    state=_COUNTED[h.state],
                    reason=h.reasons,
                    incident_id=None if h.incident_id is None else str(h.incident_id),
                )
            )
    return out, node_ids


def maintenance_for(
    session: Session, node_ids: set[int], start: datetime, end: datetime
) -> list[core.MaintenanceWindow]:
    stmt = select(MaintenanceWindow).where(
        MaintenanceWindow.starts_at < end,
        MaintenanceWindow.ends_at > start,
        or_(MaintenanceWindow.node_id.is_(None), MaintenanceWindow.node_id.in_(sorted(node_ids))),
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
    contract = contracts.get_contract(session, principal, contract_id)
    now = as_of or utcnow()
    period = period or core.period_of(now, contract.timezone)
    start, end = core.month_bounds(period, contract.timezone)
    cut = None if now >= end else now
    intervals, node_ids = intervals_for(session, contract, start, end)
    return core.compute_sla(
        policy_of(contract),
        window_of(contract, period),
        period,
        intervals,
        maintenance_for(session, node_ids, start, end),
        as_of=cut,
    )


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
