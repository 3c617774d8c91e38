"""The lease ledger, pure: what each instalment of a signed schedule owes on a date, given the payments
recorded against it, and how a new payment is split.

Rules, in one place:

* An instalment owes its rent, ``interest + principal`` as the schedule row says; the last one also owes
  the balloon (the schedule settles it with the last rent). A capitalised grace row owes nothing: its
  interest was added to the balance instead.
* Penalty interest (罚息) runs daily on the unpaid part of the rent from the due date:
  ``unpaid × daily_rate × days``, rounded to the fen for each stretch between payments (one stretch, no
  part-payment: exactly :func:`core.penalty_interest`). Unpaid penalty earns no penalty.
* A payment goes to open instalments oldest first; within one, penalty → interest → principal
  (:func:`core.allocate_payment`). An instalment not yet due may be paid early; what is left after the
  last instalment is kept as unapplied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from computelease.finance.events import allocate_payment, penalty_interest
from computelease.finance.schedule import NIL, ZERO, FinanceTermError, Row, _money


class InstalmentStatus(StrEnum):
    due = "due"  # not yet paid, not late
    paid = "paid"
    partially_paid = "partially_paid"  # something paid, the rest not late yet
    overdue = "overdue"  # past its due date with something unpaid


@dataclass(frozen=True, slots=True)
class Instalment:
    """What one schedule row asks the lessee to pay. ``capitalised`` is interest added to the balance
    instead of paid (a capitalised grace row)."""

    period: int
    due: date
    interest: Decimal
    principal: Decimal
    capitalised: Decimal = NIL

    @property
    def amount(self) -> Decimal:
        return self.interest + self.principal

    @classmethod
    def of_row(cls, row: Row, *, balloon: Decimal = ZERO) -> Instalment:
        interest = min(row.interest, max(row.payment, NIL))
        principal = row.payment - interest
        capitalised = -row.principal if row.principal < 0 else NIL
        return cls(row.period, row.date, interest, principal + balloon, capitalised)


@dataclass(frozen=True, slots=True)
class Settled:
    """Part of a recorded payment that went to instalment ``period``."""

    period: int
    paid_on: date
    penalty: Decimal
    interest: Decimal
    principal: Decimal

    @property
    def rent(self) -> Decimal:
        return self.interest + self.principal


@dataclass(frozen=True, slots=True)
class Share:
    """Where part of a new payment goes: instalment ``period`` and the split. ``days_late`` counts from the
    due date to the payment (0 when paid on time or early)."""

    period: int
    penalty: Decimal
    interest: Decimal
    principal: Decimal
    days_late: int

    @property
    def total(self) -> Decimal:
        return self.penalty + self.interest + self.principal


@dataclass(frozen=True, slots=True)
class Split:
    shares: tuple[Share, ...]
    unapplied: Decimal


@dataclass(frozen=True, slots=True)
class InstalmentPosition:
    """One instalment on ``as_of``. ``outstanding`` is the rent still unpaid (penalty apart);
    ``penalty_owed`` the penalty accrued and not paid; ``owed`` both."""

    instalment: Instalment
    status: InstalmentStatus
    paid_interest: Decimal
    paid_principal: Decimal
    paid_penalty: Decimal
    penalty_accrued: Decimal
    outstanding: Decimal
    penalty_owed: Decimal
    days_overdue: int
    last_paid_on: date | None

    @property
    def period(self) -> int:
        return self.instalment.period

    @property
    def due(self) -> date:
        return self.instalment.due

    @property
    def paid(self) -> Decimal:
        return self.paid_interest + self.paid_principal + self.paid_penalty

    @property
    def owed(self) -> Decimal:
        return self.outstanding + self.penalty_owed


@dataclass(frozen=True, slots=True)
class Position:
    """The whole lease on ``as_of``: every instalment, and the figures a lessor looks at first."""

    as_of: date
    instalments: tuple[InstalmentPosition, ...]
    outstanding_principal: Decimal
    overdue_total: Decimal  # overdue rent and all penalty owed
    overdue_count: int
    penalty_owed: Decimal
    paid_total: Decimal
    next_due: InstalmentPosition | None  # the first instalment due on or after as_of not fully paid

    @property
    def overdue(self) -> tuple[InstalmentPosition, ...]:
        return tuple(p for p in self.instalments if p.status is InstalmentStatus.overdue)


def _penalty_until(
    instalment: Instalment, settled: Sequence[Settled], until: date, daily_rate: Decimal | str
) -> Decimal:
    """Penalty accrued on ``instalment`` up to ``until``, stretch by stretch between part-payments."""
    if until <= instalment.due:
        return NIL
    unpaid = instalment.amount
    since = instalment.due
    total = NIL
    for part in settled:
        if part.paid_on > until:
            break
        if part.paid_on > since:
            if unpaid > 0:
                total += penalty_interest(unpaid, since, part.paid_on, daily_rate)
            since = part.paid_on
        unpaid -= part.rent
    if until > since and unpaid > 0:
        total += penalty_interest(unpaid, since, until, daily_rate)
    return total


def _by_period(
    instalments: Sequence[Instalment], settled: Iterable[Settled], until: date | None = None
) -> dict[int, list[Settled]]:
    out: dict[int, list[Settled]] = {i.period: [] for i in instalments}
    for part in sorted(settled, key=lambda s: s.paid_on):
        if part.period not in out:
            raise ValueError(f"a payment was allocated to period {part.period}, which the schedule lacks")
        if until is None or part.paid_on <= until:
            out[part.period].append(part)
    return out


def _check_rate(daily_rate: Decimal | str) -> None:
    # Fails here, naming the term, rather than on the first late instalment.
    penalty_interest(NIL, date(2000, 1, 1), date(2000, 1, 1), daily_rate)


def allocate(
    instalments: Sequence[Instalment],
    settled: Iterable[Settled],
    paid_on: date,
    amount: Decimal | str,
    daily_rate: Decimal | str,
) -> Split:
    """Split a payment of ``amount`` made on ``paid_on`` across the open instalments, oldest first;
    penalty, then interest, then principal within each. ``settled`` are the earlier payments' shares."""
    _check_rate(daily_rate)
    parts = _by_period(instalments, settled)
    left = _money("amount", amount)
    if left <= 0:
        raise FinanceTermError("amount", "must be more than 0")
    shares: list[Share] = []
    for inst in sorted(instalments, key=lambda i: (i.due, i.period)):
        if left <= 0:
            break
        mine = parts[inst.period]
        penalty = _penalty_until(inst, mine, paid_on, daily_rate) - sum((p.penalty for p in mine), NIL)
        interest = inst.interest - sum((p.interest for p in mine), NIL)
        principal = inst.principal - sum((p.principal for p in mine), NIL)
        if penalty <= 0 and interest <= 0 and principal <= 0:
            continue
        split = allocate_payment(
            left, penalty=max(penalty, NIL), interest=max(interest, NIL), principal=max(principal, NIL)
        )
        left = split.unapplied
        days = max(0, (paid_on - inst.due).days)
        shares.append(Share(inst.period, split.penalty, split.interest, split.principal, days))
    return Split(tuple(shares), left)


def position(
    instalments: Sequence[Instalment],
    settled: Iterable[Settled],
    as_of: date,
    daily_rate: Decimal | str,
    *,
    principal: Decimal,
) -> Position:
    """Every instalment's status on ``as_of`` (payments dated later are ignored), and the totals.

    ``principal`` is the amount financed; outstanding principal is that, plus interest capitalised by
    ``as_of``, less principal paid by ``as_of``.
    """
    _check_rate(daily_rate)
    parts = _by_period(instalments, settled, as_of)
    rows: list[InstalmentPosition] = []
    outstanding_principal = principal
    for inst in sorted(instalments, key=lambda i: (i.due, i.period)):
        mine = parts[inst.period]
        paid_interest = sum((p.interest for p in mine), NIL)
        paid_principal = sum((p.principal for p in mine), NIL)
        paid_penalty = sum((p.penalty for p in mine), NIL)
        accrued = _penalty_until(inst, mine, as_of, daily_rate)
        outstanding = inst.amount - paid_interest - paid_principal
        penalty_owed = max(accrued - paid_penalty, NIL)
        if inst.due <= as_of:
            outstanding_principal += inst.capitalised
        outstanding_principal -= paid_principal
        late = as_of > inst.due and outstanding > 0
        if outstanding <= 0 and penalty_owed <= 0:
            status = InstalmentStatus.paid
        elif late:
            status = InstalmentStatus.overdue
        elif outstanding < inst.amount or paid_penalty > 0:
            status = InstalmentStatus.partially_paid
        else:
            status = InstalmentStatus.due
        rows.append(
            InstalmentPosition(
                instalment=inst,
                status=status,
                paid_interest=paid_interest,
                paid_principal=paid_principal,
                paid_penalty=paid_penalty,
                penalty_accrued=accrued,
                outstanding=max(outstanding, NIL),
                penalty_owed=penalty_owed,
                days_overdue=(as_of - inst.due).days if late else 0,
                last_paid_on=mine[-1].paid_on if mine else None,
            )
        )
    overdue = [p for p in rows if p.status is InstalmentStatus.overdue]
    penalty_owed_total = sum((p.penalty_owed for p in rows), NIL)
    overdue_rent = sum((p.outstanding for p in overdue), NIL)
    next_due = next(
        (p for p in rows if p.due >= as_of and p.status is not InstalmentStatus.paid),
        None,
    )
    return Position(
        as_of=as_of,
        instalments=tuple(rows),
        outstanding_principal=outstanding_principal,
        overdue_total=overdue_rent + penalty_owed_total,
        overdue_count=len(overdue),
        penalty_owed=penalty_owed_total,
        paid_total=sum((p.paid for p in rows), NIL),
        next_due=next_due,
    )
