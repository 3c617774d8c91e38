"""The dashboard's judgements, pure: where a contract's SLA stands in a month still running, revenue
per month and currency, and which lease instalments fall due soon.

**SLA standing.** A month's *downtime budget* is what the target lets a contract lose over the whole
month: ``(100 − target) % × (contracted GPUs × the month's service hours − excluded GPU-hours)``.
The month so far has spent ``counted`` GPU-hours of it:

- ``breached``: more than the budget is spent; the month misses its target whatever happens next (a credit is
  certain);
- ``below_target``: availability so far is under the target (the month would earn a credit if it ended
  now) but the rest of the month could still bring it back;
- ``at_risk``: at least ``RISK_BUDGET_USED`` of the budget is spent (the SRE's error-budget alarm);
- ``ok``: otherwise.

Half the budget spent is the default alarm: by then one more failure of the same size misses the
month, and the operator still has the rest of the month to swap nodes in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from computelease.contracts.core import add_months

RISK_BUDGET_USED = Decimal("0.5")
DUE_WITHIN_DAYS = 30
_HOUR = timedelta(hours=1)
ZERO = Decimal(0)
_RATIO = Decimal("0.0001")


class Standing(StrEnum):
    ok = "ok"
    at_risk = "at_risk"
    below_target = "below_target"
    breached = "breached"


# Worst first, for sorting the watch list.
SEVERITY = {Standing.breached: 0, Standing.below_target: 1, Standing.at_risk: 2, Standing.ok: 3}


def service_hours(
    period_start: datetime, period_end: datetime, contract_start: datetime, contract_end: datetime | None
) -> Decimal:
    """Hours of the month the contract is in service (its whole month, not only the part gone by)."""
    lo = max(period_start, contract_start)
    hi = period_end if contract_end is None else min(period_end, contract_end)
    if hi <= lo:
        return ZERO
    return Decimal((hi - lo) // timedelta(microseconds=1)) / Decimal(3_600_000_000)


def downtime_budget(
    target_pct: Decimal, contracted_gpus: int, month_hours: Decimal, excluded_gpu_hours: Decimal
) -> Decimal:
    """GPU-hours the month may lose and still meet ``target_pct`` (excluded time is out of the count)."""
    countable = max(ZERO, contracted_gpus * month_hours - excluded_gpu_hours)
    return (Decimal(100) - target_pct) / Decimal(100) * countable


def standing(
    *,
    availability_pct: Decimal,
    target_pct: Decimal,
    counted_gpu_hours: Decimal,
    budget_gpu_hours: Decimal,
    alarm: Decimal = RISK_BUDGET_USED,
) -> tuple[Standing, Decimal | None]:
    """The standing and the share of the budget spent (None where the target allows no loss at all)."""
    if budget_gpu_hours <= 0:
        used = None
        spent = counted_gpu_hours > 0
    else:
        used = (counted_gpu_hours / budget_gpu_hours).quantize(_RATIO)
        spent = counted_gpu_hours > budget_gpu_hours  # at exactly the budget the month still meets it
    if spent:
        return Standing.breached, used
    if availability_pct < target_pct:
        return Standing.below_target, used
    if used is not None and used >= alarm:
        return Standing.at_risk, used
    return Standing.ok, used


def months_back(period: str, n: int) -> list[str]:
    """``period`` and the ``n − 1`` months before it, newest first (``YYYY-MM``)."""
    first = date(int(period[:4]), int(period[5:7]), 1)
    return [f"{add_months(first, -i):%Y-%m}" for i in range(n)]


@dataclass(frozen=True, slots=True)
class Document:
    """A finalized invoice or credit note: its month, currency and net amount (negative for a credit)."""

    period: str
    currency: str
    net: Decimal


def revenue_by_period(documents: Iterable[Document]) -> dict[tuple[str, str], Decimal]:
    """Net revenue per (month, currency): invoices less credit notes, VAT apart, SLA credits netted."""
    out: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for d in documents:
        out[(d.period, d.currency)] += d.net
    return dict(out)


def change(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    """Relative change from ``before`` to ``now`` (0.125 for +12.5%); None where it means nothing."""
    if now is None or before is None or before == 0:
        return None
    return ((now - before) / abs(before)).quantize(_RATIO)


@dataclass(frozen=True, slots=True)
class Due:
    due: date
    outstanding: Decimal  # rent unpaid, penalty apart
    penalty: Decimal  # penalty accrued and unpaid

    def overdue(self, today: date) -> bool:
        return self.due < today and self.outstanding + self.penalty > 0


def dues_within(dues: Iterable[Due], today: date, days: int = DUE_WITHIN_DAYS) -> list[Due]:
    """Instalments with something left to pay (rent or penalty) that are overdue or fall due in the
    next ``days`` days, oldest first."""
    until = today + timedelta(days=days)
    return sorted((d for d in dues if d.outstanding + d.penalty > 0 and d.due <= until), key=lambda d: d.due)
