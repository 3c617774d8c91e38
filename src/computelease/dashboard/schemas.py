"""The dashboard as the API shows it: the same figures as the page, sections the caller may not see
are null."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from computelease.dashboard.service import (
    ContractWatch,
    FleetState,
    Idle,
    LeaseDue,
    LeaseLine,
    OpenIncident,
    Overdue,
    Revenue,
)


class DashboardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    as_of: datetime
    role: str
    organisation: str | None = Field(description="a customer's or lessor's own name")
    fleet: list[FleetState] | None = Field(description="nodes and GPUs per lifecycle state (staff)")
    occupancy_today: float | None = Field(description="allocated / in-service GPU-hours today so far, UTC")
    idle_by_model: list[Idle] | None
    idle_by_site: list[Idle] | None
    open_incidents: int | None
    incidents: list[OpenIncident] = Field(description="the latest open incidents")
    contracts: list[ContractWatch] | None = Field(
        description="contracts in service, this month so far, the ones in danger first (provisional)"
    )
    revenue: list[Revenue] | None = Field(description="net revenue: this month accrued, two months before")
    overdue: list[Overdue] | None
    overdue_total: dict[str, Decimal] | None = Field(description="overdue receivables by currency")
    open_receivables: dict[str, Decimal] | None
    lease_dues: list[LeaseDue] | None = Field(description="instalments overdue or due within 30 days")
    leases: list[LeaseLine] | None
