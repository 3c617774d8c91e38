"""The pure core of lease finance: one import for services, the CLI and the API.

Nothing here touches a database, the network or the clock; the same terms give the same schedule.
The maths lives in :mod:`.schedule` (rent schedules), :mod:`.returns` (all-in cost and yield),
:mod:`.tax` (VAT), :mod:`.events` (termination, prepayment, late rents) and :mod:`.depreciation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from computelease.finance.depreciation import DepreciationRow, declining_balance, straight_line
from computelease.finance.events import (
    Allocation,
    LatePayment,
    Recalculation,
    TerminationQuote,
    allocate_payment,
    late_payment,
    penalty_interest,
    prepay,
    termination_quote,
)
from computelease.finance.returns import (
    CashFlow,
    Irr,
    Returns,
    lessee_flows,
    lessor_flows,
    periodic_irr,
    returns_of,
    xirr,
)
from computelease.finance.schedule import (
    DayCount,
    DepositUse,
    FinanceTermError,
    Frequency,
    GraceKind,
    LeaseKind,
    LeaseTerms,
    Method,
    Row,
    Rows,
    Schedule,
    Timing,
    Totals,
    add_months,
    build_schedule,
    level_payment,
)
from computelease.finance.tax import VatLine, VatRate, VatTable, default_vat_table, load_vat_table, vat_lines

__all__ = [
    "Allocation",
    "CashFlow",
    "DayCount",
    "DepositUse",
    "DepreciationRow",
    "FinanceTermError",
    "Frequency",
    "GraceKind",
    "Irr",
    "LatePayment",
    "LeaseKind",
    "LeaseTerms",
    "Method",
    "Quote",
    "Recalculation",
    "Returns",
    "Row",
    "Rows",
    "Schedule",
    "TerminationQuote",
    "Timing",
    "Totals",
    "VatLine",
    "VatRate",
    "VatTable",
    "add_months",
    "allocate_payment",
    "build_schedule",
    "declining_balance",
    "default_vat_table",
    "late_payment",
    "lessee_flows",
    "lessor_flows",
    "level_payment",
    "load_vat_table",
    "penalty_interest",
    "periodic_irr",
    "prepay",
    "quote",
    "returns_of",
    "straight_line",
    "termination_quote",
    "vat_lines",
    "xirr",
]


@dataclass(frozen=True, slots=True)
class Quote:
    """A schedule with its VAT, the lessee's cash flows and the returns: everything a quote screen,
    the CLI's ``--json`` and the workbook show."""

    schedule: Schedule
    vat: tuple[VatLine, ...]
    flows: tuple[CashFlow, ...]
    returns: Returns
    vat_inclusive: bool = True

    @property
    def terms(self) -> LeaseTerms:
        return self.schedule.terms

    @property
    def vat_total(self) -> Decimal:
        return sum((line.vat for line in self.vat), Decimal(0))


def quote(
    lease: LeaseTerms | Schedule, *, vat_table: VatTable | None = None, vat_inclusive: bool = True
) -> Quote:
    """Build (or take) a schedule and price it: VAT lines, the lessee's flows, all-in cost and yield."""
    schedule = lease if isinstance(lease, Schedule) else build_schedule(lease)
    vat = vat_lines(schedule, table=vat_table, inclusive=vat_inclusive)
    flows = lessee_flows(schedule)
    return Quote(
        schedule=schedule,
        vat=vat,
        flows=flows,
        returns=returns_of(schedule, vat, inclusive=vat_inclusive, table=vat_table, flows=flows),
        vat_inclusive=vat_inclusive,
    )
