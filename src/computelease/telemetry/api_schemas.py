"""API shapes for incidents and maintenance windows (the heartbeat wire format is in schemas.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from computelease.telemetry.models import IncidentSource, IncidentStatus

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    detail: Annotated[str, StringConstraints(max_length=1000)] = ""
    node_id: int | None = None
    gpu_indexes: Annotated[list[Annotated[int, Field(ge=0, lt=64)]], Field(max_length=64)] = []
    opened_at: AwareDatetime | None = Field(default=None, description="default: now")


class IncidentClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime | None = Field(default=None, description="default: now")


class IncidentGpuOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    gpu_index: int
    gpu_uuid: str | None
    reasons: str


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int | None
    node_serial: str | None
    source: IncidentSource
    status: IncidentStatus
    title: str
    detail: str
    opened_at: datetime
    closed_at: datetime | None
    opened_by: str
    gpus: list[IncidentGpuOut]


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    node_id: int | None = Field(default=None, description="None: every node")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    notice_given_at: AwareDatetime | None = Field(default=None, description="default: now")


class MaintenanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int | None
    node_serial: str | None
    title: str
    starts_at: datetime
    ends_at: datetime
    notice_given_at: datetime


class GpuNowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    uuid: str | None
    health: str = Field(description="healthy, degraded, unhealthy or down")
    since: datetime | None = Field(description="when the current state began; null while healthy")
    reasons: str
    incident_id: int | None
    utilization_pct: float | None
    power_w: float | None
    temperature_c: float | None
    ecc_dbe_volatile: int | None
    ecc_dbe_aggregate: int | None
    remap_pending: bool | None
    remap_failed: bool | None
    xids: list[int] | None


class NodeHealthOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    node_id: int
    serial: str
    last_heartbeat_at: datetime | None = Field(description="null: the agent has never reported")
    interval_s: int | None
    down: bool = Field(description="heartbeats stopped (marked by the sweep)")
    gpus: list[GpuNowOut] = Field(description="each GPU's health and its reading in the last heartbeat")
    incidents: list[IncidentOut] = Field(description="open incidents on the node")
