"""Rent schedules for finance leases (融资租赁租金计划表): terms in, rows out, exact to the fen.

Conventions, chosen once and used by every function in this package:

* The periodic rate is the nominal annual rate split evenly: ``i = annual_rate × months_per_period / 12``.
* Every payment settles the interest accrued since the previous cash event (commencement or the previous
  payment) on the balance outstanding, and the rest of it repays principal. In arrears (后付) the first
  payment falls one period after commencement; in advance (先付) it falls on the commencement date, so
  its interest is nil and the whole first rent is principal.
* Amounts are rounded half-up to the fen at each row: interest first, then the instalment's principal;
  the last row takes whatever is left so that principal sums exactly to ``principal − balloon`` and the
  closing balance ends at the balloon (the residual).
* The balloon is settled on the last payment date, with the last rent. The nominal purchase-option price
  (留购价) and a refundable deposit are settled at the end of the term (one period after the last rent
  when paying in advance).
* An irregular first period (commencement to ``first_period_end``) accrues daily interest,
  ``principal × annual_rate × days / 365`` (or ``/ 360``). The instalment is still planned on a regular
  period, so only the rent that settles that period moves, by the difference in its interest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple, TypeVar, overload

from computelease.errors import BadRequest
from computelease.money import CONTEXT, FEN

ZERO = Decimal(0)
ONE = Decimal(1)
# Zero at the fen, so a zero principal prints "0.00" like every other amount.
NIL = Decimal("0.00")
_HALF_UP = ROUND_HALF_UP
_E = TypeVar("_E", bound=StrEnum)


class FinanceTermError(BadRequest):
    """A lease term is missing or out of range. ``term`` names the field so a form or CLI can point at it."""

    def __init__(self, term: str, detail: str) -> None:
        super().__init__(f"{term}: {detail}", term=term)
        self.term = term


class Method(StrEnum):
    annuity = "annuity"  # 等额本息
    equal_principal = "equal_principal"  # 等额本金
    interest_only = "interest_only"  # 先息后本, principal at the end
    custom = "custom"  # principal per period given by the deal


class Timing(StrEnum):
    arrears = "arrears"  # 后付
    advance = "advance"  # 先付


class Frequency(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"
    semi_annual = "semi_annual"

    @property
    def months(self) -> int:
        return _FREQUENCY_MONTHS[self]


_FREQUENCY_MONTHS = {Frequency.monthly: 1, Frequency.quarterly: 3, Frequency.semi_annual: 6}


class LeaseKind(StrEnum):
    direct = "direct"  # 直租
    sale_leaseback = "sale_leaseback"  # 售后回租


class GraceKind(StrEnum):
    interest_only = "interest_only"  # interest is paid during the grace months
    capitalised = "capitalised"  # interest is added to the balance and repaid with it


class DayCount(StrEnum):
    act_365 = "act_365"
    act_360 = "act_360"

    @property
    def basis(self) -> Decimal:
        return Decimal(365) if self is DayCount.act_365 else Decimal(360)


class DepositUse(StrEnum):
    refund = "refund"  # paid back at the end of the term
    offset = "offset"  # set against the last rents


# -- coercion: terms arrive from forms, JSON and the CLI as strings; every failure names its term ---------


def _enum(cls: type[_E], term: str, value: object) -> _E:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(member.value for member in cls)
        raise FinanceTermError(term, f"{value!r} is not known; use one of {choices}") from None


def _decimal(term: str, value: object) -> Decimal:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FinanceTermError(term, f"{value} is not a number")
        return value
    if isinstance(value, (bool, float)):
        # A float has already lost the fen (0.1 is not 1/10); money and rates travel as text or Decimal.
        raise FinanceTermError(term, f"pass {value!r} as a string or Decimal, not a {type(value).__name__}")
    if not isinstance(value, (int, str)):
        raise FinanceTermError(term, f"{value!r} is not a number")
    try:
        result = Decimal(str(value).strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise FinanceTermError(term, f"{value!r} is not a number") from None
    if not result.is_finite():
        raise FinanceTermError(term, f"{value!r} is not a number")
    return result


def _money(term: str, value: object) -> Decimal:
    amount = _decimal(term, value)
    if amount < 0:
        raise FinanceTermError(term, f"must not be negative, got {amount}")
    if amount != amount.quantize(FEN):
        raise FinanceTermError(term, f"{amount} has fractions of a fen; give at most two decimal places")
    return amount.quantize(FEN)


def _fraction(term: str, value: object, *, example: str) -> Decimal:
    rate = _decimal(term, value)
    if rate < 0:
        raise FinanceTermError(term, f"must not be negative, got {rate}")
    if rate >= 1:
        raise FinanceTermError(term, f"{rate} means {rate * 100}%; give a fraction of one, e.g. {example}")
    return rate


def _int(term: str, value: object) -> int:
    if isinstance(value, bool):
        raise FinanceTermError(term, f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise FinanceTermError(term, f"{value!r} is not a whole number of months") from None


def _date(term: str, value: object) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise FinanceTermError(term, f"{value!r} is not a date; use YYYY-MM-DD") from None


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _MONTH_DAYS[month - 1]


def add_months(anchor: date, months: int, *, month_end: bool = True) -> date:
    """The date ``months`` after ``anchor``, always counted from the anchor so short months never drift.

    The day is clamped to the month's length (31 Jan + 1 month = 28/29 Feb, + 2 months = 31 Mar). With
    ``month_end``, an anchor on the last day of its month keeps every date on a month end (30 Apr → 31 May).
    """
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    month += 1
    last = days_in_month(year, month)
    if month_end and anchor.day == days_in_month(anchor.year, anchor.month):
        return date(year, month, last)
    return date(year, month, min(anchor.day, last))


def month_steps(anchor: date, step: int, count: int, *, month_end: bool = True) -> list[date]:
    """``count`` dates at ``step``, ``2·step``, ... months after ``anchor`` (see :func:`add_months`);
    ``step`` must be positive."""
    day = anchor.day
    stick = month_end and day == days_in_month(anchor.year, anchor.month)
    year, month = anchor.year, anchor.month
    out = []
    append = out.append
    for _ in range(count):
        month += step
        if month > 12:
            month -= 12
            year += 1
        if day <= 28 and not stick:
            append(date(year, month, day))
            continue
        if month == 2:
            last = 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
        else:
            last = _MONTH_DAYS[month - 1]
        append(date(year, month, last if stick or day > last else day))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseTerms:
    """The terms of one finance lease. Strings are accepted and converted; bad terms raise
    :class:`FinanceTermError` naming the term.

    ``principal`` is the amount financed (融资额). ``annual_rate`` is nominal, as a fraction (0.06 = 6%).
    ``months`` is the whole term, grace months included; it and ``grace_months`` must be whole periods.
    ``balloon`` is the residual left outstanding after the last rent and settled with it.
    ``purchase_option`` is the nominal price (留购价) paid at the end of the term for title.
    ``first_period_end`` makes the first period irregular (daily interest); later periods count from it.
    ``principal_plan`` (method ``custom`` only) gives the principal of each repayment period after grace;
    it must sum to ``principal − balloon``. ``fee_rate`` (手续费) and ``deposit_rate`` (保证金) are fractions
    of the principal, paid at commencement.
    """

    principal: Decimal
    annual_rate: Decimal
    months: int
    start: date
    method: Method = Method.annuity
    timing: Timing = Timing.arrears
    frequency: Frequency = Frequency.monthly
    grace_months: int = 0
    grace: GraceKind = GraceKind.interest_only
    balloon: Decimal = ZERO
    purchase_option: Decimal = ZERO
    first_period_end: date | None = None
    day_count: DayCount = DayCount.act_365
    month_end: bool = True
    principal_plan: tuple[Decimal, ...] | None = None
    fee_rate: Decimal = ZERO
    deposit_rate: Decimal = ZERO
    deposit_use: DepositUse = DepositUse.refund
    kind: LeaseKind = LeaseKind.direct

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "method", _enum(Method, "method", self.method))
        put(self, "timing", _enum(Timing, "timing", self.timing))
        put(self, "frequency", _enum(Frequency, "frequency", self.frequency))
        put(self, "grace", _enum(GraceKind, "grace", self.grace))
        put(self, "day_count", _enum(DayCount, "day_count", self.day_count))
        put(self, "deposit_use", _enum(DepositUse, "deposit_use", self.deposit_use))
        put(self, "kind", _enum(LeaseKind, "kind", self.kind))
        principal = _money("principal", self.principal)
        if principal <= 0:
            raise FinanceTermError("principal", "must be more than 0; give the amount financed, e.g. 1000000")
        put(self, "principal", principal)
        rate = _decimal("annual_rate", self.annual_rate)
        if rate < 0:
            raise FinanceTermError("annual_rate", f"must not be negative, got {rate}")
        if rate > 1:
            raise FinanceTermError(
                "annual_rate", f"{rate} means {rate * 100}% a year; give a fraction, e.g. 0.06 for 6%"
            )
        put(self, "annual_rate", rate)
        put(self, "start", _date("start", self.start))
        self._check_term()
        balloon = _money("balloon", self.balloon)
        if balloon > principal:
            raise FinanceTermError(
                "balloon",
                f"{balloon} is above the principal {principal}; it must not exceed the amount financed",
            )
        put(self, "balloon", balloon)
        put(self, "purchase_option", _money("purchase_option", self.purchase_option))
        put(self, "fee_rate", _fraction("fee_rate", self.fee_rate, example="0.01 for 1%"))
        put(self, "deposit_rate", _fraction("deposit_rate", self.deposit_rate, example="0.05 for 5%"))
        if not isinstance(self.month_end, bool):
            raise FinanceTermError("month_end", f"must be true or false, got {self.month_end!r}")
        self._check_first_period()
        self._check_plan()

    def _check_term(self) -> None:
        put = object.__setattr__
        step = self.frequency.months
        months = _int("months", self.months)
        if months <= 0:
            raise FinanceTermError("months", f"must be at least {step}, got {months}")
        if months % step:
            raise FinanceTermError(
                "months",
                f"{months} months is not a whole number of {self.frequency.value} periods "
                f"({step} months each); use a multiple of {step}",
            )
        grace = _int("grace_months", self.grace_months)
        if grace < 0:
            raise FinanceTermError("grace_months", f"must not be negative, got {grace}")
        if grace % step:
            raise FinanceTermError(
                "grace_months",
                f"{grace} is not a whole number of {self.frequency.value} periods; use a multiple of {step}",
            )
        if grace >= months:
            raise FinanceTermError(
                "grace_months",
                f"{grace} leaves no period of the {months}-month term to repay in; "
                "make grace shorter than the term",
            )
        put(self, "months", months)
        put(self, "grace_months", grace)

    def _check_first_period(self) -> None:
        if self.first_period_end is None:
            return
        end = _date("first_period_end", self.first_period_end)
        object.__setattr__(self, "first_period_end", end)
        if end <= self.start:
            raise FinanceTermError("first_period_end", f"{end} must be after the start {self.start}")
        latest = add_months(self.start, 2 * self.frequency.months, month_end=self.month_end)
        if end >= latest:
            raise FinanceTermError(
                "first_period_end",
                f"{end} makes the first period two regular periods or longer; choose a date before {latest}",
            )

    def _check_plan(self) -> None:
        plan = self.principal_plan
        if self.method is not Method.custom:
            if plan is not None:
                raise FinanceTermError(
                    "principal_plan", f"is only used with method custom, not {self.method}"
                )
            return
        if plan is None:
            raise FinanceTermError("principal_plan", "method custom needs the principal of each period")
        if isinstance(plan, (str, bytes)) or not isinstance(plan, Iterable):
            raise FinanceTermError("principal_plan", "give a list of amounts, one per repayment period")
        amounts = tuple(_money("principal_plan", value) for value in plan)
        periods = (self.months - self.grace_months) // self.frequency.months
        if len(amounts) != periods:
            raise FinanceTermError(
                "principal_plan",
                f"has {len(amounts)} amounts but the lease has {periods} repayment periods "
                "after grace; give one amount per period",
            )
        target = self.principal - self.balloon
        if sum(amounts, ZERO) != target:
            raise FinanceTermError(
                "principal_plan",
                f"sums to {sum(amounts, ZERO)} but must sum to principal − balloon = {target}",
            )
        object.__setattr__(self, "principal_plan", amounts)

    @property
    def periods(self) -> int:
        return self.months // self.frequency.months

    @property
    def periods_per_year(self) -> int:
        return 12 // self.frequency.months

    @property
    def periodic_rate(self) -> Decimal:
        """``i = annual_rate × months_per_period / 12``."""
        with localcontext(CONTEXT):
            return self.annual_rate * self.frequency.months / 12

    @property
    def fee(self) -> Decimal:
        """The upfront fee (手续费), ``principal × fee_rate`` to the fen."""
        return (self.principal * self.fee_rate).quantize(FEN, _HALF_UP)

    @property
    def deposit(self) -> Decimal:
        """The security deposit (保证金), ``principal × deposit_rate`` to the fen."""
        return (self.principal * self.deposit_rate).quantize(FEN, _HALF_UP)


class Row(NamedTuple):
    """One rent. ``payment = interest + principal`` and ``closing = opening − principal``; a capitalised
    grace row has a negative principal (the interest added to the balance) and no payment."""

    period: int
    date: date
    opening: Decimal
    payment: Decimal
    interest: Decimal
    principal: Decimal
    closing: Decimal


_as_row = partial(tuple.__new__, Row)


class Rows(Sequence[Row]):
    """A schedule's rows. They are stored as plain tuples, which the garbage collector stops tracking,
    so a portfolio of schedules held in memory does not slow every collection; each access hands out
    a :class:`Row`. Indexing, slicing (a tuple of rows), iteration and ``==`` behave like a tuple's."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple]) -> None:
        self._raw: tuple[tuple, ...] = tuple(tuple(row) if type(row) is not tuple else row for row in raw)

    @classmethod
    def _of(cls, raw: tuple[tuple, ...]) -> Rows:
        # The engine's own rows are plain tuples already; skip the copy on the hot path.
        rows = object.__new__(cls)
        rows._raw = raw
        return rows

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Row, ...]: ...
    def __getitem__(self, index: int | slice) -> Row | tuple[Row, ...]:
        if isinstance(index, slice):
            return tuple(map(_as_row, self._raw[index]))
        return _as_row(self._raw[index])

    def __iter__(self) -> Iterator[Row]:
        return map(_as_row, self._raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows):
            return self._raw == other._raw
        if isinstance(other, (tuple, list)):
            return self._raw == tuple(map(tuple, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"Rows({list(self)!r})"

    @property
    def raw(self) -> tuple[tuple, ...]:
        return self._raw


@dataclass(frozen=True, slots=True)
class Totals:
    payments: Decimal
    interest: Decimal
    principal: Decimal
    residual: Decimal  # the balloon, settled with the last rent
    purchase_option: Decimal

    @property
    def total(self) -> Decimal:
        """Everything the lessee pays under the schedule: rents, balloon and purchase option."""
        return self.payments + self.residual + self.purchase_option


@dataclass(frozen=True, slots=True)
class Schedule:
    """Rows of a rent schedule. ``instalment`` is the level rent (annuity) or principal step
    (equal_principal) in force for the later rows, which a keep-instalment prepayment keeps."""

    terms: LeaseTerms
    rows: Rows
    totals: Totals
    end: date
    instalment: Decimal | None

    @property
    def start(self) -> date:
        return self.terms.start


class Slot(NamedTuple):
    """Where a rent falls and how much interest it settles, per yuan of opening balance.

    ``regular`` is what a regular period would accrue: plans use it, so an odd first period changes
    only the interest of the rent that settles it, not the instalment."""

    date: date
    factor: Decimal
    regular: Decimal
    grace: bool


def calendar_of(terms: LeaseTerms) -> tuple[tuple[Slot, ...], tuple[date, ...]]:
    """The payment slots and the period boundaries (commencement, then each period's end)."""
    step = terms.frequency.months
    n = terms.periods
    grace_rows = terms.grace_months // step
    start = terms.start
    with localcontext(CONTEXT):
        i = terms.annual_rate * step / 12
        first = terms.first_period_end
        if first is None:
            bounds = [start, *month_steps(start, step, n, month_end=terms.month_end)]
            odd = i
        else:
            bounds = [start, first, *month_steps(first, step, n - 1, month_end=terms.month_end)]
            odd = terms.annual_rate * (first - start).days / terms.day_count.basis
    new = tuple.__new__
    if terms.timing is Timing.arrears:
        # Rent k settles period k.
        slots = [new(Slot, (bounds[1], odd, i, grace_rows >= 1))]
        slots += [new(Slot, (bounds[k], i, i, k <= grace_rows)) for k in range(2, n + 1)]
    else:
        # Rent k falls at the start of period k and settles period k-1; the first settles nothing.
        slots = [new(Slot, (start, ZERO, ZERO, grace_rows >= 1))]
        if n > 1:
            slots.append(new(Slot, (bounds[1], odd, i, grace_rows >= 2)))
        slots += [new(Slot, (bounds[k - 1], i, i, k <= grace_rows)) for k in range(3, n + 1)]
    return tuple(slots), tuple(bounds)


def level_payment(balance: Decimal, factors: Sequence[Decimal], residual: Decimal = ZERO) -> Decimal:
    """The level rent that takes ``balance`` down to ``residual`` over rents accruing ``factors``.

    With ``B_j = B_{j-1}·(1 + f_j) − A`` and ``B_m = R``:
    ``A = (B_0·Π(1 + f_j) − R) / Σ_j Π_{l>j}(1 + f_l)``.
    For a regular arrears lease (every ``f = i``) this is the familiar
    ``PMT = P·i·(1+i)^n / ((1+i)^n − 1)`` (with ``R = 0``); in advance the first rent accrues nothing,
    which gives ``PMT_advance = PMT_arrears / (1 + i)``. A nil rate gives ``(P − R) / n``.
    """
    with localcontext(CONTEXT):
        growth = ONE
        annuity = ZERO
        # A run of k equal factors f adds growth·((1+f)^k − 1)/f to the sum, so regular runs cost one power.
        for f, run in groupby(reversed(factors)):
            k = sum(1 for _ in run)
            if f:
                step = (ONE + f) ** k
                annuity += growth * (step - ONE) / f
                growth *= step
            else:
                annuity += growth * k
        return ((balance * growth - residual) / annuity).quantize(FEN, _HALF_UP)


def amortise(
    balance: Decimal,
    slots: Sequence[Slot],
    *,
    first_period: int,
    method: Method,
    residual: Decimal,
    capitalise_grace: bool,
    instalment: Decimal | None = None,
    plan: Sequence[Decimal] | None = None,
    shorten: bool = False,
) -> tuple[list[tuple], Decimal | None]:
    """Run ``balance`` through ``slots``; the last row (or, with ``shorten``, the first row that reaches
    the residual) takes the balance exactly to ``residual``.

    ``instalment`` fixes the level rent (annuity) or principal step (equal_principal) instead of planning
    it over the slots; ``plan`` gives custom principals, one per repayment slot. Grace slots come first.
    """
    rows: list[tuple] = []
    append = rows.append
    fen = FEN
    half_up = _HALF_UP
    period = first_period - 1
    graces = 0
    while graces < len(slots) and slots[graces].grace:
        graces += 1
    repaying = slots[graces:]
    # One decimal context for the whole run and tuples built directly: this is every schedule's hot path.
    with localcontext(CONTEXT):
        for when, factor, _, _ in slots[:graces]:
            period += 1
            interest = (balance * factor).quantize(fen, half_up)
            principal = NIL - interest if capitalise_grace else NIL
            closing = balance - principal
            append((period, when, balance, principal + interest, interest, principal, closing))
            balance = closing
        if not repaying:
            return rows, instalment
        if method is Method.annuity and instalment is None:
            instalment = level_payment(balance, [s.regular for s in repaying], residual)
        elif method is Method.equal_principal and instalment is None:
            instalment = ((balance - residual) / len(repaying)).quantize(fen, half_up)
        planned = iter(plan or ())
        is_annuity = method is Method.annuity
        interest_only = method is Method.interest_only
        for when, factor, regular, _ in repaying[:-1]:
            period += 1
            interest = (balance * factor).quantize(fen, half_up)
            if is_annuity:
                if regular is factor:
                    principal = instalment - interest
                else:
                    principal = instalment - (balance * regular).quantize(fen, half_up)
                if principal < 0:
                    principal = NIL
            elif interest_only:
                principal = NIL
            elif plan is not None:
                principal = next(planned)
            else:
                principal = instalment
            closing = balance - principal
            if closing <= residual or (shorten and closing - residual <= fen * (period - first_period + 1)):
                # Never repay past the residual (rounding a tiny lease up to the fen could). When shortening,
                # a remainder no bigger than the fens the rounding has drifted joins this rent, not a new one.
                principal = balance - residual
                closing = residual
                if shorten:
                    append((period, when, balance, principal + interest, interest, principal, closing))
                    return rows, instalment
            append((period, when, balance, principal + interest, interest, principal, closing))
            balance = closing
        when, factor, _, _ = repaying[-1]
        interest = (balance * factor).quantize(fen, half_up)
        principal = balance - residual
        append((period + 1, when, balance, principal + interest, interest, principal, residual))
    return rows, instalment


def totals_of(rows: Sequence[tuple], terms: LeaseTerms) -> Totals:
    """Totals of raw row tuples (as :func:`amortise` returns them) or of :class:`Row` objects."""
    # Principal telescopes: the first opening less the last closing, exactly.
    interest = sum(map(_INTEREST, rows), ZERO)
    principal = rows[0][2] - rows[-1][6]
    return Totals(interest + principal, interest, principal, rows[-1][6], terms.purchase_option)


_INTEREST = itemgetter(4)


def end_of(timing: Timing, rows: Sequence[tuple], bounds: Sequence[date]) -> date:
    """The end of the term: the last rent's date in arrears, one period after it in advance."""
    return rows[-1][1] if timing is Timing.arrears else bounds[len(rows)]


def make_schedule(
    terms: LeaseTerms, rows: Sequence[tuple], bounds: Sequence[date], instalment: Decimal | None
) -> Schedule:
    """A schedule from rows that are plain tuples (as :func:`amortise` returns them) or :class:`Row`."""
    raw = tuple(row if type(row) is tuple else tuple(row) for row in rows)
    end = end_of(terms.timing, raw, bounds)
    return Schedule(terms, Rows._of(raw), totals_of(raw, terms), end, instalment)


def build_schedule(terms: LeaseTerms) -> Schedule:
    """The rent schedule for ``terms``.

    Annuity (等额本息), in arrears: ``PMT = P·i·(1+i)^n / ((1+i)^n − 1)``, or with a balloon ``R``,
    ``PMT = (P·(1+i)^n − R)·i / ((1+i)^n − 1)``; in advance ``PMT_advance = PMT_arrears / (1 + i)``.
    Equal principal (等额本金): principal ``(P − R) / n`` a period, interest on the falling balance.
    Interest only: interest each period, ``P − R`` with the last rent. Custom: the given principals.
    Grace periods come first and count in the term: interest is paid, or (capitalised) added to the
    balance that the repayment periods then amortise.
    """
    slots, bounds = calendar_of(terms)
    rows, instalment = amortise(
        terms.principal,
        slots,
        first_period=1,
        method=terms.method,
        residual=terms.balloon,
        capitalise_grace=terms.grace is GraceKind.capitalised,
        plan=terms.principal_plan,
    )
    raw = tuple(rows)
    end = end_of(terms.timing, raw, bounds)
    return Schedule(terms, Rows._of(raw), totals_of(raw, terms), end, instalment)
