from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from computelease.audit.models import Audited
from computelease.auth.core import Role
from computelease.db import Base, Record

_BINDING = (
    "(role = 'customer' AND customer_id IS NOT NULL AND lessor_id IS NULL)"
    " OR (role = 'lessor' AND lessor_id IS NOT NULL AND customer_id IS NULL)"
    " OR (role IN ('admin', 'operator') AND customer_id IS NULL AND lessor_id IS NULL)"
)

RoleType = Enum(Role, name="role", native_enum=False, length=20, validate_strings=True)


class User(Record, Audited, Base):
    """A person who logs into the web pages."""

    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint(_BINDING, name="role_binding"),)
    __audit_exclude__ = frozenset({"password_hash"})

    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(RoleType)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    lessor_id: Mapped[int | None] = mapped_column(ForeignKey("lessor.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None]


class ApiToken(Record, Audited, Base):
    """A bearer token for the API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_token"
    __table_args__ = (CheckConstraint(_BINDING, name="role_binding"),)
    __audit_exclude__ = frozenset({"token_hash", "last_used_at"})

    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(12))  # first characters, to recognise a token in a list
    role: Mapped[Role] = mapped_column(RoleType)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    lessor_id: Mapped[int | None] = mapped_column(ForeignKey("lessor.id", ondelete="RESTRICT"))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
