from __future__ import annotations

from fastapi import APIRouter, status

from computelease.auth.deps import Caller, Session, Staff
from computelease.contracts import service
from computelease.contracts.schemas import CustomerIn, CustomerOut, CustomerPatch
from computelease.kit.pagination import Page, Paging, paginate

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("", response_model=Page[CustomerOut], summary="Customers you may see")
def list_customers(session: Session, caller: Caller, paging: Paging) -> Page[CustomerOut]:
    from computelease.contracts.models import Customer

    stmt = service.readable_customers(caller).order_by(Customer.name)
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post("", response_model=CustomerOut, status_code=status.HTTP_201_CREATED)
def create_customer(session: Session, caller: Staff, data: CustomerIn) -> CustomerOut:
    return service.create(session, data)


@router.get("/{customer_id}", response_model=CustomerOut)
def get_customer(session: Session, caller: Caller, customer_id: int) -> CustomerOut:
    return service.get(session, caller, customer_id)


@router.patch("/{customer_id}", response_model=CustomerOut)
def update_customer(session: Session, caller: Staff, customer_id: int, patch: CustomerPatch) -> CustomerOut:
    return service.update(session, caller, customer_id, patch)


@router.delete("/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_customer(session: Session, caller: Staff, customer_id: int) -> None:
    service.delete(session, caller, customer_id)
