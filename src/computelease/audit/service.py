"""Writes the audit log from the ORM's flush, so no service can forget to.

The entries are inserted on the flushing connection, inside the same transaction as the change: a
rolled-back change leaves no entry, and a committed one always has its entry.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, func, insert, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from computelease.audit.models import Audited, AuditEntry
from computelease.kit.time import utcnow


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _values(obj: Any, *, committed: bool = False) -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in obj.__audit_exclude__:
            continue
        hist = state.attrs[attr.key].history
        if committed:
            value = (hist.deleted or hist.unchanged or hist.added or [None])[0]
        else:
            value = state.attrs[attr.key].value
        out[attr.key] = _plain(value)
    return out


def _identity(obj: Any) -> str:
    return ",".join(str(v) for v in inspect(obj).mapper.primary_key_from_instance(obj))


def _after_flush(session: Session, _ctx: Any) -> None:
    actor = session.info.get("actor", "system")
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for obj in session.new:
        if isinstance(obj, Audited):
            rows.append(
                {"action": "create", "obj": obj, "before": None, "after": _values(obj)},
            )
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            before, after = _values(obj, committed=True), _values(obj)
            changed = {k for k in after if before.get(k) != after.get(k)} - {"updated_at"}
            if changed:
                rows.append(
                    {
                        "action": "update",
                        "obj": obj,
                        "before": {k: before[k] for k in sorted(changed)},
                        "after": {k: after[k] for k in sorted(changed)},
                    }
                )
    for obj in session.deleted:
        if isinstance(obj, Audited):
            rows.append(
                {"action": "delete", "obj": obj, "before": _values(obj, committed=True), "after": None}
            )
    if not rows:
        return
    session.connection().execute(
        insert(AuditEntry.__table__),
        [
            {
                "at": now,
                "actor": actor,
                "action": r["action"],
                "entity": r["obj"].__tablename__,
                "entity_id": _identity(r["obj"]),
                "before": r["before"],
                "after": r["after"],
            }
            for r in rows
        ],
    )


def install(factory: sessionmaker[Session]) -> None:
    if not event.contains(factory, "after_flush", _after_flush):
        event.listen(factory, "after_flush", _after_flush)


def list_entries(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    stmt = select(AuditEntry)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    entries = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
    return list(entries), total
