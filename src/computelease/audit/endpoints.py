from __future__ import annotations

from fastapi import APIRouter

from computelease.audit import service
from computelease.audit.schemas import AuditOut
from computelease.auth.deps import Admin, Session
from computelease.kit.pagination import Page, Paging

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditOut], summary="Changes to business records, newest first")
def list_audit(
    session: Session,
    caller: Admin,
    paging: Paging,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
) -> Page[AuditOut]:
    items, total = service.list_entries(
        session, entity=entity, entity_id=entity_id, actor=actor, limit=paging.limit, offset=paging.offset
    )
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)
