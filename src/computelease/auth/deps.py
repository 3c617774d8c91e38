"""FastAPI dependencies: the request's transaction and its caller.

``Session`` wraps each request in :meth:`Database.transaction` with ``scope="function"``, so the commit
happens before the response is sent: a failed commit becomes an error response, never a false 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session as OrmSession

from computelease.auth import service
from computelease.auth.core import Principal, Role
from computelease.db import Database
from computelease.errors import Forbidden, Unauthorized


def get_db(request: Request) -> Database:
    return request.app.state.db


def _session(request: Request) -> Iterator[OrmSession]:
    with get_db(request).transaction(actor="anonymous") as session:
        yield session


Session = Annotated[OrmSession, Depends(_session, scope="function")]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(
            "send `Authorization: Bearer <token>`; create a token with `computelease token create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return value.strip()


def get_principal(request: Request, session: Session) -> Principal:
    principal = service.principal_for_token(session, _bearer(request))
    session.info["actor"] = principal.actor
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role):
    """A dependency that admits only the given roles."""
    allowed = frozenset(roles)

    def check(principal: Caller) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs the role {names}; your token has {principal.role.value}")
        return principal

    return Depends(check)


Staff = Annotated[Principal, require(Role.admin, Role.operator)]
Admin = Annotated[Principal, require(Role.admin)]
