"""Operators' own catalog entries. The row keeps the entry whole, as :meth:`Accelerator.to_dict` /
:meth:`ServerSku.to_dict` write it, so a custom entry has exactly the fields of a shipped one and is
read back through the same validating parser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from computelease.audit.models import Audited
from computelease.db import Base
from computelease.kit.time import utcnow


class CustomAccelerator(Audited, Base):
    __tablename__ = "custom_accelerator"

    # The catalog id (``acme-x1``): the same key nodes, SKUs and contracts use for shipped entries.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomSku(Audited, Base):
    __tablename__ = "custom_sku"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Kept as a column as well as inside ``data`` so "which SKUs hold this accelerator" is a query.
    accelerator_id: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
