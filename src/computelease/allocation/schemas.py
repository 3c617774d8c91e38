"""Allocation API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class AllocationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    node_serial: str
    contract_id: int
    contract_name: str
    start_at: datetime
    end_at: datetime
    created_at: datetime


class ReplacementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    old_node_id: int
    new_node_id: int
    at: datetime
    reason: str


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: AwareDatetime | None = Field(None, description="plan from this instant on (default: now)")
    rebalance: bool = Field(False, description="release every allocation from as_of on and plan afresh")
    dry_run: bool = Field(False, description="only say what would be allocated")
    contract_ids: list[int] | None = Field(
        None, description="only these contracts (default: all signed/active)"
    )


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int | None
    node_id: int
    node_serial: str
    contract_id: int
    contract_name: str
    start_at: datetime
    end_at: datetime


class ShortfallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    contract_id: int
    contract_name: str
    missing: int
    unit: str
    reason: str
    detail: str


class ReleaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    node_id: int
    contract_id: int
    start_at: datetime
    end_at: datetime
    new_end_at: datetime


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    as_of: datetime
    dry_run: bool
    assignments: list[AssignmentOut]
    shortfalls: list[ShortfallOut]
    released: list[ReleaseOut]


class OccupancyRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str | None
    label: str
    in_service_gpu_hours: float
    allocated_gpu_hours: float
    down_gpu_hours: float
    occupancy_pct: float | None
    idle_nodes: list[str]


class OccupancyOut(BaseModel):
    start: datetime
    end: datetime
    group_by: str
    rows: list[OccupancyRowOut]
