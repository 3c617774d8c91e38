"""What each person sees first (shared/design/SCREENS.md), read from the domains that own the figures:
the fleet by state, occupancy, idle capacity, open incidents, contracts whose SLA is in danger this
month, revenue, overdue receivables and lease payments falling due. Nothing here is stored; every
figure is the owning domain's, scoped to the caller, so the dashboard cannot disagree with the page a
tile links to.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload

from computelease.allocation import service as allocation
from computelease.auth.core import Principal, Role
from computelease.billing import service as billing
from computelease.billing.core import DocKind, InvoiceStatus
from computelease.billing.models import BillingPeriod, Invoice
from computelease.contracts import service as contracts_service
from computelease.contracts.models import Contract, Customer
from computelease.contracts.service import readable_contracts
from computelease.dashboard import core
from computelease.finance import service as finance
from computelease.finance.models import Lease, LeaseStatus, Lessor
from computelease.fleet import service as fleet
from computelease.fleet.core import NodeState
from computelease.kit.time import utcnow
from computelease.sla import core as sla_core
from computelease.sla import service as sla
from computelease.telemetry.models import Incident, IncidentStatus
from computelease.telemetry.service import readable_incidents

ZERO = Decimal(0)
LIST_LIMIT = 10


@dataclass(frozen=True, slots=True)
class FleetState:
    state: NodeState
    nodes: int
    gpus: int


@dataclass(frozen=True, slots=True)
class Idle:
    """Today so far (UTC) for one site or model: average in-service and idle GPUs, occupancy."""

    key: str
    in_service_gpus: float
    idle_gpus: float
    occupancy: float | None
    idle_nodes: int


@dataclass(frozen=True, slots=True)
class OpenIncident:
    id: int
    title: str
    node_id: int | None
    node_serial: str | None
    opened_at: datetime
    gpus: int


@dataclass(frozen=True, slots=True)
class ContractWatch:
    """One contract's month so far: the SLA standing and what the month has earned."""

    contract_id: int
    name: str
    customer: str
    currency: str
    period: str
    contracted_gpus: int
    contracted_gpu_hours: Decimal
    delivered_gpu_hours: Decimal
    availability_pct: Decimal | None  # None: the contract has no SLA policy
    target_pct: Decimal | None
    standing: core.Standing | None
    budget_used: Decimal | None  # share of the month's downtime budget spent
    credit: Decimal  # provisional: the credit if the month ended now
    accrued_net: Decimal  # provisional: the month's net revenue so far, credit deducted


@dataclass(frozen=True, slots=True)
class Revenue:
    period: str
    currency: str
    net: Decimal
    basis: str  # "billed" (the month is closed) or "accrued" (provisional, from the records as they are)
    change: Decimal | None = None  # against the month before, same currency and basis known


@dataclass(frozen=True, slots=True)
class Overdue:
    customer_id: int
    customer: str
    currency: str
    overdue: Decimal
    oldest_bucket: str


@dataclass(frozen=True, slots=True)
class LeaseDue:
    lease_id: int
    code: str
    lessor: str
    lessee: str
    currency: str
    due: date
    outstanding: Decimal
    penalty: Decimal
    overdue: bool


@dataclass(frozen=True, slots=True)
class LeaseLine:
    """One open lease as its lessor sees it first."""

    lease_id: int
    code: str
    lessee: str
    currency: str
    outstanding_principal: Decimal
    overdue_total: Decimal
    next_due: date | None
    next_amount: Decimal | None


@dataclass
class Summary:
    as_of: datetime
    role: str
    organisation: str | None = None  # a customer's or lessor's own name
    fleet: list[FleetState] | None = None
    occupancy_today: float | None = None
    idle_by_model: list[Idle] | None = None
    idle_by_site: list[Idle] | None = None
    open_incidents: int | None = None
    incidents: list[OpenIncident] = field(default_factory=list)
    contracts: list[ContractWatch] | None = None
    revenue: list[Revenue] | None = None
    overdue: list[Overdue] | None = None
    overdue_total: dict[str, Decimal] | None = None
    open_receivables: dict[str, Decimal] | None = None
    lease_dues: list[LeaseDue] | None = None
    leases: list[LeaseLine] | None = None

    @property
    def at_risk(self) -> list[ContractWatch]:
        return [c for c in self.contracts or () if c.standing not in (None, core.Standing.ok)]


def summary(session: Session, principal: Principal, *, now: datetime | None = None) -> Summary:
    """The dashboard of ``principal``: the operator's whole view, a customer's own contracts and
    receivables, a lessor's own leases."""
    now = now or utcnow()
    out = Summary(as_of=now, role=principal.role.value)
    if principal.role == Role.customer and principal.customer_id is not None:
        customer = session.get(Customer, principal.customer_id)
        out.organisation = customer.name if customer else None
    elif principal.role == Role.lessor and principal.lessor_id is not None:
        lessor = session.get(Lessor, principal.lessor_id)
        out.organisation = lessor.name if lessor else None
    if principal.is_staff:
        _fleet(session, principal, now, out)
        _incidents(session, principal, out)
    if principal.is_staff or principal.role == Role.customer:
        out.contracts = watch(session, principal, now)
        _receivables(session, principal, now, out)
    if principal.is_staff:
        out.revenue = revenue(session, principal, now, out.contracts or [])
    if principal.is_staff or principal.role == Role.lessor:
        _leases(session, principal, now, out)
    return out


def _fleet(session: Session, principal: Principal, now: datetime, out: Summary) -> None:
    out.fleet = [FleetState(c.state, c.nodes, c.gpus) for c in fleet.state_counts(session, principal)]
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = max(now, today + timedelta(seconds=1))
    hours = (end - today) / timedelta(hours=1)

    def idle(rows: list[allocation.OccupancyLine]) -> list[Idle]:
        return sorted(
            (
                Idle(
                    key=r.label or r.key or "",
                    in_service_gpus=round(r.in_service_gpu_hours / hours, 3),
                    idle_gpus=round((r.in_service_gpu_hours - r.allocated_gpu_hours) / hours, 3),
                    occupancy=r.occupancy,
                    idle_nodes=len(r.idle_nodes),
                )
                for r in rows
                if r.in_service_gpu_hours > 0
            ),
            key=lambda i: (-i.idle_gpus, i.key),
        )

    by_model, by_site = allocation.occupancies(session, principal, today, end, ("model", "site"))
    out.idle_by_model = idle(by_model)
    out.idle_by_site = idle(by_site)
    in_service = sum(r.in_service_gpu_hours for r in by_model)
    allocated = sum(r.allocated_gpu_hours for r in by_model)
    out.occupancy_today = None if in_service <= 0 else allocated / in_service


def _incidents(session: Session, principal: Principal, out: Summary) -> None:
    stmt = readable_incidents(principal).where(Incident.status == IncidentStatus.open)
    out.open_incidents = session.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0
    out.incidents = [
        OpenIncident(i.id, i.title, i.node_id, i.node_serial, i.opened_at, len(i.gpus))
        for i in session.scalars(
            stmt.order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(LIST_LIMIT)
        )
    ]


def watch(session: Session, principal: Principal, now: datetime) -> list[ContractWatch]:
    """Every contract the caller may see that serves part of this month (signed ones whose term has
    begun, active ones, and those that ended or were terminated this month: their month is billed
    too), the month so far, the ones in danger first."""
    contracts = list(
        session.scalars(
            readable_contracts(principal)
            .where(
                Contract.status.in_(billing.BILLED),
                Contract.starts_at < now,
                Contract.ends_at > now - timedelta(days=32),  # the rest ended before this month
            )
            .options(lazyload(Contract.events))  # the status timeline is not shown here
            .order_by(Contract.id)
        )
    )
    if not contracts:
        return []
    ends = contracts_service.service_ends(session, contracts)
    periods = {c.id: sla_core.period_of(now, c.timezone) for c in contracts}
    bounds = {c.id: sla_core.month_bounds(periods[c.id], c.timezone) for c in contracts}
    sources = sla.load_sources(
        session,
        min(b[0] for b in bounds.values()),
        max(b[1] for b in bounds.values()),
        [c.id for c in contracts],
    )
    vat = billing.vat_table(session)
    out = []
    for c in contracts:
        start, stop = bounds[c.id]
        cut = min(ends[c.id], now)
        if cut <= max(start, c.starts_at):
            continue  # not started this month yet (or already over): nothing to watch
        got = billing.expected(session, c, periods[c.id], vat, end=cut, sources=sources)
        result = got.sla
        judged, used = None, None  # no SLA policy: availability is not promised, so not judged
        if result is not None:
            hours = core.service_hours(start, stop, c.starts_at, ends[c.id])
            judged, used = core.standing(
                availability_pct=result.availability_pct,
                target_pct=result.target_pct,
                counted_gpu_hours=result.counted_gpu_hours,
                budget_gpu_hours=core.downtime_budget(
                    result.target_pct, result.contracted_gpus, hours, result.excluded_gpu_hours
                ),
            )
        out.append(
            ContractWatch(
                contract_id=c.id,
                name=c.name,
                customer=c.customer.name,
                currency=c.currency,
                period=periods[c.id],
                contracted_gpus=result.contracted_gpus if result else c.billable_gpus or 0,
                contracted_gpu_hours=result.contracted_gpu_hours if result else ZERO,
                delivered_gpu_hours=result.delivered_gpu_hours if result else ZERO,
                availability_pct=result.availability_pct if result else None,
                target_pct=result.target_pct if result else None,
                standing=judged,
                budget_used=used,
                credit=result.credit if result else ZERO,
                accrued_net=sum((ln.net for ln in got.lines), ZERO),
            )
        )
    return sorted(out, key=lambda w: (core.SEVERITY.get(w.standing, 9) if w.standing else 9, w.contract_id))


def revenue(
    session: Session, principal: Principal, now: datetime, watched: list[ContractWatch]
) -> list[Revenue]:
    """This month so far (accrued) and the two months before: billed where the month is closed,
    otherwise accrued from the records as they are (a close preview)."""
    current, last, before = core.months_back(sla_core.period_of(now, sla_core.DEFAULT_TZ), 3)
    closed = set(
        session.scalars(select(BillingPeriod.period).where(BillingPeriod.period.in_([last, before])))
    )
    docs = session.execute(
        billing.readable_invoices(principal)
        .with_only_columns(Invoice.period, Invoice.currency, Invoice.net)
        .where(
            Invoice.period.in_(sorted(closed)),
            Invoice.status.not_in([InvoiceStatus.draft, InvoiceStatus.void]),
            Invoice.kind.in_([DocKind.invoice, DocKind.credit_note]),
        )
    )
    figures: dict[tuple[str, str], Decimal] = dict(
        core.revenue_by_period(core.Document(p, cur, net) for p, cur, net in docs)
    )
    basis = {p: "billed" for p in closed}
    for w in watched:
        if w.period == current:
            figures[(current, w.currency)] = figures.get((current, w.currency), ZERO) + w.accrued_net
    basis[current] = "accrued"
    for period in (last, before):
        if period in closed:
            continue
        basis[period] = "accrued"
        for cur, net in _accrued(session, principal, period, now).items():
            figures[(period, cur)] = figures.get((period, cur), ZERO) + net
    currencies = sorted({cur for _, cur in figures})
    out = []
    for cur in currencies:
        for period, previous in ((current, None), (last, before), (before, None)):
            net = figures.get((period, cur), ZERO)
            prior = None if previous is None else figures.get((previous, cur), ZERO)
            out.append(Revenue(period, cur, net, basis[period], core.change(net, prior)))
    return out


def _accrued(session: Session, principal: Principal, period: str, now: datetime) -> dict[str, Decimal]:
    """A month not closed yet: what its close would bill, by currency (the close's own preview)."""
    preview = billing.close(session, principal, period, dry_run=True, now=now)
    return {currency: t["net"] for currency, t in preview.totals.items()}


def _receivables(session: Session, principal: Principal, now: datetime, out: Summary) -> None:
    rows = billing.ageing(session, principal, now.date())
    buckets = list(rows[0].buckets) if rows else []
    overdue = []
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    open_: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        open_[r.currency] += r.total
        if r.overdue <= 0:
            continue
        totals[r.currency] += r.overdue
        oldest = next(b for b in reversed(buckets) if r.buckets[b] > 0)
        overdue.append(Overdue(r.customer_id, r.customer, r.currency, r.overdue, oldest))
    out.overdue = sorted(overdue, key=lambda o: (o.currency, -o.overdue))[:LIST_LIMIT]
    out.overdue_total = dict(totals)
    out.open_receivables = dict(open_)


def _leases(session: Session, principal: Principal, now: datetime, out: Summary) -> None:
    today = now.date()
    dues: list[LeaseDue] = []
    lines: list[LeaseLine] = []
    leases = session.scalars(
        finance.readable_leases(principal).where(Lease.status == LeaseStatus.active).order_by(Lease.id)
    )
    for lease in leases:
        pos = finance.position(lease, today)
        soon = core.dues_within(
            (core.Due(p.due, p.outstanding, p.penalty_owed) for p in pos.instalments), today
        )
        dues.extend(
            LeaseDue(
                lease.id,
                lease.code,
                lease.lessor.name,
                lease.lessee,
                lease.currency,
                d.due,
                d.outstanding,
                d.penalty,
                d.overdue(today),
            )
            for d in soon
        )
        nxt = pos.next_due
        lines.append(
            LeaseLine(
                lease.id,
                lease.code,
                lease.lessee,
                lease.currency,
                pos.outstanding_principal,
                pos.overdue_total,
                None if nxt is None else nxt.due,
                None if nxt is None else nxt.outstanding,
            )
        )
    out.lease_dues = sorted(dues, key=lambda d: (d.due, d.code))
    out.leases = lines
