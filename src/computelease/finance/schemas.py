from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from computelease.contracts.schemas import Name
from computelease.finance.models import LessorKind


class LessorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: LessorKind = LessorKind.financial_leasing


class LessorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: LessorKind
    created_at: datetime
