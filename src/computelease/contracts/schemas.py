from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from computelease.contracts.core import CapacityUnit, ContractStatus, Placement, Pricing, validate_tax_id
from computelease.contracts.models import Segment

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
UnitPrice = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4, description="4 decimals")]
Currency = Annotated[str, Field(pattern="^(CNY|USD|EUR|HKD)$", description="ISO 4217 code")]
Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
Pct = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]
Hours = Annotated[Decimal, Field(ge=0, max_digits=8, decimal_places=2)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
ModelId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _iana(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{value!r} is not an IANA time zone; use one such as Asia/Shanghai") from None
    return value


TimeZone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_iana)]
TaxId = Annotated[
    str,
    StringConstraints(max_length=40),
    AfterValidator(validate_tax_id),
    Field(description="统一社会信用代码 (18 characters, check character verified), or 15/20 for older ids"),
]


# -------------------------------------------------------------------------------------- customers


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    segment: Segment
    credit_limit: Amount = Decimal("0.00")
    currency: Currency = "CNY"
    tax_id: TaxId | None = None


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    segment: Segment | None = None
    credit_limit: Amount | None = None
    currency: Currency | None = None
    tax_id: TaxId | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    segment: Segment
    credit_limit: Decimal
    currency: str
    tax_id: str | None
    created_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------------------------ SLA policies


class CreditTierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    below: Pct = Field(description="credit applies when monthly availability % is below this")
    credit_pct: Pct = Field(description="credit as % of the month's fee")


class SlaPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    target_pct: Pct = Field(description="availability target, e.g. 99.9")
    credit_tiers: list[CreditTierIn] = Field(
        default_factory=list, description="highest threshold first; credits rise as thresholds fall"
    )
    cap_pct: Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)] = Field(
        Decimal("100"), description="credits in a month never exceed this % of its fee"
    )
    maintenance_allowance_hours: Hours = Decimal("0")
    notice_hours: Hours = Decimal("72")
    description: Notes = ""


class CreditTierOut(BaseModel):
    below: Decimal
    credit_pct: Decimal


class SlaPolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    target_pct: Decimal
    credit_tiers: list[CreditTierOut]
    cap_pct: Decimal
    maintenance_allowance_hours: Decimal
    notice_hours: Decimal
    description: str
    created_at: datetime


# -------------------------------------------------------------------------------------- contracts


class ContractIn(BaseModel):
    """A new contract, created in draft. Capacity is ``capacity`` in ``capacity_unit`` (PFLOPS at
    ``precision``, default bf16 dense; GPUs; or nodes). Accelerators: ``accelerator_model`` or a minimum
    spec. ``start_date``/``end_date`` are inclusive dates in ``timezone``."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int
    name: Name
    capacity_unit: CapacityUnit
    capacity: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=4)]
    precision: Precision | None = Field(None, description="for pflops (default bf16)")
    accelerator_model: ModelId | None = Field(None, description="a catalog accelerator id")
    min_memory_gb: Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)] | None = None
    min_tflops: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)] | None = None
    min_tflops_precision: Precision | None = Field(None, description="for min_tflops (default bf16)")
    placement: Placement = Placement.any
    start_date: date
    end_date: date = Field(description="last day of service, inclusive")
    pricing: Pricing
    price: UnitPrice = Field(description="the fee per month, per PFLOPS-month or per GPU-hour")
    om_monthly_fee: Amount = Decimal("0.00")
    deposit: Amount = Decimal("0.00")
    prepayment: Amount = Decimal("0.00")
    payment_terms_days: Annotated[int, Field(ge=0, le=365)] = 30
    on_demand_rate: UnitPrice | None = Field(None, description="per GPU-hour beyond the contract")
    prices_include_vat: bool = Field(True, description="prices quoted with VAT included (含税价)")
    currency: Currency = "CNY"
    timezone: TimeZone = "Asia/Shanghai"
    sla_policy_id: int | None = None
    notes: Notes = ""


class ContractPatch(BaseModel):
    """Changes to a contract. Only ``name`` and ``notes`` may change after draft."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = None
    name: Name | None = None
    capacity_unit: CapacityUnit | None = None
    capacity: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=4)] | None = None
    precision: Precision | None = None
    accelerator_model: ModelId | None = None
    min_memory_gb: Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)] | None = None
    min_tflops: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)] | None = None
    min_tflops_precision: Precision | None = None
    placement: Placement | None = None
    start_date: date | None = None
    end_date: date | None = None
    pricing: Pricing | None = None
    price: UnitPrice | None = None
    om_monthly_fee: Amount | None = None
    deposit: Amount | None = None
    prepayment: Amount | None = None
    payment_terms_days: Annotated[int, Field(ge=0, le=365)] | None = None
    on_demand_rate: UnitPrice | None = None
    prices_include_vat: bool | None = None
    currency: Currency | None = None
    timezone: TimeZone | None = None
    sla_policy_id: int | None = None
    notes: Notes | None = None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: ContractStatus
    at: AwareDatetime | None = Field(None, description="when it happened (default: now); with a time zone")
    reason: Notes = ""


class ContractEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    from_status: ContractStatus | None
    to_status: ContractStatus
    at: datetime
    reason: str
    actor: str


class CapacityEquivalent(BaseModel):
    """The contract's capacity on one compatible accelerator model."""

    model: str
    gpus: int
    nodes: int | None
    pflops: Decimal | None
    precision: str
    sku: str | None


class ContractOut(BaseModel):
    id: int
    customer_id: int
    customer_name: str
    name: str
    status: ContractStatus
    allowed_transitions: list[ContractStatus]
    capacity_unit: CapacityUnit
    capacity: Decimal
    precision: str | None
    capacity_label: str
    accelerator_model: str | None
    min_memory_gb: Decimal | None
    min_tflops: Decimal | None
    min_tflops_precision: str | None
    compatible_models: list[str]
    capacity_by_model: list[CapacityEquivalent]
    placement: Placement
    start_date: date
    end_date: date
    timezone: str
    starts_at: datetime
    ends_at: datetime
    term_months: Decimal
    pricing: Pricing
    price: Decimal
    om_monthly_fee: Decimal
    deposit: Decimal
    prepayment: Decimal
    payment_terms_days: int
    on_demand_rate: Decimal | None
    prices_include_vat: bool
    currency: str
    sla_policy_id: int | None
    notes: str
    billable_gpus: int | None
    billable_pflops: Decimal | None
    total_value: Decimal
    catalog_problem: str | None = Field(
        None, description="why capacity_by_model is empty: the catalog cannot size the terms any more"
    )
    created_at: datetime
    updated_at: datetime


class ContractDetail(ContractOut):
    sla_policy: SlaPolicyOut | None
    events: list[ContractEventOut]
