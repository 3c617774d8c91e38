"""Use cases for tokens and users. Services flush; the caller's transaction commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from computelease.auth.core import (
    DUMMY_HASH,
    Principal,
    Role,
    hash_password,
    hash_token,
    new_token,
    verify_password,
)
from computelease.auth.models import ApiToken, User
from computelease.errors import BadRequest, Conflict, NotFound, Unauthorized
from computelease.kit.time import utcnow

MIN_PASSWORD = 10


def _check_binding(session: Session, role: Role, customer_id: int | None, lessor_id: int | None) -> None:
    from computelease.contracts.models import Customer
    from computelease.finance.models import Lessor

    if role == Role.customer:
        if customer_id is None or lessor_id is not None:
            raise BadRequest("a customer credential needs --customer ID (and no --lessor)")
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"customer {customer_id} does not exist; list customers to find its id")
    elif role == Role.lessor:
        if lessor_id is None or customer_id is not None:
            raise BadRequest("a lessor credential needs --lessor ID (and no --customer)")
        if session.get(Lessor, lessor_id) is None:
            raise NotFound(f"lessor {lessor_id} does not exist; list lessors to find its id")
    elif customer_id is not None or lessor_id is not None:
        raise BadRequest(f"role {role.value} sees everything; drop --customer / --lessor")


def create_token(
    session: Session,
    *,
    role: Role,
    name: str,
    customer_id: int | None = None,
    lessor_id: int | None = None,
) -> tuple[ApiToken, str]:
    """Returns the stored token and its plain text, which exists only in this return value."""
    name = name.strip()
    if not name:
        raise BadRequest("a token needs a name that says who or what uses it")
    _check_binding(session, role, customer_id, lessor_id)
    raw = new_token()
    token = ApiToken(
        name=name,
        token_hash=hash_token(raw),
        hint=raw[:8],
        role=role,
        customer_id=customer_id,
        lessor_id=lessor_id,
    )
    session.add(token)
    session.flush()
    return token, raw


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def principal_for_token(session: Session, raw: str) -> Principal:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized(
            "the bearer token is unknown or revoked; create one with `computelease token create`"
        )
    token.last_used_at = utcnow()
    return Principal(
        role=token.role,
        actor=f"token:{token.id}:{token.name}",
        customer_id=token.customer_id,
        lessor_id=token.lessor_id,
    )


def principal_for_user(user: User) -> Principal:
    return Principal(
        role=user.role, actor=f"user:{user.username}", customer_id=user.customer_id, lessor_id=user.lessor_id
    )


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    customer_id: int | None = None,
    lessor_id: int | None = None,
) -> User:
    username = username.strip().lower()
    if not username or len(username) > 100:
        raise BadRequest("a username needs 1 to 100 characters")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken; choose another")
    _check_binding(session, role, customer_id, lessor_id)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        customer_id=customer_id,
        lessor_id=lessor_id,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    session.flush()
    return user


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        verify_password(DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))
