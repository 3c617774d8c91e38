"""Stored scenarios, their runs, the live scenario and the lessor's exposure.

Scope: scenarios are the operator's business plans: staff (operator, admin) read and write them; a
customer's or a lessor's credential is refused (403) and :func:`readable_scenarios` is empty for it.
The exposure of a lease starts from finance's ``readable_leases``: a lessor sees its own leases, staff
every lease, a customer none. Services only flush.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.economics import lessor as lessor_core
from computelease.economics import runs
from computelease.economics.models import RunStatus, ScenarioRun, ScenarioSource, StoredScenario
from computelease.economics.scenario import ScenarioInvalid
from computelease.economics.schemas import ExposureOut, LtvPointOut, NodeExposureOut
from computelease.errors import AppError, BadRequest, Forbidden, NotFound
from computelease.finance.schedule import add_months
from computelease.kit.time import DEFAULT_TZ, as_utc, utcnow

# ---------------------------------------------------------------------------------------- scope


def _staff(principal: Principal) -> None:
    if not principal.is_staff:
        raise Forbidden("scenarios are for operators and admins; your token has " + principal.role.value)


def readable_scenarios(principal: Principal) -> Select[tuple[StoredScenario]]:
    stmt = select(StoredScenario)
    if principal.is_staff:
        return stmt
    return stmt.where(false())


def _catalog(session: Session) -> Any:
    from computelease.catalog import service as catalog_service

    return catalog_service.catalog(session)


def today() -> date:
    return utcnow().astimezone(DEFAULT_TZ).date()


# ------------------------------------------------------------------------------------ scenarios


def create_scenario(
    session: Session,
    principal: Principal,
    text: str,
    *,
    name: str | None = None,
    source: ScenarioSource = ScenarioSource.upload,
) -> StoredScenario:
    """Checks the file (every problem listed, 422) and stores its text as given."""
    _staff(principal)
    if not text.strip():
        raise ScenarioInvalid(["the file is empty; send a scenario in YAML (docs/scenarios.md)"])
    scenario = runs.parse_text(text, catalog=_catalog(session))
    row = StoredScenario(
        name=(name or scenario.name).strip()[:200],
        source=source,
        yaml=text,
        created_by=principal.actor,
    )
    session.add(row)
    session.flush()
    return row


def create_from_example(session: Session, principal: Principal, key: str, *, name: str | None = None):
    _staff(principal)
    found = runs.example(key)
    return create_scenario(session, principal, found.text, name=name, source=ScenarioSource.example)


def create_live(
    session: Session,
    principal: Principal,
    *,
    as_of: date | None = None,
    horizon_months: int | None = None,
    name: str | None = None,
) -> StoredScenario:
    from computelease.economics import live

    _staff(principal)
    text = live.live_yaml(session, principal, as_of=as_of or today(), horizon_months=horizon_months)
    return create_scenario(session, principal, text, name=name, source=ScenarioSource.live)


def get_scenario(session: Session, principal: Principal, scenario_id: int) -> StoredScenario:
    _staff(principal)
    row = session.scalar(readable_scenarios(principal).where(StoredScenario.id == scenario_id))
    if row is None:
        raise NotFound(f"scenario {scenario_id} does not exist")
    return row


def delete_scenario(session: Session, principal: Principal, scenario_id: int) -> None:
    row = get_scenario(session, principal, scenario_id)
    session.delete(row)
    session.flush()


def list_runs(session: Session, principal: Principal, scenario_id: int) -> list[ScenarioRun]:
    get_scenario(session, principal, scenario_id)
    return list_runs_unchecked(session, scenario_id)


def list_runs_unchecked(session: Session, scenario_id: int) -> list[ScenarioRun]:
    """The runs of a scenario already read through :func:`get_scenario` (newest first)."""
    return list(
        session.scalars(
            select(ScenarioRun).where(ScenarioRun.scenario_id == scenario_id).order_by(ScenarioRun.id.desc())
        )
    )


def run_counts(session: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    stmt = (
        select(ScenarioRun.scenario_id, func.count())
        .where(ScenarioRun.scenario_id.in_(ids))
        .group_by(ScenarioRun.scenario_id)
    )
    return {scenario_id: int(n) for scenario_id, n in session.execute(stmt)}


def run_scenario(
    session: Session,
    principal: Principal,
    scenario_id: int,
    *,
    paths: int = runs.DEFAULT_PATHS,
    seed: int = 0,
    routes: list[str] | None = None,
    backend: str = "numpy",
) -> ScenarioRun:
    """Projection, funding routes and Monte Carlo, synchronously (paths bounded by the caller), on the
    Monte Carlo ``backend`` (numpy; jax or torch where installed, on a GPU when the server has one). A
    problem in the scenario, the routes or the backend is a 4xx; anything unexpected is stored as a
    failed run."""
    from computelease.economics.montecarlo import require_backend

    row = get_scenario(session, principal, scenario_id)
    if paths:
        require_backend(backend)
    if not 0 <= paths <= runs.API_MAX_PATHS:
        raise BadRequest(f"paths must be between 0 and {runs.API_MAX_PATHS:,}, got {paths}")
    catalog = _catalog(session)
    scenario = runs.parse_text(row.yaml, catalog=catalog)
    chosen = tuple(routes) if routes else runs.default_routes(scenario)
    status, summary, error = RunStatus.done, {}, ""
    try:
        summary = runs.execute(
            scenario, paths=paths, seed=seed, routes=chosen, catalog=catalog, backend=backend
        )
    except AppError:
        raise
    except Exception as exc:  # the engine's own failure: kept on the run, never a 500
        status, error = RunStatus.failed, f"{type(exc).__name__}: {exc}"[:2000]
    run = ScenarioRun(
        scenario_id=row.id,
        paths=paths,
        seed=seed,
        routes=list(chosen),
        status=status,
        summary=summary,
        error=error,
        created_by=principal.actor,
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, principal: Principal, scenario_id: int, run_id: int) -> ScenarioRun:
    get_scenario(session, principal, scenario_id)
    run = session.scalar(
        select(ScenarioRun).where(ScenarioRun.id == run_id, ScenarioRun.scenario_id == scenario_id)
    )
    if run is None:
        raise NotFound(f"run {run_id} of scenario {scenario_id} does not exist")
    return run


def run_workbook(session: Session, principal: Principal, scenario_id: int, run_id: int) -> bytes:
    run = get_run(session, principal, scenario_id, run_id)
    if run.status is not RunStatus.done:
        raise NotFound(f"run {run_id} failed, so it has no workbook: {run.error}")
    return runs.workbook(run.summary)


# -------------------------------------------------------------------------------- lessor's view


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=DEFAULT_TZ).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Health:
    down: bool | None
    last_at: datetime | None
    incidents: int
    unhealthy_gpus: int


def _health(session: Session, node_ids: list[int]) -> dict[int, _Health]:
    from computelease.telemetry.health import Health
    from computelease.telemetry.models import GpuHealthInterval, Incident, IncidentStatus, NodeTelemetry

    tele = {
        t.node_id: t
        for t in session.scalars(select(NodeTelemetry).where(NodeTelemetry.node_id.in_(node_ids)))
    }
    incidents = dict(
        session.execute(
            select(Incident.node_id, func.count())
            .where(Incident.node_id.in_(node_ids), Incident.status == IncidentStatus.open)
            .group_by(Incident.node_id)
        ).all()
    )
    unhealthy: dict[int, set[int]] = defaultdict(set)
    for node_id, index in session.execute(
        select(GpuHealthInterval.node_id, GpuHealthInterval.gpu_index).where(
            GpuHealthInterval.node_id.in_(node_ids),
            GpuHealthInterval.end_at.is_(None),
            GpuHealthInterval.state != Health.HEALTHY,
        )
    ):
        unhealthy[node_id].add(index)
    return {
        n: _Health(
            down=tele[n].down if n in tele else None,
            last_at=as_utc(tele[n].last_at) if n in tele else None,
            incidents=int(incidents.get(n, 0)),
            unhealthy_gpus=len(unhealthy[n]),
        )
        for n in node_ids
    }


def exposure(
    session: Session, principal: Principal, lease_id: int, *, as_of: date | None = None, months: int = 12
) -> ExposureOut:
    """The lessor's early warning for one lease on ``as_of`` (default today), over the trailing
    ``months`` (clipped to the lease's start): the collateral's state, occupancy and health, what it
    earned against the rent that fell due (coverage), and principal against collateral value (LTV)
    now and after each remaining instalment. Formulas in :mod:`computelease.economics.lessor`."""
    from computelease.allocation import occupancy as occ
    from computelease.allocation.models import Allocation
    from computelease.allocation.service import _plain_allocation, _plain_node
    from computelease.economics.earned import earned_by_nodes
    from computelease.finance import service as finance
    from computelease.fleet import service as fleet_service

    if principal.role == Role.customer:
        raise Forbidden("a lease's exposure is for its lessor and the operator")
    if not 1 <= months <= 120:
        raise BadRequest(f"months must be between 1 and 120, got {months}")
    lease = finance.get_lease(session, principal, lease_id)
    as_of = as_of or today()
    pos = finance.position(lease, as_of)
    first = max(lease.start_date, add_months(as_of + timedelta(days=1), -months))
    start, end = _local_midnight(first), _local_midnight(as_of + timedelta(days=1))
    if end <= start:  # a lease that starts after as_of: an empty window
        start = end
    nodes = [a.node for a in lease.assets]
    ids = [n.id for n in nodes]
    warnings: list[str] = []

    # Capacity-time of the collateral. The lease was read through the caller's scope; its nodes'
    # records are read as the system, since a lessor's own scope does not reach allocations.
    per_node: dict[str, Any] = {}
    if ids and end > start:
        states = [
            occ.StateInterval(str(s.node_id), s.state.value, s.start, s.end)
            for s in fleet_service.state_intervals(session, SYSTEM, start, end, node_ids=ids)
        ]
        allocations = session.scalars(
            select(Allocation).where(
                Allocation.node_id.in_(ids), Allocation.start_at < end, Allocation.end_at > start
            )
        )
        per_node = occ.capacity_time(
            [_plain_node(n) for n in nodes], states, [_plain_allocation(a) for a in allocations], start, end
        )
    health = _health(session, ids) if ids else {}
    earned = earned_by_nodes(session, ids, start, end) if ids and end > start else None
    earned_amounts = earned.amounts if earned else {}
    basis = earned.basis if earned else "contracted"
    contracted = earned.contracted if earned else {}
    rent_due = sum(
        (i.amount for i in finance.instalments_of(lease) if first <= i.due <= as_of), lessor_core.ZERO
    )
    earned_here = earned_amounts.get(lease.currency, lessor_core.ZERO)
    if any(cur != lease.currency for cur in earned_amounts):
        warnings.append(
            f"revenue in other currencies than the lease's {lease.currency} is left out of the coverage"
        )

    collateral = []
    for n in nodes:
        if n.currency != lease.currency:
            warnings.append(
                f"node {n.serial} is valued in {n.currency}, not {lease.currency}; left out of LTV"
            )
            continue
        collateral.append(lessor_core.Collateral(n.id, n.purchase_cost, n.purchase_date))
    if not nodes:
        warnings.append("no node secures this lease: there is no collateral to value")
    future = [
        lessor_core.FutureRent(
            p.due, max(p.instalment.principal - p.paid_principal, lessor_core.ZERO), p.instalment.capitalised
        )
        for p in pos.instalments
        if p.due > as_of
    ]
    curve = lessor_core.ltv_curve(as_of, pos.outstanding_principal, future, collateral)
    now = curve[0]
    valuation = lessor_core.Valuation()
    node_rows = []
    in_service = allocated = 0.0
    for n in nodes:
        cap = per_node.get(str(n.id))
        h = health.get(n.id)
        item = lessor_core.Collateral(n.id, n.purchase_cost, n.purchase_date)
        if cap is not None:
            in_service += cap.in_service
            allocated += cap.allocated
        node_rows.append(
            NodeExposureOut(
                node_id=n.id,
                serial=n.serial,
                model=n.model,
                state=n.state.value,
                gpus=n.gpu_count,
                purchase_cost=n.purchase_cost,
                currency=n.currency,
                purchase_date=n.purchase_date,
                in_service_gpu_hours=round(cap.in_service, 3) if cap else 0.0,
                allocated_gpu_hours=round(cap.allocated, 3) if cap else 0.0,
                down_gpu_hours=round(cap.down, 3) if cap else 0.0,
                occupancy=cap.occupancy if cap else None,
                telemetry_down=h.down if h else None,
                last_heartbeat_at=h.last_at if h else None,
                open_incidents=h.incidents if h else 0,
                unhealthy_gpus=h.unhealthy_gpus if h else 0,
                book_value=lessor_core.book_value(item, as_of, valuation),
                market_value=lessor_core.market_value(item, as_of, valuation),
            )
        )
    return ExposureOut(
        lease_id=lease.id,
        code=lease.code,
        kind=lease.kind.value,
        status=lease.status.value,
        lessor_name=lease.lessor.name,
        lessee=lease.lessee,
        currency=lease.currency,
        principal=lease.principal,
        start_date=lease.start_date,
        end_date=lease.end_date,
        as_of=as_of,
        window_start=first if end > start else as_of,
        window_end=as_of,
        nodes=node_rows,
        in_service_gpu_hours=round(in_service, 3),
        allocated_gpu_hours=round(allocated, 3),
        occupancy=(allocated / in_service) if in_service > 0 else None,
        earned=earned_amounts,
        earned_basis=basis,
        contracted=contracted,
        rent_due=rent_due,
        coverage=lessor_core.coverage(earned_here, rent_due),
        outstanding_principal=pos.outstanding_principal,
        overdue_total=pos.overdue_total,
        overdue_count=pos.overdue_count,
        book_value=now.book_value,
        market_value=now.market_value,
        ltv_book=now.ltv_book,
        ltv_market=now.ltv_market,
        curve=[LtvPointOut(**_fields(p)) for p in curve],
        assumptions=[
            *valuation.sources,
            "earned: "
            + (
                "invoiced revenue apportioned to the nodes by GPU-hours (billing)"
                if basis == "invoiced"
                else "contracted revenue (contract value prorated in time, apportioned to the nodes by "
                "allocated GPU-hours); no invoices yet, so SLA credits and unpaid bills are not deducted"
            ),
            "projected LTV assumes every future rent is paid when due",
        ],
        warnings=warnings,
    )


def _fields(p: lessor_core.LtvPoint) -> dict[str, Any]:
    return {
        "on": p.on,
        "outstanding": p.outstanding,
        "book_value": p.book_value,
        "market_value": p.market_value,
        "ltv_book": p.ltv_book,
        "ltv_market": p.ltv_market,
    }


def exposures(session: Session, principal: Principal, *, as_of: date | None = None) -> list[ExposureOut]:
    """The exposure of every lease the caller may read that is not closed."""
    from computelease.finance import service as finance
    from computelease.finance.models import Lease, LeaseStatus

    if principal.role == Role.customer:
        raise Forbidden("a lease's exposure is for its lessor and the operator")
    ids = session.scalars(
        finance.readable_leases(principal)
        .where(Lease.status != LeaseStatus.closed)
        .order_by(Lease.start_date.desc(), Lease.id.desc())
        .with_only_columns(Lease.id)
    ).all()
    return [exposure(session, principal, i, as_of=as_of) for i in ids]
