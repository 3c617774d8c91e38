from __future__ import annotations

from fastapi import APIRouter, status

from computelease.auth.deps import Caller, Session, Staff
from computelease.finance import service
from computelease.finance.models import Lessor
from computelease.finance.schemas import LessorIn, LessorOut
from computelease.kit.pagination import Page, Paging, paginate

router = APIRouter(prefix="/lessors", tags=["lessors"])


@router.get("", response_model=Page[LessorOut], summary="Lessors you may see")
def list_lessors(session: Session, caller: Caller, paging: Paging) -> Page[LessorOut]:
    items, total = paginate(session, service.readable_lessors(caller).order_by(Lessor.name), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post("", response_model=LessorOut, status_code=status.HTTP_201_CREATED)
def create_lessor(session: Session, caller: Staff, data: LessorIn) -> LessorOut:
    return service.create(session, data)


@router.get("/{lessor_id}", response_model=LessorOut)
def get_lessor(session: Session, caller: Caller, lessor_id: int) -> LessorOut:
    return service.get(session, caller, lessor_id)
