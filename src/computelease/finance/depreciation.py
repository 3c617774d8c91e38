"""Monthly depreciation (折旧) of leased or owned assets, exact to the fen.

Under Chinese practice an asset put in service in a month is depreciated from the following month
(当月增加的固定资产当月不计提折旧，从下月起计提), so with ``in_service`` the first charge falls in the
month after it; each row is dated at the month's last day.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import NamedTuple

from computelease.finance.schedule import ZERO, FinanceTermError, _date, _decimal, _int, _money, add_months
from computelease.money import CONTEXT, FEN


class DepreciationRow(NamedTuple):
    month: int
    period_end: date | None
    opening: Decimal  # net book value before the charge
    charge: Decimal
    accumulated: Decimal
    closing: Decimal  # net book value after the charge


def _check(cost: object, salvage: object, life_months: object) -> tuple[Decimal, Decimal, int]:
    cost = _money("cost", cost)
    if cost <= 0:
        raise FinanceTermError("cost", "must be more than 0")
    salvage = _money("salvage", salvage)
    if salvage > cost:
        raise FinanceTermError("salvage", f"{salvage} is above the cost {cost}; it must not exceed it")
    life = _int("life_months", life_months)
    if life <= 0:
        raise FinanceTermError("life_months", f"must be at least 1, got {life}")
    return cost, salvage, life


def _month_ends(in_service: date | str | None, life: int) -> list[date | None]:
    if in_service is None:
        return [None] * life
    first = _date("in_service", in_service)
    ends = []
    for k in range(1, life + 1):
        month = add_months(first.replace(day=1), k)
        ends.append(month.replace(day=calendar.monthrange(month.year, month.month)[1]))
    return ends


def _rows(cost: Decimal, charges: list[Decimal], ends: list[date | None]) -> tuple[DepreciationRow, ...]:
    rows = []
    book = cost
    accumulated = ZERO
    for month, (charge, end) in enumerate(zip(charges, ends, strict=True), start=1):
        accumulated += charge
        rows.append(DepreciationRow(month, end, book, charge, accumulated, book - charge))
        book -= charge
    return tuple(rows)


def straight_line(
    cost: Decimal | str, salvage: Decimal | str, life_months: int, *, in_service: date | str | None = None
) -> tuple[DepreciationRow, ...]:
    """Straight line: ``(cost − salvage) / life_months`` a month, rounded half-up to the fen; the last
    month takes the rounding so the book value ends exactly at salvage."""
    cost, salvage, life = _check(cost, salvage, life_months)
    with localcontext(CONTEXT):
        monthly = ((cost - salvage) / life).quantize(FEN, ROUND_HALF_UP)
    charges = [monthly] * (life - 1)
    charges.append(cost - salvage - monthly * (life - 1))
    return _rows(cost, charges, _month_ends(in_service, life))


def declining_balance(
    cost: Decimal | str,
    salvage: Decimal | str,
    life_months: int,
    *,
    factor: Decimal | str = "2",
    in_service: date | str | None = None,
) -> tuple[DepreciationRow, ...]:
    """Declining balance with a switch to straight line, monthly.

    Each month charges ``max(book × factor / life_months, (book − salvage) / months_left)``, never taking
    the book value below salvage; ``factor`` 2 is double-declining (双倍余额递减). The switch to straight
    line when it charges more is what lets the book value reach salvage exactly in the last month.
    """
    cost, salvage, life = _check(cost, salvage, life_months)
    ratio = _decimal("factor", factor)
    if ratio <= 0:
        raise FinanceTermError("factor", f"must be more than 0, got {ratio}; 2 is double-declining")
    charges = []
    book = cost
    with localcontext(CONTEXT):
        rate = ratio / life
        for month in range(1, life + 1):
            left = book - salvage
            if month == life:
                charge = left
            else:
                declining = (book * rate).quantize(FEN, ROUND_HALF_UP)
                straight = (left / (life - month + 1)).quantize(FEN, ROUND_HALF_UP)
                charge = min(max(declining, straight), left)
            charges.append(charge)
            book -= charge
    return _rows(cost, charges, _month_ends(in_service, life))
