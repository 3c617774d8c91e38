from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from computelease.fleet.core import NodeState
from computelease.fleet.models import SiteKind

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    ),
]
Serial = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Currency = Annotated[str, Field(pattern="^(CNY|USD|EUR|HKD)$", description="ISO 4217 code")]
Pue = Annotated[Decimal, Field(ge=1, le=3, decimal_places=3, description="power usage effectiveness, ≥ 1")]
Tariff = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=4, description="per kWh")]
Kw = Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2, description="kW")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
    return value


TimeZone = Annotated[str, AfterValidator(_zone)]


class RackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    power_kw: Kw | None = Field(None, description="power budget of the rack, kW; unknown when left out")


class RackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    name: str
    power_kw: Decimal | None


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="short unique code, used in CSV files (e.g. qy-1)")
    name: Name
    kind: SiteKind
    city: Name
    pue: Pue
    power_price_per_kwh: Tariff
    rack_price_per_month: Amount = Decimal("0.00")
    currency: Currency = "CNY"
    time_zone: TimeZone = "Asia/Shanghai"
    note: Text = ""
    racks: list[RackIn] = Field(default_factory=list, max_length=2000)


class SitePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    name: Name | None = None
    kind: SiteKind | None = None
    city: Name | None = None
    pue: Pue | None = None
    power_price_per_kwh: Tariff | None = None
    rack_price_per_month: Amount | None = None
    currency: Currency | None = None
    time_zone: TimeZone | None = None
    note: Text | None = None


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    kind: SiteKind
    city: str
    pue: Decimal
    power_price_per_kwh: Decimal
    rack_price_per_month: Decimal
    currency: str
    time_zone: str
    note: str
    racks: list[RackOut]
    created_at: datetime
    updated_at: datetime


class GpuIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="position in the node, 0-based")
    uuid: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    serial: Serial | None = None


class GpuOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    uuid: str | None
    serial: str | None


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    serial: Serial
    sku_id: str = Field(description="server SKU id from the catalog (shipped or custom)")
    site_id: int
    rack_id: int | None = None
    fabric: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = Field(
        None, description="the NVLink/InfiniBand domain a job can span"
    )
    purchase_cost: Amount
    currency: Currency = "CNY"
    purchase_date: date
    supplier: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    note: Text = ""
    state: NodeState = Field(NodeState.ordered, description="the state the node enters the fleet in")
    state_since: AwareDatetime | None = Field(
        None, description="when it entered that state; now when left out"
    )
    gpus: list[GpuIn] = Field(default_factory=list, description="UUIDs/serials where known")


class NodePatch(BaseModel):
    """Edits a node's record. Its state changes only through transitions, its SKU never."""

    model_config = ConfigDict(extra="forbid")

    serial: Serial | None = None
    site_id: int | None = None
    rack_id: int | None = None
    fabric: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    purchase_cost: Amount | None = None
    currency: Currency | None = None
    purchase_date: date | None = None
    supplier: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    note: Text | None = None
    gpus: list[GpuIn] | None = None


class NodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    serial: str
    sku_id: str
    model: str
    site_id: int
    site_code: str
    rack_id: int | None
    rack_name: str | None
    fabric: str | None
    state: NodeState
    state_since: datetime
    purchase_cost: Decimal
    currency: str
    purchase_date: date
    supplier: str
    note: str
    gpus: list[GpuOut]
    created_at: datetime
    updated_at: datetime


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: NodeState
    at: AwareDatetime | None = Field(
        None, description="when it happened (UTC or with an offset); now when left out"
    )
    reason: Text = ""


class NodeEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    from_state: NodeState | None
    to_state: NodeState
    at: datetime
    reason: str
    actor: str


class StateIntervalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    node_id: int
    state: NodeState
    start: datetime
    end: datetime | None = Field(description="null while the node is still in this state")


class ImportOut(BaseModel):
    created: int
    dry_run: bool
    racks_created: list[str] = Field(description="site/rack names the file named and the fleet lacked")
    nodes: list[int] = Field(description="ids of the nodes created (empty on a dry run)")
