from __future__ import annotations

from fastapi import APIRouter, status

from computelease.auth import service
from computelease.auth.deps import Admin, Caller, Session
from computelease.auth.schemas import Me, TokenCreated, TokenIn, TokenOut, UserIn, UserOut

router = APIRouter(tags=["auth"])


@router.get("/me", response_model=Me, summary="Who this token is and what it may see")
def me(caller: Caller) -> Me:
    return Me(
        role=caller.role, actor=caller.actor, customer_id=caller.customer_id, lessor_id=caller.lessor_id
    )


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(session: Session, caller: Admin) -> list[TokenOut]:
    return service.list_tokens(session)


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(session: Session, caller: Admin, data: TokenIn) -> TokenCreated:
    token, raw = service.create_token(
        session, role=data.role, name=data.name, customer_id=data.customer_id, lessor_id=data.lessor_id
    )
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=raw)


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke_token(session: Session, caller: Admin, token_id: int) -> TokenOut:
    return service.revoke_token(session, token_id)


@router.get("/users", response_model=list[UserOut])
def list_users(session: Session, caller: Admin) -> list[UserOut]:
    return service.list_users(session)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(session: Session, caller: Admin, data: UserIn) -> UserOut:
    return service.create_user(session, **data.model_dump())
