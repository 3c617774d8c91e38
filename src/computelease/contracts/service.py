"""Customer, contract and SLA-policy use cases.

Every read starts from a ``readable_*`` statement, which applies the caller's scope: staff see all, a
customer's credential sees its own customer record and contracts (and the SLA policies those use), a
lessor's sees none of them. Services only flush; the caller's transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal, Role
from computelease.catalog.core import Catalog
from computelease.contracts import core
from computelease.contracts.core import ContractStatus
from computelease.contracts.models import Contract, ContractEvent, Customer, SlaPolicy
from computelease.contracts.schemas import (
    CapacityEquivalent,
    ContractDetail,
    ContractEventOut,
    ContractIn,
    ContractOut,
    ContractPatch,
    CustomerIn,
    CustomerPatch,
    SlaPolicyIn,
    SlaPolicyOut,
    TransitionIn,
)
from computelease.errors import AppError, Conflict, NotFound, Unprocessable
from computelease.kit import events as domain_events
from computelease.kit.time import as_utc, utcnow

# ---------------------------------------------------------------------------------------- scopes


def readable_customers(principal: Principal) -> Select[tuple[Customer]]:
    stmt = select(Customer)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        return stmt.where(Customer.id == principal.customer_id)
    return stmt.where(false())


def readable_contracts(principal: Principal) -> Select[tuple[Contract]]:
    stmt = select(Contract)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        return stmt.where(Contract.customer_id == principal.customer_id)
    return stmt.where(false())


def readable_sla_policies(principal: Principal) -> Select[tuple[SlaPolicy]]:
    """Staff see every policy; a customer only those its own contracts use."""
    stmt = select(SlaPolicy)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        used = select(Contract.sla_policy_id).where(Contract.customer_id == principal.customer_id)
        return stmt.where(SlaPolicy.id.in_(used))
    return stmt.where(false())


def catalog(session: Session) -> Catalog:
    """The accelerator catalog contracts are judged against: the shipped one plus the operator's own
    entries, so a contract can name a custom accelerator."""
    from computelease.catalog import service as catalog_service

    return catalog_service.catalog(session)


# ------------------------------------------------------------------------------------- customers


def get(session: Session, principal: Principal, customer_id: int) -> Customer:
    customer = session.scalar(readable_customers(principal).where(Customer.id == customer_id))
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist or is not visible to you")
    return customer


def _name_free(session: Session, name: str, *, other_than: int | None = None) -> None:
    stmt = select(Customer.id).where(Customer.name == name)
    if other_than is not None:
        stmt = stmt.where(Customer.id != other_than)
    if session.scalar(stmt) is not None:
        raise Conflict(f"a customer named {name!r} already exists; pick another name")


def create(session: Session, data: CustomerIn) -> Customer:
    _name_free(session, data.name)
    customer = Customer(**data.model_dump())
    session.add(customer)
    session.flush()
    return customer


CLEARABLE = {"tax_id"}  # a buyer may turn out to be foreign: no Chinese taxpayer id


def update(session: Session, principal: Principal, customer_id: int, patch: CustomerPatch) -> Customer:
    customer = get(session, principal, customer_id)
    changes = patch.model_dump(exclude_unset=True)
    if "name" in changes:
        _name_free(session, changes["name"], other_than=customer.id)
    for key, value in changes.items():
        if value is None and key not in CLEARABLE:
            raise Conflict(f"{key} cannot be cleared; send a value")
        setattr(customer, key, value)
    session.flush()
    return customer


def delete(session: Session, principal: Principal, customer_id: int) -> None:
    customer = get(session, principal, customer_id)
    from computelease.auth.models import ApiToken, User

    for model in (User, ApiToken, Contract):
        if session.scalar(select(model.id).where(model.customer_id == customer.id).limit(1)) is not None:
            raise Conflict(
                f"customer {customer_id} still has {model.__tablename__} records; remove or rebind them first"
            )
    session.delete(customer)
    session.flush()


# ---------------------------------------------------------------------------------- SLA policies


def get_sla_policy(session: Session, principal: Principal, policy_id: int) -> SlaPolicy:
    policy = session.scalar(readable_sla_policies(principal).where(SlaPolicy.id == policy_id))
    if policy is None:
        raise NotFound(f"SLA policy {policy_id} does not exist or is not visible to you")
    return policy


def create_sla_policy(session: Session, data: SlaPolicyIn) -> SlaPolicy:
    if session.scalar(select(SlaPolicy.id).where(SlaPolicy.name == data.name)) is not None:
        raise Conflict(f"an SLA policy named {data.name!r} already exists; pick another name")
    tiers = core.validate_sla_policy(
        data.target_pct, (core.CreditTier(t.below, t.credit_pct) for t in data.credit_tiers), data.cap_pct
    )
    policy = SlaPolicy(
        name=data.name,
        target_pct=data.target_pct,
        credit_tiers=[t.to_dict() for t in tiers],
        cap_pct=data.cap_pct,
        maintenance_allowance_hours=data.maintenance_allowance_hours,
        notice_hours=data.notice_hours,
        description=data.description,
    )
    session.add(policy)
    session.flush()
    return policy


def credit_tiers(policy: SlaPolicy) -> tuple[core.CreditTier, ...]:
    """The policy's tiers as core values (Decimal thresholds and credits), highest threshold first."""
    return tuple(core.CreditTier(Decimal(t["below"]), Decimal(t["credit_pct"])) for t in policy.credit_tiers)


# ------------------------------------------------------------------------------------- contracts

# Descriptive fields: they may change in any status. Everything else is a term, fixed once signed.
_DESCRIPTIVE = frozenset({"name", "notes"})
_REQUIRED = frozenset(
    {
        "customer_id",
        "name",
        "capacity_unit",
        "capacity",
        "placement",
        "start_date",
        "end_date",
        "pricing",
        "price",
        "om_monthly_fee",
        "deposit",
        "prepayment",
        "payment_terms_days",
        "currency",
        "timezone",
        "prices_include_vat",
    }
)


def get_contract(session: Session, principal: Principal, contract_id: int) -> Contract:
    contract = session.scalar(readable_contracts(principal).where(Contract.id == contract_id))
    if contract is None:
        raise NotFound(f"contract {contract_id} does not exist or is not visible to you")
    return contract


def list_contracts(
    principal: Principal, *, status: ContractStatus | None = None, customer_id: int | None = None
) -> Select[tuple[Contract]]:
    stmt = readable_contracts(principal)
    if status is not None:
        stmt = stmt.where(Contract.status == status)
    if customer_id is not None:
        stmt = stmt.where(Contract.customer_id == customer_id)
    return stmt.order_by(Contract.start_date.desc(), Contract.id.desc())


def terms_of(values: dict[str, Any] | Contract) -> core.Terms:
    """The pure terms of a stored contract or of a dict of its columns."""
    get_ = values.get if isinstance(values, dict) else (lambda key: getattr(values, key))
    unit = core.CapacityUnit(get_("capacity_unit"))
    precision = get_("precision") or ("bf16" if unit is core.CapacityUnit.pflops else None)
    return core.Terms(
        capacity=core.Capacity(unit, Decimal(get_("capacity")), precision),
        requirement=core.AcceleratorRequirement(
            model=get_("accelerator_model") or None,
            min_memory_gb=get_("min_memory_gb"),
            min_tflops=get_("min_tflops"),
            min_tflops_precision=get_("min_tflops_precision"),
        ),
        placement=core.Placement(get_("placement")),
        start=get_("start_date"),
        end=get_("end_date"),
        price=core.PriceTerms(
            core.Pricing(get_("pricing")), Decimal(get_("price")), Decimal(get_("om_monthly_fee"))
        ),
        tz=get_("timezone"),
        currency=get_("currency"),
    )


def evaluate(session: Session, contract: Contract) -> core.Evaluation:
    """What the stored terms come to against today's catalog (models, GPUs, nodes, value)."""
    return core.evaluate(terms_of(contract), catalog=catalog(session))


def capacity_for(session: Session, contract: Contract, model: str) -> core.Conversion:
    """The contract's capacity in GPUs and nodes of ``model``: what the allocator asks for."""
    return core.convert_capacity(terms_of(contract).capacity, model, catalog=catalog(session))


def _derive(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Columns that follow from the terms; refuses terms that cannot be a contract."""
    terms = terms_of(values)
    evaluation = core.evaluate(terms, catalog=catalog(session))
    return {
        "precision": terms.capacity.precision,
        "min_tflops_precision": terms.requirement.min_tflops_precision,
        "accelerator_model": terms.requirement.model,
        "starts_at": evaluation.starts_at,
        "ends_at": evaluation.ends_at,
        "billable_gpus": evaluation.quantity.gpus,
        "billable_pflops": _pflops(evaluation.quantity.pflops),
        "total_value": evaluation.value.total,
    }


def _pflops(value: Decimal | None) -> Decimal | None:
    # A figure such as 989.45 TFLOPS makes GPUs × figure / 1000 run to 5 decimals; 6 are stored.
    if value is None:
        return None
    if value != value.quantize(Decimal("0.000001")):
        raise Unprocessable(
            f"the billable PFLOPS {value} have more than 6 decimals; give whole GPUs or PFLOPS"
        )
    return value


def _check_references(session: Session, principal: Principal, values: dict[str, Any]) -> None:
    if session.scalar(readable_customers(principal).where(Customer.id == values["customer_id"])) is None:
        raise Unprocessable(
            f"customer_id {values['customer_id']} is not a customer you can see; pick an existing one"
        )
    policy_id = values.get("sla_policy_id")
    if policy_id is not None and session.get(SlaPolicy, policy_id) is None:
        raise Unprocessable(
            f"sla_policy_id {policy_id} is not an SLA policy; list them at /api/v1/sla-policies"
        )


def _record(session: Session, contract: Contract, from_status: ContractStatus | None, **kw: Any) -> None:
    event = ContractEvent(contract=contract, from_status=from_status, to_status=contract.status, **kw)
    session.add(event)


def create_contract(session: Session, principal: Principal, data: ContractIn) -> Contract:
    values = data.model_dump()
    _check_references(session, principal, values)
    values.update(_derive(session, values))
    contract = Contract(status=ContractStatus.draft, **values)
    session.add(contract)
    _record(session, contract, None, at=utcnow(), reason="created", actor=principal.actor)
    session.flush()
    return contract


def update_contract(
    session: Session, principal: Principal, contract_id: int, patch: ContractPatch
) -> Contract:
    contract = get_contract(session, principal, contract_id)
    changes = patch.model_dump(exclude_unset=True)
    terms = sorted(k for k, v in changes.items() if k not in _DESCRIPTIVE and v != getattr(contract, k))
    if terms and contract.status is not ContractStatus.draft:
        raise Conflict(
            f"contract {contract_id} is {contract.status.value}; its terms ({', '.join(terms)}) can change "
            "only in draft. Name and notes can still change",
            status_now=contract.status.value,
        )
    for key in _REQUIRED & changes.keys():
        if changes[key] is None:
            raise Unprocessable(f"{key} cannot be cleared; send a value")
    values = {
        c.key: getattr(contract, c.key)
        for c in Contract.__table__.columns
        if c.key in ContractIn.model_fields
    }
    values.update(changes)
    # A minimum spec and a model exclude each other: setting one clears the other.
    if changes.get("accelerator_model"):
        values.update(min_memory_gb=None, min_tflops=None, min_tflops_precision=None)
    elif changes.get("min_memory_gb") is not None or changes.get("min_tflops") is not None:
        values["accelerator_model"] = None
    if "capacity_unit" in changes and changes["capacity_unit"] != core.CapacityUnit.pflops:
        values["precision"] = None
    if terms:
        _check_references(session, principal, values)
        values.update(_derive(session, values))
    for key, value in values.items():
        if getattr(contract, key) != value:
            setattr(contract, key, value)
    session.flush()
    return contract


def transition(
    session: Session,
    principal: Principal,
    contract_id: int,
    data: TransitionIn,
    *,
    now: datetime | None = None,
) -> Contract:
    """Move the contract to ``data.to`` at ``data.at`` (default now), recording the event."""
    contract = get_contract(session, principal, contract_id)
    target = core.check_transition(contract.status, data.to)
    now = now or utcnow()
    at = as_utc(data.at) if data.at is not None else now
    if at.date() < core.EARLIEST:
        raise Unprocessable(f"at {at.isoformat()} is before {core.EARLIEST.isoformat()}; check the year")
    if at > now:
        raise Unprocessable(f"at {at.isoformat()} is in the future; record a status change once it happened")
    # Creation is when the record was entered, which may be long after a contract was signed on paper;
    # only the status changes themselves must be in order.
    last = max((e.at for e in contract.events if e.from_status is not None), default=None)
    if last is not None and at < last:
        raise Unprocessable(
            f"at {at.isoformat()} is before the contract's last status change ({last.isoformat()}); "
            "status changes are recorded in order"
        )
    if target is ContractStatus.terminated and not data.reason.strip():
        raise Unprocessable("say why the contract is terminated: send a reason")
    before = contract.status
    contract.status = target
    _record(session, contract, before, at=at, reason=data.reason, actor=principal.actor)
    session.flush()
    domain_events.publish(
        session, "contract.status_changed", contract_id=contract.id, from_=before, to=target, at=at
    )
    return contract


# ------------------------------------------------------------------------------------ presenting


def present(session: Session, contract: Contract, *, with_catalog: Catalog | None = None) -> ContractOut:
    """The contract as the API shows it. A list passes one catalog for all its rows."""
    return ContractOut(**_presented(session, contract, with_catalog))


def present_many(session: Session, contracts: Iterable[Contract]) -> list[ContractOut]:
    shared = catalog(session)
    return [present(session, c, with_catalog=shared) for c in contracts]


def present_detail(session: Session, contract: Contract) -> ContractDetail:
    return ContractDetail(
        **_presented(session, contract, None),
        sla_policy=SlaPolicyOut.model_validate(contract.sla_policy) if contract.sla_policy else None,
        # In time order; a transition just recorded sits at the end of the loaded list until a reload.
        events=[
            ContractEventOut.model_validate(e)
            for e in sorted(contract.events, key=lambda e: (e.at, e.id or 0))
        ],
    )


def _presented(session: Session, contract: Contract, with_catalog: Catalog | None) -> dict[str, Any]:
    terms = terms_of(contract)
    equivalents: list[CapacityEquivalent] = []
    problem = None
    try:
        evaluation = core.evaluate(terms, catalog=with_catalog or catalog(session))
    except AppError as exc:
        # Stored terms were valid when saved; a catalog change must not make the contract unreadable.
        problem = exc.detail
    else:
        equivalents = [
            CapacityEquivalent(
                model=model, gpus=c.gpus, nodes=c.nodes, pflops=c.pflops, precision=c.precision, sku=c.sku
            )
            for model, c in sorted(evaluation.conversions.items())
        ]
    months = core.term_length(contract.start_date, contract.end_date).months
    return {
        **{c.key: getattr(contract, c.key) for c in Contract.__table__.columns},
        "customer_name": contract.customer.name,
        "allowed_transitions": list(core.TRANSITIONS[contract.status]),
        "capacity_label": terms.capacity.describe(),
        "compatible_models": [e.model for e in equivalents],
        "capacity_by_model": equivalents,
        "term_months": (Decimal(months.numerator) / Decimal(months.denominator)).quantize(Decimal("0.0001")),
        "catalog_problem": problem,
    }


def service_ends(session: Session, contracts: Sequence[Contract]) -> dict[int, datetime]:
    """The end of service of each contract (the term's end, or its termination if earlier), in one query.
    Billing bills up to it and the SLA measures up to it: a terminated contract owes nothing after."""
    terminated = [c.id for c in contracts if c.status is ContractStatus.terminated]
    at: dict[int, datetime] = {}
    if terminated:
        at = dict(
            session.execute(
                select(ContractEvent.contract_id, func.max(ContractEvent.at))
                .where(
                    ContractEvent.contract_id.in_(terminated),
                    ContractEvent.to_status == ContractStatus.terminated,
                )
                .group_by(ContractEvent.contract_id)
            ).all()
        )
    return {c.id: max(min(c.ends_at, at[c.id]), c.starts_at) if c.id in at else c.ends_at for c in contracts}


def service_end(session: Session, contract: Contract) -> datetime:
    """The end of service: the term's end, or the termination if earlier."""
    return service_ends(session, [contract])[contract.id]
