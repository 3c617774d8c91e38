"""Lessor, lease and credit-line use cases.

Scope: staff see everything; a lessor's credential sees its own organisation, its own leases (with their
instalments, assets and payments) and its own credit lines; a customer's sees none of them. Every read
starts from a ``readable_*`` statement. Writes are for staff (the endpoints say so). Services only flush.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal, Role
from computelease.errors import Conflict, NotFound, Unprocessable
from computelease.finance import core, ledger
from computelease.finance.export import schedule_to_dict
from computelease.finance.models import (
    LEASE_TRANSITIONS,
    CreditLine,
    Lease,
    LeaseAsset,
    LeaseInstalment,
    LeasePayment,
    LeaseStatus,
    Lessor,
    PaymentAllocation,
)
from computelease.finance.schedule import NIL, FinanceTermError, calendar_of, make_schedule
from computelease.finance.schemas import (
    AllocationOut,
    AssetOut,
    CreditLineIn,
    CreditLinePatch,
    InstalmentOut,
    LeaseDetail,
    LeaseIn,
    LeaseOut,
    LeasePatch,
    LessorIn,
    NextDue,
    PaymentIn,
    PaymentOut,
    TerminationOut,
    TermsIn,
)
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node
from computelease.kit.time import DEFAULT_TZ, utcnow

RATE_PLACES = Decimal("0.000001")


def today() -> date:
    """Today where the leases are signed and paid (China): rents fall due by the local calendar."""
    return utcnow().astimezone(DEFAULT_TZ).date()


# ---------------------------------------------------------------------------------------- scope


def readable_lessors(principal: Principal) -> Select[tuple[Lessor]]:
    stmt = select(Lessor)
    if principal.is_staff:
        return stmt
    if principal.role == Role.lessor:
        return stmt.where(Lessor.id == principal.lessor_id)
    return stmt.where(false())


def readable_leases(principal: Principal) -> Select[tuple[Lease]]:
    stmt = select(Lease)
    if principal.is_staff:
        return stmt
    if principal.role == Role.lessor:
        return stmt.where(Lease.lessor_id == principal.lessor_id)
    return stmt.where(false())


def readable_credit_lines(principal: Principal) -> Select[tuple[CreditLine]]:
    stmt = select(CreditLine)
    if principal.is_staff:
        return stmt
    if principal.role == Role.lessor:
        return stmt.where(CreditLine.lessor_id == principal.lessor_id)
    return stmt.where(false())


def lessor_node_ids(principal: Principal) -> Select[tuple[int]]:
    """Ids of the nodes that leases readable by ``principal`` finance, for the fleet's scope
    (``Node.id.in_(lessor_node_ids(principal))``). Closed leases no longer count; a terminated one does,
    since its lessor may still be recovering the servers."""
    stmt = (
        select(LeaseAsset.node_id)
        .join(Lease, Lease.id == LeaseAsset.lease_id)
        .where(Lease.status != LeaseStatus.closed)
    )
    if principal.is_staff:
        return stmt
    if principal.role == Role.lessor:
        return stmt.where(Lease.lessor_id == principal.lessor_id)
    return stmt.where(false())


# -------------------------------------------------------------------------------------- lessors


def get(session: Session, principal: Principal, lessor_id: int) -> Lessor:
    lessor = session.scalar(readable_lessors(principal).where(Lessor.id == lessor_id))
    if lessor is None:
        raise NotFound(f"lessor {lessor_id} does not exist or is not visible to you")
    return lessor


def create(session: Session, data: LessorIn) -> Lessor:
    if session.scalar(select(Lessor.id).where(Lessor.name == data.name)) is not None:
        raise Conflict(f"a lessor named {data.name!r} already exists; pick another name")
    lessor = Lessor(**data.model_dump())
    session.add(lessor)
    session.flush()
    return lessor


def _lessor_for(session: Session, principal: Principal, lessor_id: int) -> Lessor:
    lessor = session.scalar(readable_lessors(principal).where(Lessor.id == lessor_id))
    if lessor is None:
        raise Unprocessable(
            f"lessor_id {lessor_id} is not a lessor you can see; list them at /api/v1/lessors"
        )
    return lessor


# ---------------------------------------------------------------------------------------- terms


def terms_of(data: TermsIn, *, start: date, kind: core.LeaseKind | None = None) -> core.LeaseTerms:
    """The pure terms of ``data``; ``start`` is used when the terms give none. Bad terms raise
    :class:`FinanceTermError` (a 400 naming the term)."""
    values = data.model_dump(exclude_none=True)
    values.setdefault("start", start.isoformat())
    if kind is not None:
        given = values.get("kind")
        if given is not None and given != kind.value:
            raise FinanceTermError(
                "kind",
                f"the terms say {given!r} but the lease is {kind.value!r}; leave it out or make them agree",
            )
        values["kind"] = kind
    if "principal_plan" in values:
        values["principal_plan"] = tuple(values["principal_plan"])
    return core.LeaseTerms(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return str(value)


def terms_to_json(terms: core.LeaseTerms) -> dict[str, Any]:
    """Every field of the terms as text (booleans and missing values apart): no float on the way."""
    return {f.name: _plain(getattr(terms, f.name)) for f in dataclasses.fields(terms)}


def terms_from_json(stored: dict[str, Any]) -> core.LeaseTerms:
    values = dict(stored)
    if values.get("principal_plan") is not None:
        values["principal_plan"] = tuple(values["principal_plan"])
    return core.LeaseTerms(**values)


def quote(data: TermsIn, *, start: date | None = None) -> dict[str, Any]:
    """The schedule, VAT, cash flows and returns of ``data``, as the API returns them."""
    return schedule_to_dict(core.quote(terms_of(data, start=start or today())), extended=True)


# --------------------------------------------------------------------------------------- leases


def _rate(value: Decimal) -> Decimal:
    # At the column's scale, so a record reads the same just written as after a reload.
    return value.quantize(RATE_PLACES)


def get_lease(session: Session, principal: Principal, lease_id: int, *, lock: bool = False) -> Lease:
    stmt = readable_leases(principal).where(Lease.id == lease_id)
    if lock:
        # Serialises payments on one lease: each is split around the ones recorded before it.
        stmt = stmt.with_for_update(of=Lease)
    lease = session.scalar(stmt)
    if lease is None:
        raise NotFound(f"lease {lease_id} does not exist or is not visible to you")
    return lease


def list_leases(
    principal: Principal, *, status: LeaseStatus | None = None, lessor_id: int | None = None
) -> Select[tuple[Lease]]:
    stmt = readable_leases(principal)
    if status is not None:
        stmt = stmt.where(Lease.status == status)
    if lessor_id is not None:
        stmt = stmt.where(Lease.lessor_id == lessor_id)
    return stmt.order_by(Lease.start_date.desc(), Lease.id.desc())


def create_lease(session: Session, principal: Principal, data: LeaseIn) -> Lease:
    """Signs a lease: checks the terms, stores its schedule and attaches its nodes."""
    lessor = _lessor_for(session, principal, data.lessor_id)
    if session.scalar(select(Lease.id).where(Lease.code == data.code)) is not None:
        raise Conflict(f"a lease with code {data.code!r} already exists; contract numbers are unique")
    terms = terms_of(data.terms, start=today(), kind=data.kind)
    schedule = core.build_schedule(terms)
    last = len(schedule.rows)
    lease = Lease(
        code=data.code,
        kind=data.kind,
        lessor=lessor,
        lessee=data.lessee,
        currency=data.currency,
        status=LeaseStatus.active,
        principal=terms.principal,
        start_date=terms.start,
        end_date=schedule.end,
        terms=terms_to_json(terms),
        penalty_daily_rate=_rate(data.penalty_daily_rate),
        note=data.note,
        instalments=[
            LeaseInstalment(
                period=row.period,
                due_date=row.date,
                opening=row.opening,
                payment=row.payment,
                interest=row.interest,
                principal=row.principal,
                closing=row.closing,
                balloon=schedule.totals.residual if row.period == last else NIL,
            )
            for row in schedule.rows
        ],
    )
    session.add(lease)
    session.flush()
    _attach(session, lease, data.node_ids)
    session.flush()
    return lease


def update_lease(session: Session, principal: Principal, lease_id: int, patch: LeasePatch) -> Lease:
    lease = get_lease(session, principal, lease_id)
    changes = patch.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise Unprocessable(f"{key} cannot be cleared; send a value")
    target = changes.pop("status", None)
    if target is not None and target != lease.status:
        if target not in LEASE_TRANSITIONS[lease.status]:
            allowed = ", ".join(sorted(s.value for s in LEASE_TRANSITIONS[lease.status])) or "none"
            raise Conflict(
                f"lease {lease.code} is {lease.status.value}; it can move to: {allowed}",
                status_now=lease.status.value,
            )
        lease.status = target
    for key, value in changes.items():
        setattr(lease, key, value)
    session.flush()
    return lease


def delete_lease(session: Session, principal: Principal, lease_id: int) -> None:
    lease = get_lease(session, principal, lease_id)
    if lease.payments:
        raise Conflict(
            f"lease {lease.code} has {len(lease.payments)} payments recorded; a lease with payments is "
            "kept: terminate or close it instead"
        )
    session.delete(lease)
    session.flush()


def _attach(session: Session, lease: Lease, node_ids: Sequence[int]) -> list[LeaseAsset]:
    """Makes ``node_ids`` secure ``lease``: all of them, or none (the first problem is raised)."""
    if lease.status is not LeaseStatus.active:
        raise Conflict(
            f"lease {lease.code} is {lease.status.value}; its assets change only while it is active"
        )
    ids = list(dict.fromkeys(node_ids))
    if not ids:
        return []
    # The row locks make two leases claiming one node at the same time take turns (PostgreSQL).
    found = session.scalars(select(Node).where(Node.id.in_(ids)).with_for_update(of=Node))
    nodes = {n.id: n for n in found}
    missing = [i for i in ids if i not in nodes]
    if missing:
        raise Unprocessable(
            f"node {', '.join(map(str, missing[:5]))} does not exist; list nodes at /api/v1/nodes"
        )
    for node_id in ids:
        node = nodes[node_id]
        if node.state in (NodeState.sold, NodeState.retired):
            raise Conflict(f"node {node.serial} is {node.state.value}; it cannot secure a lease")
    mine = {asset.node_id for asset in lease.assets}
    for node_id in ids:
        if node_id in mine:
            raise Conflict(f"node {nodes[node_id].serial} already secures lease {lease.code}")
    other = session.execute(
        select(LeaseAsset.node_id, Lease.id, Lease.code)
        .join(Lease, Lease.id == LeaseAsset.lease_id)
        .where(LeaseAsset.node_id.in_(ids), Lease.status == LeaseStatus.active, Lease.id != lease.id)
        .order_by(Lease.id)
    ).first()
    if other is not None:
        raise Conflict(
            f"node {nodes[other.node_id].serial} already secures active lease {other.code} (id {other.id}); "
            "a node secures one active lease at a time: remove it from that lease or end that lease first",
            lease_id=other.id,
        )
    assets = [LeaseAsset(lease=lease, node=nodes[node_id]) for node_id in ids]
    session.add_all(assets)
    return assets


def add_asset(session: Session, principal: Principal, lease_id: int, node_id: int) -> LeaseAsset:
    lease = get_lease(session, principal, lease_id)
    (asset,) = _attach(session, lease, [node_id])
    session.flush()
    return asset


def remove_asset(session: Session, principal: Principal, lease_id: int, node_id: int) -> None:
    lease = get_lease(session, principal, lease_id)
    asset = next((a for a in lease.assets if a.node_id == node_id), None)
    if asset is None:
        raise NotFound(f"node {node_id} is not an asset of lease {lease.code}")
    if lease.status is not LeaseStatus.active:
        raise Conflict(
            f"lease {lease.code} is {lease.status.value}; its assets change only while it is active"
        )
    lease.assets.remove(asset)
    session.flush()


# ---------------------------------------------------------------------------------- the ledger


def _row(inst: LeaseInstalment) -> core.Row:
    return core.Row(
        inst.period, inst.due_date, inst.opening, inst.payment, inst.interest, inst.principal, inst.closing
    )


def instalments_of(lease: Lease) -> list[ledger.Instalment]:
    return [ledger.Instalment.of_row(_row(i), balloon=i.balloon) for i in lease.instalments]


def settled_of(lease: Lease) -> list[ledger.Settled]:
    periods = {i.id: i.period for i in lease.instalments}
    return [
        ledger.Settled(periods[a.instalment_id], p.paid_on, a.penalty, a.interest, a.principal)
        for p in lease.payments
        for a in p.allocations
    ]


def position(lease: Lease, as_of: date | None = None) -> ledger.Position:
    """The lease on ``as_of`` (default today): each instalment's status, outstanding principal, arrears."""
    return ledger.position(
        instalments_of(lease),
        settled_of(lease),
        as_of or today(),
        lease.penalty_daily_rate,
        principal=lease.principal,
    )


def stored_schedule(lease: Lease) -> core.Schedule:
    """The schedule as signed: the stored rows with the stored terms."""
    terms = terms_from_json(lease.terms)
    _, bounds = calendar_of(terms)
    return make_schedule(terms, [_row(i) for i in lease.instalments], bounds, None)


def record_payment(
    session: Session, principal: Principal, lease_id: int, data: PaymentIn, *, on_today: date | None = None
) -> LeasePayment:
    """Records money received and splits it across open instalments (see :mod:`.ledger`)."""
    lease = get_lease(session, principal, lease_id, lock=True)
    now = on_today or today()
    if lease.status is LeaseStatus.closed:
        raise Conflict(f"lease {lease.code} is closed; no payment can be recorded against it")
    if data.paid_on > now:
        raise Unprocessable(f"paid_on {data.paid_on} is in the future; record a payment once it is received")
    if data.paid_on < lease.start_date:
        raise Unprocessable(f"paid_on {data.paid_on} is before the lease starts on {lease.start_date}")
    last = max((p.paid_on for p in lease.payments), default=None)
    if last is not None and data.paid_on < last:
        raise Conflict(
            f"paid_on {data.paid_on} is before the last recorded payment ({last}); payments are recorded "
            "in date order, because each is split around the ones before it"
        )
    split = ledger.allocate(
        instalments_of(lease), settled_of(lease), data.paid_on, data.amount, lease.penalty_daily_rate
    )
    by_period = {i.period: i for i in lease.instalments}
    payment = LeasePayment(
        lease=lease,
        paid_on=data.paid_on,
        amount=data.amount,
        reference=data.reference,
        unapplied=split.unapplied,
        allocations=[
            PaymentAllocation(
                instalment=by_period[s.period],
                penalty=s.penalty,
                interest=s.interest,
                principal=s.principal,
                days_late=s.days_late,
            )
            for s in split.shares
        ],
    )
    session.add(payment)
    session.flush()
    return payment


def termination(
    session: Session,
    principal: Principal,
    lease_id: int,
    on: date | None = None,
    *,
    fee_rate: Decimal | str = "0",
) -> TerminationOut:
    """Buyout quote on ``on`` (default today), with the rent actually unpaid by then added and rent
    paid ahead of time credited."""
    lease = get_lease(session, principal, lease_id)
    on = on or today()
    q = core.termination_quote(stored_schedule(lease), on, fee_rate=fee_rate)
    pos = position(lease, on)
    arrears = sum((p.outstanding for p in pos.instalments if p.due <= on), NIL)
    ahead = sum((p.paid_interest + p.paid_principal for p in pos.instalments if p.due > on), NIL)
    ahead += sum((p.unapplied for p in lease.payments if p.paid_on <= on), NIL)
    return TerminationOut(
        on=q.on,
        paid_through=q.paid_through,
        outstanding_principal=q.outstanding_principal,
        accrued_interest=q.accrued_interest,
        days=q.days,
        fee=q.fee,
        purchase_option=q.purchase_option,
        total=q.total,
        arrears=arrears,
        penalty_owed=pos.penalty_owed,
        total_with_arrears=q.total + arrears + pos.penalty_owed - ahead,
        currency=lease.currency,
    )


# ----------------------------------------------------------------------------------- presenting


def _next_due(pos: ledger.Position) -> NextDue | None:
    n = pos.next_due
    return None if n is None else NextDue(period=n.period, due_date=n.due, owed=n.owed)


def _lease_fields(lease: Lease, pos: ledger.Position) -> dict[str, Any]:
    return {
        **{c.key: getattr(lease, c.key) for c in Lease.__table__.columns},
        "lessor_name": lease.lessor.name,
        "as_of": pos.as_of,
        "outstanding_principal": pos.outstanding_principal,
        "overdue_total": pos.overdue_total,
        "overdue_count": pos.overdue_count,
        "penalty_owed": pos.penalty_owed,
        "paid_total": pos.paid_total,
        "next_due": _next_due(pos),
    }


def present_lease(lease: Lease, as_of: date | None = None) -> LeaseOut:
    return LeaseOut(**_lease_fields(lease, position(lease, as_of)))


def present_payment(payment: LeasePayment) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        lease_id=payment.lease_id,
        paid_on=payment.paid_on,
        amount=payment.amount,
        reference=payment.reference,
        unapplied=payment.unapplied,
        allocations=[
            AllocationOut(
                period=a.instalment.period,
                penalty=a.penalty,
                interest=a.interest,
                principal=a.principal,
                days_late=a.days_late,
            )
            for a in payment.allocations
        ],
        created_at=payment.created_at,
    )


def present_instalments(lease: Lease, pos: ledger.Position) -> list[InstalmentOut]:
    rows = {i.period: i for i in lease.instalments}
    out = []
    for p in pos.instalments:
        i = rows[p.period]
        out.append(
            InstalmentOut(
                period=i.period,
                due_date=i.due_date,
                opening=i.opening,
                payment=i.payment,
                interest=i.interest,
                principal=i.principal,
                closing=i.closing,
                balloon=i.balloon,
                status=p.status,
                paid_interest=p.paid_interest,
                paid_principal=p.paid_principal,
                paid_penalty=p.paid_penalty,
                outstanding=p.outstanding,
                penalty_owed=p.penalty_owed,
                days_overdue=p.days_overdue,
                last_paid_on=p.last_paid_on,
            )
        )
    return out


def present_assets(assets: Sequence[LeaseAsset]) -> list[AssetOut]:
    return [
        AssetOut(
            node_id=a.node_id,
            serial=a.node.serial,
            model=a.node.model,
            state=a.node.state,
            state_since=a.node.state_since,
            purchase_cost=a.node.purchase_cost,
            currency=a.node.currency,
            added_at=a.created_at,
        )
        for a in assets
    ]


def present_lease_detail(lease: Lease, as_of: date | None = None) -> LeaseDetail:
    pos = position(lease, as_of)
    return LeaseDetail(
        **_lease_fields(lease, pos),
        instalments=present_instalments(lease, pos),
        assets=present_assets(lease.assets),
        payments=[present_payment(p) for p in lease.payments],
    )


# --------------------------------------------------------------------------------- credit lines


def get_credit_line(session: Session, principal: Principal, credit_line_id: int) -> CreditLine:
    line = session.scalar(readable_credit_lines(principal).where(CreditLine.id == credit_line_id))
    if line is None:
        raise NotFound(f"credit line {credit_line_id} does not exist or is not visible to you")
    return line


def create_credit_line(session: Session, principal: Principal, data: CreditLineIn) -> CreditLine:
    lessor = _lessor_for(session, principal, data.lessor_id)
    if data.drawn > data.limit:
        raise Unprocessable(f"drawn {data.drawn} is above the limit {data.limit}; a line cannot be overdrawn")
    values = data.model_dump(exclude={"lessor_id"})
    values["rate"] = _rate(values["rate"])
    line = CreditLine(lessor=lessor, **values)
    session.add(line)
    session.flush()
    return line


def update_credit_line(
    session: Session, principal: Principal, credit_line_id: int, patch: CreditLinePatch
) -> CreditLine:
    line = get_credit_line(session, principal, credit_line_id)
    changes = patch.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise Unprocessable(f"{key} cannot be cleared; send a value")
    limit = changes.get("limit", line.limit)
    drawn = changes.get("drawn", line.drawn)
    if drawn > limit:
        if "drawn" in changes:
            raise Conflict(f"drawn {drawn} would exceed the limit {limit}; a line cannot be overdrawn")
        raise Conflict(f"the limit {limit} would be below the {drawn} already drawn; repay first")
    if "rate" in changes:
        changes["rate"] = _rate(changes["rate"])
    for key, value in changes.items():
        setattr(line, key, value)
    session.flush()
    return line
