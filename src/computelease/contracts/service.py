"""Customer use cases. Every read starts from :func:`readable_customers`, which applies the caller's scope."""

from __future__ import annotations

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal, Role
from computelease.contracts.models import Customer
from computelease.contracts.schemas import CustomerIn, CustomerPatch
from computelease.errors import Conflict, NotFound


def readable_customers(principal: Principal) -> Select[tuple[Customer]]:
    stmt = select(Customer)
    if principal.is_staff:
        return stmt
    if principal.role == Role.customer:
        return stmt.where(Customer.id == principal.customer_id)
    return stmt.where(false())


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


def update(session: Session, principal: Principal, customer_id: int, patch: CustomerPatch) -> Customer:
    customer = get(session, principal, customer_id)
    changes = patch.model_dump(exclude_unset=True)
    if "name" in changes:
        _name_free(session, changes["name"], other_than=customer.id)
    for key, value in changes.items():
        if value is None:
            raise Conflict(f"{key} cannot be cleared; send a value")
        setattr(customer, key, value)
    session.flush()
    return customer


def delete(session: Session, principal: Principal, customer_id: int) -> None:
    customer = get(session, principal, customer_id)
    from computelease.auth.models import ApiToken, User

    for model in (User, ApiToken):
        if session.scalar(select(model.id).where(model.customer_id == customer.id).limit(1)) is not None:
            raise Conflict(
                f"customer {customer_id} still has {model.__tablename__} records; remove or rebind them first"
            )
    session.delete(customer)
    session.flush()
