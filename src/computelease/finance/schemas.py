from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from computelease.contracts.schemas import Name
from computelease.finance.ledger import InstalmentStatus
from computelease.finance.models import LeaseStatus, LessorKind
from computelease.finance.schedule import LeaseKind
from computelease.fleet.core import NodeState


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


# ------------------------------------------------------------------------------------------ terms


def _as_text(value: object) -> object:
    # Terms travel as text so that no amount passes through a float; a JSON number is taken as written
    # (repr is the shortest text that reads back as the same float: 0.06 -> "0.06").
    if isinstance(value, bool):
        return value  # refused by the str type below, rather than read as 1 or 0
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return value


Term = Annotated[str, BeforeValidator(_as_text), StringConstraints(strip_whitespace=True, max_length=40)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=2)]
Currency = Annotated[str, Field(pattern="^(CNY|USD|EUR|HKD)$", description="ISO 4217 code")]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$"
    ),
]
Rate = Annotated[Decimal, Field(ge=0, lt=1, max_digits=8, decimal_places=6)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class TermsIn(BaseModel):
    """Lease terms, as ``core.LeaseTerms`` takes them. Numbers may be JSON numbers or strings (strings
    keep every digit); rates are fractions (0.06 = 6%). The core checks them and names a bad one."""

    model_config = ConfigDict(extra="forbid")

    principal: Term = Field(description="amount financed, e.g. 300000000")
    annual_rate: Term = Field(description="nominal annual rate as a fraction, e.g. 0.0575")
    months: Term = Field(description="whole term in months, grace included")
    start: Term | None = Field(None, description="commencement date, YYYY-MM-DD (default today)")
    method: Term = "annuity"
    timing: Term = "arrears"
    frequency: Term = "monthly"
    grace_months: Term = "0"
    grace: Term = "interest_only"
    balloon: Term = "0"
    purchase_option: Term = "0"
    first_period_end: Term | None = None
    day_count: Term = "act_365"
    month_end: bool = True
    principal_plan: list[Term] | None = Field(None, description="method custom: principal per period")
    fee_rate: Term = "0"
    deposit_rate: Term = "0"
    deposit_use: Term = "refund"
    kind: Term | None = Field(None, description="direct or sale_leaseback (VAT differs); default direct")


# ----------------------------------------------------------------------------------------- leases


class LeaseIn(BaseModel):
    """A signed lease. Its schedule is built from ``terms`` and stored as the record of what was signed."""

    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="the contract number, unique")
    kind: LeaseKind
    lessor_id: int
    lessee: Name = Field(description="the operator company that leases the servers")
    currency: Currency = "CNY"
    penalty_daily_rate: Rate = Field(Decimal("0.0005"), description="daily penalty rate; 0.0005 = 万分之五")
    note: Notes = ""
    terms: TermsIn
    node_ids: list[int] = Field(default_factory=list, max_length=10000, description="the leased nodes")


class LeasePatch(BaseModel):
    """What may change on a signed lease: the terms and schedule never do."""

    model_config = ConfigDict(extra="forbid")

    lessee: Name | None = None
    note: Notes | None = None
    status: LeaseStatus | None = None


class AssetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: int


class AssetOut(BaseModel):
    node_id: int
    serial: str
    model: str
    state: NodeState
    state_since: datetime
    purchase_cost: Decimal
    currency: str
    added_at: datetime


class NextDue(BaseModel):
    period: int
    due_date: date
    owed: Decimal


class LeaseOut(BaseModel):
    id: int
    code: str
    kind: LeaseKind
    lessor_id: int
    lessor_name: str
    lessee: str
    currency: str
    status: LeaseStatus
    principal: Decimal
    start_date: date
    end_date: date
    penalty_daily_rate: Decimal
    note: str
    terms: dict[str, Any]
    as_of: date
    outstanding_principal: Decimal
    overdue_total: Decimal = Field(description="overdue rent and penalty owed")
    overdue_count: int
    penalty_owed: Decimal
    paid_total: Decimal
    next_due: NextDue | None
    created_at: datetime
    updated_at: datetime


class InstalmentOut(BaseModel):
    period: int
    due_date: date
    opening: Decimal
    payment: Decimal
    interest: Decimal
    principal: Decimal
    closing: Decimal
    balloon: Decimal
    status: InstalmentStatus
    paid_interest: Decimal
    paid_principal: Decimal
    paid_penalty: Decimal
    outstanding: Decimal = Field(description="rent still unpaid, penalty apart")
    penalty_owed: Decimal
    days_overdue: int
    last_paid_on: date | None


class AllocationOut(BaseModel):
    period: int
    penalty: Decimal
    interest: Decimal
    principal: Decimal
    days_late: int


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paid_on: date
    amount: Positive
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


class PaymentOut(BaseModel):
    id: int
    lease_id: int
    paid_on: date
    amount: Decimal
    reference: str
    unapplied: Decimal = Field(description="left over after every instalment was settled")
    allocations: list[AllocationOut]
    created_at: datetime


class LeaseDetail(LeaseOut):
    instalments: list[InstalmentOut]
    assets: list[AssetOut]
    payments: list[PaymentOut]


class TerminationOut(BaseModel):
    """Buyout on ``on``: the core's quote (rents dated on or before ``on`` taken as paid), plus the rent
    actually still unpaid by then and its penalty, which the lessee owes as well."""

    on: date
    paid_through: int
    outstanding_principal: Decimal
    accrued_interest: Decimal
    days: int
    fee: Decimal
    purchase_option: Decimal
    total: Decimal
    arrears: Decimal
    penalty_owed: Decimal
    total_with_arrears: Decimal
    currency: str


# ------------------------------------------------------------------------------------ credit lines


class CreditLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lessor_id: int = Field(description="the lender")
    name: Name
    borrower: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    limit: Positive
    drawn: Amount = Decimal("0.00")
    rate: Rate = Field(description="annual rate as a fraction, e.g. 0.035")
    expires_on: date
    currency: Currency = "CNY"
    note: Notes = ""


class CreditLinePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    borrower: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    limit: Positive | None = None
    drawn: Amount | None = None
    rate: Rate | None = None
    expires_on: date | None = None
    note: Notes | None = None


class CreditLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lessor_id: int
    lessor_name: str
    name: str
    borrower: str
    limit: Decimal
    drawn: Decimal
    available: Decimal
    rate: Decimal
    expires_on: date
    currency: str
    note: str
    created_at: datetime
    updated_at: datetime
