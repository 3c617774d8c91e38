from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from computelease.contracts.models import Segment

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Currency = Annotated[str, Field(pattern="^(CNY|USD|EUR|HKD)$", description="ISO 4217 code")]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    segment: Segment
    credit_limit: Amount = Decimal("0.00")
    currency: Currency = "CNY"


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    segment: Segment | None = None
    credit_limit: Amount | None = None
    currency: Currency | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    segment: Segment
    credit_limit: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime
