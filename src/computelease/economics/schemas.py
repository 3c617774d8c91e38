"""API shapes of stored scenarios, runs and the lessor's exposure."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from computelease.economics.models import RunStatus, ScenarioSource
from computelease.economics.runs import API_MAX_PATHS, DEFAULT_PATHS


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ScenarioOut(_Out):
    id: int
    name: str
    source: ScenarioSource
    created_by: str
    created_at: datetime


class RunBrief(_Out):
    id: int
    scenario_id: int
    paths: int
    seed: int
    routes: list[str]
    status: RunStatus
    error: str
    created_by: str
    created_at: datetime


class ScenarioDetail(ScenarioOut):
    yaml: str
    runs: list[RunBrief]


class RunOut(RunBrief):
    summary: dict[str, Any] = Field(
        description="scenario, summary figures, monthly lines, financing, funding routes, Monte Carlo "
        "percentiles and histograms"
    )


class ExampleOut(BaseModel):
    key: str
    name: str
    description: str


class ScenarioIn(BaseModel):
    """Give exactly one of ``yaml`` (the file's text) and ``example`` (a shipped example's key)."""

    model_config = ConfigDict(extra="forbid")

    yaml: str | None = None
    example: str | None = None
    name: str | None = Field(default=None, max_length=200, description="default: the file's name field")


class LiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(default=None, description="default: today (Asia/Shanghai)")
    horizon_months: int | None = Field(default=None, ge=1, le=600)
    name: str | None = Field(default=None, max_length=200)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: int = Field(
        default=DEFAULT_PATHS, ge=0, le=API_MAX_PATHS, description="Monte Carlo paths; 0: projection only"
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    routes: list[str] | None = Field(
        default=None, description="funding routes to compare; default: own and every instrument described"
    )
    backend: Literal["numpy", "jax", "torch"] = Field(
        default="numpy", description="Monte Carlo backend; jax and torch where installed (a GPU if visible)"
    )


# ------------------------------------------------------------------------------------ lessor's view


class NodeExposureOut(BaseModel):
    node_id: int
    serial: str
    model: str
    state: str
    gpus: int
    purchase_cost: Decimal
    currency: str
    purchase_date: date
    in_service_gpu_hours: float
    allocated_gpu_hours: float
    down_gpu_hours: float
    occupancy: float | None
    telemetry_down: bool | None
    last_heartbeat_at: datetime | None
    open_incidents: int
    unhealthy_gpus: int
    book_value: Decimal
    market_value: Decimal


class LtvPointOut(BaseModel):
    on: date
    outstanding: Decimal
    book_value: Decimal
    market_value: Decimal
    ltv_book: Decimal | None
    ltv_market: Decimal | None


class ExposureOut(BaseModel):
    lease_id: int
    code: str
    kind: str
    status: str
    lessor_name: str
    lessee: str
    currency: str
    principal: Decimal
    start_date: date
    end_date: date
    as_of: date
    window_start: date
    window_end: date = Field(description="inclusive: the as-of date")
    nodes: list[NodeExposureOut]
    in_service_gpu_hours: float
    allocated_gpu_hours: float
    occupancy: float | None
    earned: dict[str, Decimal] = Field(description="currency → revenue the leased nodes earned in the window")
    earned_basis: str = Field(description="invoiced (from billing) or contracted (allocations × prices)")
    contracted: dict[str, Decimal] = Field(
        description="currency → contracted revenue of the nodes in the window (allocations × contract prices)"
    )
    rent_due: Decimal = Field(description="lease rent that fell due in the window")
    coverage: Decimal | None = Field(
        description="earned (lease currency) / rent due; None when none fell due"
    )
    outstanding_principal: Decimal
    overdue_total: Decimal
    overdue_count: int
    book_value: Decimal
    market_value: Decimal
    ltv_book: Decimal | None
    ltv_market: Decimal | None
    curve: list[LtvPointOut]
    assumptions: list[str]
    warnings: list[str]
