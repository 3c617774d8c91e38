from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from computelease.auth.deps import Caller, Session, Staff
from computelease.contracts import service
from computelease.contracts.core import ContractStatus
from computelease.contracts.models import Customer, SlaPolicy
from computelease.contracts.schemas import (
    ContractDetail,
    ContractIn,
    ContractOut,
    ContractPatch,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    SlaPolicyIn,
    SlaPolicyOut,
    TransitionIn,
)
from computelease.kit.pagination import Page, Paging, paginate

router = APIRouter()
customers = APIRouter(prefix="/customers", tags=["customers"])
contracts = APIRouter(prefix="/contracts", tags=["contracts"])
sla_policies = APIRouter(prefix="/sla-policies", tags=["sla policies"])


@customers.get("", response_model=Page[CustomerOut], summary="Customers you may see")
def list_customers(session: Session, caller: Caller, paging: Paging) -> Page[CustomerOut]:
    stmt = service.readable_customers(caller).order_by(Customer.name)
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@customers.post("", response_model=CustomerOut, status_code=status.HTTP_201_CREATED)
def create_customer(session: Session, caller: Staff, data: CustomerIn) -> CustomerOut:
    return service.create(session, data)


@customers.get("/{customer_id}", response_model=CustomerOut)
def get_customer(session: Session, caller: Caller, customer_id: int) -> CustomerOut:
    return service.get(session, caller, customer_id)


@customers.patch("/{customer_id}", response_model=CustomerOut)
def update_customer(session: Session, caller: Staff, customer_id: int, patch: CustomerPatch) -> CustomerOut:
    return service.update(session, caller, customer_id, patch)


@customers.delete("/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_customer(session: Session, caller: Staff, customer_id: int) -> None:
    service.delete(session, caller, customer_id)


@contracts.get("", response_model=Page[ContractOut], summary="Contracts you may see")
def list_contracts(
    session: Session,
    caller: Caller,
    paging: Paging,
    status: Annotated[ContractStatus | None, Query(description="only this status")] = None,
    customer_id: Annotated[int | None, Query(description="only this customer's")] = None,
) -> Page[ContractOut]:
    stmt = service.list_contracts(caller, status=status, customer_id=customer_id)
    rows, total = paginate(session, stmt, paging)
    items = service.present_many(session, rows)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@contracts.post(
    "", response_model=ContractDetail, status_code=status.HTTP_201_CREATED, summary="Create a draft contract"
)
def create_contract(session: Session, caller: Staff, data: ContractIn) -> ContractDetail:
    return service.present_detail(session, service.create_contract(session, caller, data))


@contracts.get("/{contract_id}", response_model=ContractDetail)
def get_contract(session: Session, caller: Caller, contract_id: int) -> ContractDetail:
    return service.present_detail(session, service.get_contract(session, caller, contract_id))


@contracts.patch(
    "/{contract_id}",
    response_model=ContractDetail,
    summary="Change terms (draft only; name and notes always)",
)
def update_contract(
    session: Session, caller: Staff, contract_id: int, patch: ContractPatch
) -> ContractDetail:
    return service.present_detail(session, service.update_contract(session, caller, contract_id, patch))


@contracts.post(
    "/{contract_id}/transitions",
    response_model=ContractDetail,
    summary="Change status: draft → signed → active → ended | terminated",
)
def transition_contract(
    session: Session, caller: Staff, contract_id: int, data: TransitionIn
) -> ContractDetail:
    return service.present_detail(session, service.transition(session, caller, contract_id, data))


@sla_policies.get("", response_model=Page[SlaPolicyOut], summary="SLA policies you may see")
def list_sla_policies(session: Session, caller: Caller, paging: Paging) -> Page[SlaPolicyOut]:
    stmt = service.readable_sla_policies(caller).order_by(SlaPolicy.name)
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@sla_policies.post("", response_model=SlaPolicyOut, status_code=status.HTTP_201_CREATED)
def create_sla_policy(session: Session, caller: Staff, data: SlaPolicyIn) -> SlaPolicyOut:
    return service.create_sla_policy(session, data)


@sla_policies.get("/{sla_policy_id}", response_model=SlaPolicyOut)
def get_sla_policy(session: Session, caller: Caller, sla_policy_id: int) -> SlaPolicyOut:
    return service.get_sla_policy(session, caller, sla_policy_id)


router.include_router(customers)
router.include_router(contracts)
router.include_router(sla_policies)
