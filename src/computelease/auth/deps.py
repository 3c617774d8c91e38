"""FastAPI dependencies: the request's transaction and its caller.

``Session`` wraps each request in :meth:`Database.transaction` with ``scope="function"``, so the commit
happens before the response is sent: a failed commit becomes an error response, never a false 200.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session as OrmSession

from computelease.auth import service
from computelease.auth.core import Principal, Role, hash_token
from computelease.auth.models import ApiToken
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


# Token hash → principal, for a few seconds: spares each request the token's SELECT and its
# last_used_at UPDATE (which, with one token behind many concurrent requests, serialised them on the
# token's row). Revoking a token through this process (API or CLI, any ORM update of revoked_at) drops
# every cached entry at once; a revocation made by another process takes effect here within the TTL.
# last_used_at is therefore written at most once per TTL per process.
TOKEN_CACHE_TTL_S = 5.0
_TOKEN_CACHE_MAX = 10_000
_token_generation = 0


def _forget_tokens() -> None:
    global _token_generation
    _token_generation += 1


@event.listens_for(ApiToken, "after_update")
def _token_updated(_mapper: object, _connection: object, target: ApiToken) -> None:
    if inspect(target).attrs.revoked_at.history.has_changes():
        _forget_tokens()


@event.listens_for(ApiToken, "after_delete")
def _token_deleted(_mapper: object, _connection: object, _target: ApiToken) -> None:
    _forget_tokens()


def _principal(request: Request, session: OrmSession, raw: str) -> Principal:
    cache: dict[str, tuple[float, int, Principal]] | None = getattr(request.app.state, "token_cache", None)
    if cache is None:
        cache = request.app.state.token_cache = {}
    key, now, generation = hash_token(raw), time.monotonic(), _token_generation
    hit = cache.get(key)
    if hit is not None and hit[0] > now and hit[1] == generation:
        return hit[2]
    principal = service.principal_for_token(session, raw)
    if len(cache) >= _TOKEN_CACHE_MAX:
        cache.clear()
    cache[key] = (now + TOKEN_CACHE_TTL_S, generation, principal)
    return principal


def get_principal(request: Request, session: Session) -> Principal:
    principal = _principal(request, session, _bearer(request))
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
