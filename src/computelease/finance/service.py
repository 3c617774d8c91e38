"""Lessor use cases. A lessor's credential sees only its own organisation; staff see all."""

from __future__ import annotations

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal, Role
from computelease.errors import Conflict, NotFound
from computelease.finance.models import Lessor
from computelease.finance.schemas import LessorIn


def readable_lessors(principal: Principal) -> Select[tuple[Lessor]]:
    stmt = select(Lessor)
    if principal.is_staff:
        return stmt
    if principal.role == Role.lessor:
        return stmt.where(Lessor.id == principal.lessor_id)
    return stmt.where(false())


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
