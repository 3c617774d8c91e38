"""Events on a live lease: early termination and buyout quotes, prepayments, late rents.

Interest between payment dates accrues daily on the schedule's day count:
``accrued = balance × annual_rate × days / 365`` (or ``/ 360``), rounded half-up to the fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from computelease.finance.schedule import (
    NIL,
    ZERO,
    FinanceTermError,
    GraceKind,
    Method,
    Row,
    Schedule,
    _date,
    _decimal,
    _enum,
    _money,
    amortise,
    calendar_of,
    make_schedule,
)
from computelease.money import CONTEXT, FEN


class Recalculation(StrEnum):
    keep_term = "keep_term"  # same number of rents, lower rents
    keep_instalment = "keep_instalment"  # same rent, fewer of them


@dataclass(frozen=True, slots=True)
class TerminationQuote:
    """What the lessee pays to end the lease on ``on`` and take title.

    ``total = outstanding_principal + accrued_interest + fee + purchase_option``. Rents dated on or before
    ``on`` are taken as paid; ``accrued_interest`` runs from the last of them (or commencement)."""

    on: date
    paid_through: int  # the last period taken as paid, 0 if none
    outstanding_principal: Decimal
    accrued_interest: Decimal
    days: int
    fee: Decimal
    purchase_option: Decimal
    total: Decimal


def _fen(value: Decimal) -> Decimal:
    return value.quantize(FEN, ROUND_HALF_UP)


def _rate(term: str, value: object) -> Decimal:
    rate = _decimal(term, value)
    if rate < 0:
        raise FinanceTermError(term, f"must not be negative, got {rate}")
    if rate >= 1:
        raise FinanceTermError(term, f"{rate} is {rate * 100}%; give a fraction, e.g. 0.03 for 3%")
    return rate


def termination_quote(
    schedule: Schedule, on: date | str, *, fee_rate: Decimal | str = ZERO
) -> TerminationQuote:
    """Buyout quote: outstanding principal (balloon included) + daily accrued interest + a termination fee
    of ``fee_rate × outstanding principal`` + the purchase-option price."""
    terms = schedule.terms
    on = _date("on", on)
    fee_rate = _rate("fee_rate", fee_rate)
    if on < terms.start:
        raise FinanceTermError("on", f"{on} is before the lease starts on {terms.start}")
    if on > schedule.end:
        raise FinanceTermError(
            "on", f"{on} is after the lease ended on {schedule.end}; nothing is left to quote"
        )
    paid = [row for row in schedule.rows if row.date <= on]
    if len(paid) == len(schedule.rows):
        # The balloon is settled with the last rent, so only the purchase option is left.
        outstanding, since, through = NIL, on, paid[-1].period
    elif paid:
        outstanding, since, through = paid[-1].closing, paid[-1].date, paid[-1].period
    else:
        outstanding, since, through = terms.principal, terms.start, 0
    days = (on - since).days
    with localcontext(CONTEXT):
        accrued = _fen(outstanding * terms.annual_rate * days / terms.day_count.basis)
        fee = _fen(outstanding * fee_rate)
    total = outstanding + accrued + fee + terms.purchase_option
    return TerminationQuote(on, through, outstanding, accrued, days, fee, terms.purchase_option, total)


def prepay(
    schedule: Schedule,
    on: date | str,
    amount: Decimal | str | int,
    mode: Recalculation | str = Recalculation.keep_term,
) -> Schedule:
    """Pay ``amount`` of extra principal with the rent due ``on`` and recalculate the rest.

    ``keep_term``: the remaining rents are re-planned over the same periods (annuity: a new level rent;
    equal principal: a new step; custom: the plan scaled down). ``keep_instalment``: the rent (annuity)
    or principal step (equal principal) stays and the lease ends sooner; the new last rent absorbs the
    remainder. The prepayment shows in that row's payment and principal.
    """
    terms = schedule.terms
    on = _date("on", on)
    mode = _enum(Recalculation, "mode", mode)
    amount = _money("amount", amount)
    rows = list(schedule.rows)
    index = next((k for k, row in enumerate(rows) if row.date == on), None)
    if index is None:
        dates = ", ".join(str(row.date) for row in rows[:3])
        raise FinanceTermError("on", f"{on} is not a payment date; prepay with a rent (e.g. {dates}, ...)")
    if index == len(rows) - 1:
        raise FinanceTermError(
            "on", f"{on} is the last rent; nothing is left to prepay, quote a buyout instead"
        )
    residual = schedule.totals.residual
    row = rows[index]
    room = row.closing - residual
    if amount <= 0:
        raise FinanceTermError("amount", "must be more than 0")
    if amount > room:
        raise FinanceTermError(
            "amount",
            f"{amount} is more than the {room} of principal left above the balloon after this rent; "
            "prepay at most that, or quote a buyout",
        )
    method = terms.method
    if mode is Recalculation.keep_instalment and method not in (Method.annuity, Method.equal_principal):
        raise FinanceTermError(
            "mode",
            f"keep_instalment needs a level rent or principal step; a {method} lease can only keep_term",
        )
    rows[index] = Row(
        row.period,
        row.date,
        row.opening,
        row.payment + amount,
        row.interest,
        row.principal + amount,
        row.closing - amount,
    )
    slots, bounds = calendar_of(terms)
    remaining = slots[index + 1 : len(rows)]
    plan = None
    if method is Method.custom:
        with localcontext(CONTEXT):
            scale = (room - amount) / room
            later = zip(schedule.rows[index + 1 :], remaining, strict=False)
            plan = [_fen(old.principal * scale) for old, slot in later if not slot.grace]
    keep = mode is Recalculation.keep_instalment
    tail, instalment = amortise(
        row.closing - amount,
        remaining,
        first_period=row.period + 1,
        method=method,
        residual=residual,
        capitalise_grace=terms.grace is GraceKind.capitalised,
        instalment=schedule.instalment if keep else None,
        plan=plan,
        shorten=keep,
    )
    new_rows = (*rows[: index + 1], *tail)
    return make_schedule(terms, new_rows, bounds, instalment)


def penalty_interest(
    overdue: Decimal | str, due: date | str, paid_on: date | str, daily_rate: Decimal | str
) -> Decimal:
    """Late-payment interest (罚息): ``overdue × daily_rate × days late``; daily_rate 0.0005 is 万分之五."""
    overdue = _money("overdue", overdue)
    daily = _rate("daily_rate", daily_rate)
    days = max(0, (_date("paid_on", paid_on) - _date("due", due)).days)
    with localcontext(CONTEXT):
        return _fen(overdue * daily * days)


@dataclass(frozen=True, slots=True)
class Allocation:
    """A payment split penalty → interest → principal; ``unapplied`` is what was left over."""

    penalty: Decimal
    interest: Decimal
    principal: Decimal
    unapplied: Decimal


def allocate_payment(
    amount: Decimal | str, *, penalty: Decimal | str, interest: Decimal | str, principal: Decimal | str
) -> Allocation:
    """Apply ``amount`` to what is owed, penalty first, then interest, then principal."""
    left = _money("amount", amount)
    taken = []
    for term, owed in (("penalty", penalty), ("interest", interest), ("principal", principal)):
        part = min(left, _money(term, owed))
        taken.append(part)
        left -= part
    return Allocation(taken[0], taken[1], taken[2], left)


@dataclass(frozen=True, slots=True)
class LatePayment:
    days_late: int
    penalty: Decimal
    allocation: Allocation
    still_owed: Decimal  # of the rent and its penalty, after this payment


def late_payment(
    row: Row, amount: Decimal | str, paid_on: date | str, daily_rate: Decimal | str
) -> LatePayment:
    """Pay ``amount`` against rent ``row`` on ``paid_on``: penalty interest runs daily on the whole rent
    from its due date, and the payment goes to penalty, then interest, then principal."""
    paid_on = _date("paid_on", paid_on)
    days = max(0, (paid_on - row.date).days)
    penalty = penalty_interest(row.payment, row.date, paid_on, daily_rate)
    allocation = allocate_payment(
        amount, penalty=penalty, interest=row.interest, principal=max(row.principal, NIL)
    )
    owed = penalty + row.interest + max(row.principal, NIL)
    settled = allocation.penalty + allocation.interest + allocation.principal
    return LatePayment(days, penalty, allocation, owed - settled)
