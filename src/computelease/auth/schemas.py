from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from computelease.auth.core import Role


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    role: Role
    customer_id: int | None = None
    lessor_id: int | None = None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    hint: str
    role: Role
    customer_id: int | None
    lessor_id: int | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str  # shown once; only its hash is stored


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    password: Annotated[str, StringConstraints(min_length=10, max_length=200)]
    role: Role
    display_name: str = ""
    customer_id: int | None = None
    lessor_id: int | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    customer_id: int | None
    lessor_id: int | None
    active: bool
    last_login_at: datetime | None


class Me(BaseModel):
    role: Role
    actor: str
    customer_id: int | None
    lessor_id: int | None
