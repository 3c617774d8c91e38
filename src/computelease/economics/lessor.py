"""The lessor's view of one finance lease, pure: coverage and loan-to-value, exact to the fen.

For a lease with outstanding principal ``P`` on ``as_of`` secured by nodes of cost ``C_n`` bought on
``d_n``::

    book value       B(t) = Σ_n NBV_n(t)            straight line from finance.depreciation (the
                                                   lessee's books: life ``life_months``, salvage share s)
    market value     M(t) = Σ_n C_n × r(age_n(t))   the residual curve r (a share of cost by age in
                                                   months, linear between points, flat after the last)
    LTV              P / M(t)  (and P / B(t))       above 1: the collateral no longer covers the debt
    coverage         earned revenue of the nodes / lease payments due, over the same window

Projected LTV: at each remaining due date ``t_k`` the principal still owed after that instalment,
``P_k = P + Σ_{j≤k} (capitalised_j − unpaid principal_j)``, against ``M(t_k)`` and ``B(t_k)``. This
assumes every future rent is paid on time; arrears already overdue stay owed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from computelease.finance import depreciation
from computelease.finance.schedule import add_months
from computelease.money import to_fen

RATIO = Decimal("0.0001")
ZERO = Decimal("0.00")

# DOMAIN.md "Market and finance facts" (weak source): residual value 60–65% after 12 months, 40–45% after
# 24, 25–35% after 36 — the middle of each range. The points at 48 and 60 months are an ASSUMPTION
# (the same decline continued), stated as such wherever the curve is shown.
DEFAULT_RESIDUAL: tuple[tuple[int, Decimal], ...] = (
    (0, Decimal("1.00")),
    (12, Decimal("0.625")),
    (24, Decimal("0.425")),
    (36, Decimal("0.30")),
    (48, Decimal("0.20")),
    (60, Decimal("0.12")),
)
RESIDUAL_SOURCE = (
    "residual value by age: DOMAIN.md 'Market and finance facts' (weak source) for 12/24/36 months "
    "(62.5%, 42.5%, 30%); 48 and 60 months (20%, 12%) are an assumption continuing the decline"
)
# DOMAIN.md: depreciation lives of 5–6 years (Meta 5.5, Amazon 5, CoreWeave 6); 5 years, no salvage.
DEFAULT_LIFE_MONTHS = 60
DEFAULT_SALVAGE_RATE = Decimal("0")
BOOK_SOURCE = "book value: straight line over 60 months to nil (DOMAIN.md: GPU server lives of 5–6 years)"


@dataclass(frozen=True, slots=True)
class Collateral:
    node_id: int
    cost: Decimal
    bought: date


@dataclass(frozen=True, slots=True)
class FutureRent:
    """An instalment due after ``as_of``: what of its principal is still unpaid, and interest it adds
    to the balance (a capitalised grace row)."""

    due: date
    unpaid_principal: Decimal
    capitalised: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class LtvPoint:
    on: date
    outstanding: Decimal
    book_value: Decimal
    market_value: Decimal
    ltv_book: Decimal | None
    ltv_market: Decimal | None


@dataclass(frozen=True, slots=True)
class Valuation:
    residual: tuple[tuple[int, Decimal], ...] = DEFAULT_RESIDUAL
    life_months: int = DEFAULT_LIFE_MONTHS
    salvage_rate: Decimal = DEFAULT_SALVAGE_RATE
    sources: tuple[str, ...] = field(default=(RESIDUAL_SOURCE, BOOK_SOURCE))


def age_months(bought: date, on: date) -> int:
    """Whole months from ``bought`` to ``on`` (a month counts once its anniversary day is reached)."""
    months = (on.year - bought.year) * 12 + on.month - bought.month
    while months > 0 and add_months(bought, months) > on:
        months -= 1
    return max(months, 0)


def residual_share(age: int, curve: Sequence[tuple[int, Decimal]] = DEFAULT_RESIDUAL) -> Decimal:
    """The curve's share of cost at ``age`` months: linear between points, flat beyond the ends."""
    points = sorted(curve)
    if age <= points[0][0]:
        return points[0][1]
    for (a0, v0), (a1, v1) in itertools.pairwise(points):
        if age <= a1:
            return v0 + (v1 - v0) * Decimal(age - a0) / Decimal(a1 - a0)
    return points[-1][1]


def market_value(item: Collateral, on: date, valuation: Valuation = Valuation()) -> Decimal:
    if on < item.bought:
        return to_fen(item.cost)
    return to_fen(item.cost * residual_share(age_months(item.bought, on), valuation.residual))


def book_value(item: Collateral, on: date, valuation: Valuation = Valuation()) -> Decimal:
    """Net book value after the last monthly charge dated on or before ``on`` (the first charge falls
    in the month after purchase, as finance.depreciation does)."""
    if item.cost <= 0:
        return ZERO
    rows = depreciation.straight_line(
        item.cost, to_fen(item.cost * valuation.salvage_rate), valuation.life_months, in_service=item.bought
    )
    value = to_fen(item.cost)
    for row in rows:
        if row.period_end is not None and row.period_end <= on:
            value = row.closing
        else:
            break
    return value


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """``numerator / denominator`` to four places, half-up; ``None`` when the denominator is nil."""
    if denominator <= 0:
        return None
    return (numerator / denominator).quantize(RATIO, ROUND_HALF_UP)


def point(
    on: date, outstanding: Decimal, collateral: Sequence[Collateral], valuation: Valuation = Valuation()
) -> LtvPoint:
    book = sum((book_value(c, on, valuation) for c in collateral), ZERO)
    market = sum((market_value(c, on, valuation) for c in collateral), ZERO)
    return LtvPoint(on, outstanding, book, market, ratio(outstanding, book), ratio(outstanding, market))


def ltv_curve(
    as_of: date,
    outstanding: Decimal,
    future: Sequence[FutureRent],
    collateral: Sequence[Collateral],
    valuation: Valuation = Valuation(),
) -> tuple[LtvPoint, ...]:
    """LTV now and after each remaining instalment, assuming every future rent is paid when due."""
    points = [point(as_of, outstanding, collateral, valuation)]
    owed = outstanding
    for rent in sorted(future, key=lambda r: r.due):
        if rent.due <= as_of:
            continue
        owed = max(owed + rent.capitalised - rent.unpaid_principal, ZERO)
        points.append(point(rent.due, owed, collateral, valuation))
    return tuple(points)


def coverage(earned: Decimal, due: Decimal) -> Decimal | None:
    """Earned revenue over lease payments due in the same window (a DSCR-like test); ``None`` when no
    rent fell due."""
    return ratio(earned, due)
