"""Pure contract rules: capacity, accelerator compatibility, term bounds, contract value, status changes,
SLA policies. No database, no clock, no I/O beyond the shipped catalog (:func:`load_catalog`, passed in
as ``catalog`` by callers that have an operator's own entries).

**Dates.** A contract runs from ``start`` to ``end``, both *dates in the contract's time zone* and both
*inclusive* (a contract "from 2025-03-01 to 2030-02-28" is five years). In UTC it covers
``[local midnight of start, local midnight of the day after end)`` (:func:`term_bounds`).

**Term length, month-exact** (:func:`term_length`). Whole months are counted from the start date's
anniversaries; the days left over are prorated by the length of the contract month they fall in::

    n        = the largest n with add_months(start, n) <= end + 1 day
    a, b     = add_months(start, n), add_months(start, n + 1)
    months   = n + (end + 1 day − a).days / (b − a).days

``add_months`` keeps the day of the month, clamped to the month's last day (Jan 31 + 1 month = Feb 28
or 29), always counted from ``start`` so clamping never accumulates. A term that ends the day before an
anniversary is a whole number of months whatever the months' lengths (2025-01-15 to 2026-01-14 is 12).

**Total contract value** (:func:`contract_value`), in the contract's currency, two lines each rounded
half-up to the fen once (the money policy: round at line boundaries)::

    monthly_fee       compute = price                    × months
    per_pflops_month  compute = price × billable PFLOPS  × months
    per_gpu_hour      compute = price × billable GPUs    × hours   (exact UTC hours of the term, so a
                                                                    DST change counts as it happens)
    O&M               om      = monthly O&M fee          × months
    total             = compute + om

Billable PFLOPS are the contracted PFLOPS when the contract is sold in PFLOPS (never what the rounded-up
GPUs happen to deliver); otherwise GPUs × the model's dense figure. Billable GPUs are the contracted GPUs,
or what the PFLOPS or nodes convert to. A quantity must be the same for every compatible accelerator,
else the price is ambiguous and the terms are refused with what to change.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from computelease.catalog.core import (
    PRECISIONS,
    Catalog,
    Conversion,
    ConversionError,
    UnknownAccelerator,
    convert,
    load_catalog,
)
from computelease.errors import Conflict, Unprocessable

DEFAULT_TZ = "Asia/Shanghai"
FEN = Decimal("0.01")


class ContractInvalid(Unprocessable):
    """Terms that cannot be a contract; the detail says which term to change."""


class SlaPolicyInvalid(Unprocessable):
    """An SLA policy that breaks a rule; the detail says which."""


# Far beyond any real contract (the whole world's AI compute is a few hundred thousand PFLOPS), and far
# inside what the columns hold, so absurd input is refused with a reason instead of overflowing a column.
MAX_CAPACITY = {"pflops": Decimal("10000000"), "gpus": Decimal("100000000"), "nodes": Decimal("10000000")}
MAX_VALUE = Decimal("1000000000000000")


class CapacityUnit(StrEnum):
    pflops = "pflops"
    gpus = "gpus"
    nodes = "nodes"


class Placement(StrEnum):
    same_fabric = "same_fabric"
    same_site = "same_site"
    any = "any"


class Pricing(StrEnum):
    monthly_fee = "monthly_fee"
    per_pflops_month = "per_pflops_month"
    per_gpu_hour = "per_gpu_hour"


class ContractStatus(StrEnum):
    draft = "draft"
    signed = "signed"
    active = "active"
    ended = "ended"
    terminated = "terminated"


# A signed contract may be terminated before it starts (the customer walks away); a draft is not
# terminated, it is simply never signed.
TRANSITIONS: Mapping[ContractStatus, tuple[ContractStatus, ...]] = {
    ContractStatus.draft: (ContractStatus.signed,),
    ContractStatus.signed: (ContractStatus.active, ContractStatus.terminated),
    ContractStatus.active: (ContractStatus.ended, ContractStatus.terminated),
    ContractStatus.ended: (),
    ContractStatus.terminated: (),
}


class IllegalTransition(Conflict):
    def __init__(self, current: ContractStatus, requested: ContractStatus) -> None:
        allowed = [s.value for s in TRANSITIONS[current]]
        options = ", ".join(allowed) if allowed else "none: it is final"
        super().__init__(
            f"a {current.value} contract cannot become {requested.value}; allowed from {current.value}: "
            f"{options}",
            current=current.value,
            requested=requested.value,
            allowed=allowed,
        )


def check_transition(current: ContractStatus | str, requested: ContractStatus | str) -> ContractStatus:
    """The requested status, when the move from ``current`` is legal; else :class:`IllegalTransition`."""
    current, requested = ContractStatus(current), ContractStatus(requested)
    if requested not in TRANSITIONS[current]:
        raise IllegalTransition(current, requested)
    return requested


# ------------------------------------------------------------------------------------------ time


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ContractInvalid(
            f"time zone {tz!r} is not an IANA name; use one such as Asia/Shanghai or UTC"
        ) from None


def term_bounds(start: date, end: date, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """UTC ``[start, end)``: local midnight of ``start`` and of the day after ``end`` in ``tz``."""
    _check_dates(start, end)
    where = zone(tz)
    first = datetime(start.year, start.month, start.day, tzinfo=where).astimezone(UTC)
    after = end + timedelta(days=1)
    last = datetime(after.year, after.month, after.day, tzinfo=where).astimezone(UTC)
    return first, last


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, its day of the month clamped to the target month's length."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class TermLength:
    """``whole_months`` plus ``extra_days`` out of a contract month of ``days_in_partial_month``."""

    whole_months: int
    extra_days: int
    days_in_partial_month: int

    @property
    def months(self) -> Fraction:
        return self.whole_months + Fraction(self.extra_days, self.days_in_partial_month)


def term_length(start: date, end: date) -> TermLength:
    """Month-exact length of ``start``..``end`` (both inclusive); the rule is in the module docstring."""
    _check_dates(start, end)
    stop = end + timedelta(days=1)
    # Start from the calendar estimate and correct it: clamping can put an anniversary a few days off.
    n = (stop.year - start.year) * 12 + (stop.month - start.month)
    while n > 0 and add_months(start, n) > stop:
        n -= 1
    while add_months(start, n + 1) <= stop:
        n += 1
    anchor, following = add_months(start, n), add_months(start, n + 1)
    return TermLength(n, (stop - anchor).days, (following - anchor).days)


def term_hours(start: date, end: date, tz: str = DEFAULT_TZ) -> Fraction:
    first, last = term_bounds(start, end, tz)
    return Fraction(int((last - first).total_seconds()), 3600)


EARLIEST, LATEST = date(1990, 1, 1), date(2199, 12, 31)


def _check_dates(start: date, end: date) -> None:
    for name, day in (("start", start), ("end", end)):
        if not EARLIEST <= day <= LATEST:
            raise ContractInvalid(
                f"{name} date {day.isoformat()} is outside {EARLIEST.isoformat()}..{LATEST.isoformat()}; "
                "check the year"
            )
    if end < start:
        raise ContractInvalid(f"end date {end.isoformat()} is before start date {start.isoformat()}")


# -------------------------------------------------------------------------------------- capacity


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the contract sells: ``value`` PFLOPS (dense, at ``precision``), GPUs or nodes."""

    unit: CapacityUnit
    value: Decimal
    precision: str | None = None

    def __post_init__(self) -> None:
        unit = CapacityUnit(self.unit)
        object.__setattr__(self, "unit", unit)
        value = Decimal(self.value) if not isinstance(self.value, Decimal) else self.value
        if not value.is_finite() or value <= 0:
            raise ContractInvalid(f"capacity must be a positive number of {unit.value}, got {self.value}")
        if value > MAX_CAPACITY[unit.value]:
            raise ContractInvalid(
                f"capacity {value} {unit.value} is beyond any real contract (at most "
                f"{MAX_CAPACITY[unit.value]:,}); check the unit and the number"
            )
        if unit is CapacityUnit.pflops:
            if self.precision not in PRECISIONS:
                raise ContractInvalid(
                    f"capacity in pflops needs a precision, one of {', '.join(PRECISIONS)}; "
                    f"got {self.precision!r}"
                )
        else:
            if value != value.to_integral_value():
                raise ContractInvalid(f"capacity in {unit.value} must be a whole number, got {value}")
            object.__setattr__(self, "precision", None)
        object.__setattr__(self, "value", value)

    def describe(self) -> str:
        if self.unit is CapacityUnit.pflops:
            return f"{self.value.normalize():f} PFLOPS {str(self.precision).upper()}"
        return f"{int(self.value)} {self.unit.value}"


def convert_capacity(capacity: Capacity, model: str, *, catalog: Catalog | None = None) -> Conversion:
    """The capacity as GPUs, nodes and PFLOPS of one accelerator model: what allocation asks for.

    PFLOPS become whole GPUs rounded up (the model's dense figure at the contract's precision must be
    known); nodes use the model's default server SKU. Errors say which figure or SKU is missing.
    """
    kwargs: dict[str, Any]
    if capacity.unit is CapacityUnit.pflops:
        kwargs = {"pflops": capacity.value, "precision": capacity.precision}
    elif capacity.unit is CapacityUnit.gpus:
        kwargs = {"gpus": int(capacity.value)}
    else:
        kwargs = {"nodes": int(capacity.value)}
    return convert(model, catalog=catalog if catalog is not None else load_catalog(), **kwargs)


@dataclass(frozen=True, slots=True)
class AcceleratorRequirement:
    """One catalog model, or a minimum spec (memory and/or dense TFLOPS at a precision)."""

    model: str | None = None
    min_memory_gb: Decimal | None = None
    min_tflops: Decimal | None = None
    min_tflops_precision: str | None = None

    def __post_init__(self) -> None:
        spec = self.min_memory_gb is not None or self.min_tflops is not None
        if self.model and spec:
            raise ContractInvalid(
                "name either an accelerator model or a minimum spec (min memory / min TFLOPS), not both"
            )
        if not self.model and not spec:
            raise ContractInvalid(
                "say which accelerators may serve the contract: an accelerator model, "
                "or a minimum spec (min memory GB and/or min dense TFLOPS at a precision)"
            )
        for name in ("min_memory_gb", "min_tflops"):
            value = getattr(self, name)
            if value is not None and (not Decimal(value).is_finite() or Decimal(value) <= 0):
                raise ContractInvalid(f"{name} must be a positive number, got {value}")
        if self.min_tflops is not None:
            precision = self.min_tflops_precision or "bf16"
            if precision not in PRECISIONS:
                raise ContractInvalid(
                    f"min_tflops_precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
                )
            object.__setattr__(self, "min_tflops_precision", precision)
        else:
            object.__setattr__(self, "min_tflops_precision", None)

    def describe(self) -> str:
        if self.model:
            return self.model
        parts = []
        if self.min_memory_gb is not None:
            parts.append(f"≥ {Decimal(self.min_memory_gb).normalize():f} GB")
        if self.min_tflops is not None:
            parts.append(
                f"≥ {Decimal(self.min_tflops).normalize():f} TFLOPS {str(self.min_tflops_precision).upper()}"
            )
        return ", ".join(parts)


def meets_spec(requirement: AcceleratorRequirement, catalog: Catalog | None = None) -> tuple[str, ...]:
    """Catalog model ids that meet the requirement, sorted. An unknown figure never qualifies a model:
    the catalog cannot show it meets the spec."""
    catalog = catalog if catalog is not None else load_catalog()
    if requirement.model:
        try:
            catalog.accelerator(requirement.model)
        except UnknownAccelerator as exc:
            raise ContractInvalid(exc.detail) from None
        return (requirement.model,)
    found = []
    for acc in catalog.accelerators:
        if requirement.min_memory_gb is not None:
            memory = acc.memory_gb.value if acc.memory_gb is not None else None
            if memory is None or memory < requirement.min_memory_gb:
                continue
        if requirement.min_tflops is not None:
            figure = acc.tflops(str(requirement.min_tflops_precision))
            if figure is None or figure.value is None or figure.value < requirement.min_tflops:
                continue
        found.append(acc.id)
    return tuple(sorted(found))


def compatible_models(
    requirement: AcceleratorRequirement, capacity: Capacity, *, catalog: Catalog | None = None
) -> dict[str, Conversion]:
    """Every model that may serve the contract, with the capacity converted for it.

    A minimum spec keeps only the models whose capacity can be converted (PFLOPS need the dense figure
    at the contract's precision, nodes a server SKU); a named model that cannot be converted is an error
    that names the missing figure. None compatible is an error that says what to relax.
    """
    catalog = catalog if catalog is not None else load_catalog()
    models = meets_spec(requirement, catalog)
    if requirement.model:
        try:
            return {requirement.model: convert_capacity(capacity, requirement.model, catalog=catalog)}
        except ConversionError as exc:
            raise ContractInvalid(exc.detail, **exc.extra) from None
    out = {}
    for model in models:
        try:
            out[model] = convert_capacity(capacity, model, catalog=catalog)
        except ConversionError:
            continue  # the catalog cannot size this model for the contract, so it cannot serve it
    if not out:
        why = (
            f" and can size {capacity.describe()} (a known {capacity.precision} figure or a server SKU)"
            if models
            else ""
        )
        raise ContractInvalid(
            f"no catalog accelerator meets {requirement.describe()}{why}; "
            "lower the minimum spec or name a model"
        )
    return out


# ---------------------------------------------------------------------------------------- value


@dataclass(frozen=True, slots=True)
class PriceTerms:
    """What the customer pays: ``price`` per ``pricing`` unit plus a monthly O&M fee."""

    pricing: Pricing
    price: Decimal
    om_monthly_fee: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        object.__setattr__(self, "pricing", Pricing(self.pricing))
        for name in ("price", "om_monthly_fee"):
            value = getattr(self, name)
            if isinstance(value, float) or not isinstance(value, Decimal | int):
                raise ContractInvalid(f"{name} must be a Decimal amount, got {value!r}")
            if not Decimal(value).is_finite() or value < 0:
                raise ContractInvalid(f"{name} must not be negative, got {value}")
        if self.pricing is Pricing.monthly_fee and Decimal(self.price) != Decimal(self.price).quantize(FEN):
            raise ContractInvalid(
                f"a fixed monthly fee is an amount: at most 2 decimal places, got {self.price}"
            )
        if Decimal(self.om_monthly_fee) != Decimal(self.om_monthly_fee).quantize(FEN):
            raise ContractInvalid(f"om_monthly_fee has more than 2 decimal places: {self.om_monthly_fee}")


@dataclass(frozen=True, slots=True)
class BillableQuantity:
    """The quantity the price applies to; ``None`` where the pricing does not need it."""

    gpus: int | None
    pflops: Decimal | None


def billable_quantity(
    capacity: Capacity, conversions: Mapping[str, Conversion], pricing: Pricing
) -> BillableQuantity:
    """Billable GPUs and PFLOPS (see the module docstring). Each is ``None`` when the compatible models
    disagree on it or the catalog cannot say; the pricing that needs it then refuses the terms."""
    gpu_counts = {c.gpus for c in conversions.values()}
    gpus = gpu_counts.pop() if len(gpu_counts) == 1 else None
    if capacity.unit is CapacityUnit.pflops:
        pflops: Decimal | None = capacity.value
    else:
        delivered = {c.pflops for c in conversions.values()}
        pflops = delivered.pop() if len(delivered) == 1 else None
    pricing = Pricing(pricing)
    if pricing is Pricing.per_gpu_hour and gpus is None:
        raise ContractInvalid(
            f"price per GPU-hour needs one GPU count, but {capacity.describe()} is "
            f"{_per_model(conversions, 'gpus')}; give the capacity in gpus or name one accelerator model"
        )
    if pricing is Pricing.per_pflops_month and pflops is None:
        raise ContractInvalid(
            f"price per PFLOPS-month needs the PFLOPS, but {capacity.describe()} is "
            f"{_per_model(conversions, 'pflops')}; give the capacity in pflops or name one model "
            "whose figure is known"
        )
    return BillableQuantity(gpus=gpus, pflops=pflops)


def _per_model(conversions: Mapping[str, Conversion], what: str) -> str:
    def show(c: Conversion) -> str:
        value = getattr(c, what)
        if what == "pflops":
            return f"{value.normalize():f} PFLOPS {c.precision}" if value is not None else "unknown PFLOPS"
        return f"{value} GPUs"

    return "; ".join(f"{show(c)} on {m}" for m, c in sorted(conversions.items()))


@dataclass(frozen=True, slots=True)
class ContractValue:
    """The total contract value and the lines it is made of, in the contract's currency."""

    compute: Decimal
    om: Decimal
    months: Fraction
    hours: Fraction

    @property
    def total(self) -> Decimal:
        return self.compute + self.om


def fen(value: Fraction | Decimal | int) -> Decimal:
    """Exact half-up rounding to the fen of a non-negative amount (Fraction in, Decimal out)."""
    exact = Fraction(value)
    if exact < 0:
        raise ValueError("amounts here are never negative")
    return Decimal(math.floor(exact * 100 + Fraction(1, 2))).scaleb(-2).quantize(FEN)


def contract_value(
    price: PriceTerms,
    start: date,
    end: date,
    *,
    tz: str = DEFAULT_TZ,
    quantity: BillableQuantity | None = None,
) -> ContractValue:
    """Total contract value over ``start``..``end`` (inclusive dates in ``tz``); rule in the module doc."""
    months = term_length(start, end).months
    hours = term_hours(start, end, tz)
    if price.pricing is Pricing.monthly_fee:
        compute = Fraction(price.price) * months
    elif price.pricing is Pricing.per_pflops_month:
        if quantity is None or quantity.pflops is None:
            raise ContractInvalid("price per PFLOPS-month needs the billable PFLOPS")
        compute = Fraction(price.price) * Fraction(quantity.pflops) * months
    else:
        if quantity is None or quantity.gpus is None:
            raise ContractInvalid("price per GPU-hour needs the billable GPUs")
        compute = Fraction(price.price) * quantity.gpus * hours
    om = Fraction(price.om_monthly_fee) * months
    return ContractValue(compute=fen(compute), om=fen(om), months=months, hours=hours)


def month_fee(
    price: PriceTerms, period: str, *, tz: str = DEFAULT_TZ, quantity: BillableQuantity | None = None
) -> Decimal:
    """The fee for the whole calendar month ``period`` (``YYYY-MM`` in ``tz``): compute plus O&M, each
    to the fen. For a price per GPU-hour it follows the month's real hours. This is "the month's fee" an
    SLA credit cap refers to; a partly served month is prorated by whoever bills it."""
    year, month = _period(period)
    first = date(year, month, 1)
    last = date(year, month, calendar.monthrange(year, month)[1])
    return contract_value(price, first, last, tz=tz, quantity=quantity).total


def _period(period: str) -> tuple[int, int]:
    try:
        year_text, month_text = period.split("-")
        year, month = int(year_text), int(month_text)
        date(year, month, 1)
    except (ValueError, AttributeError):
        raise ContractInvalid(f"period {period!r} must be a month written YYYY-MM, such as 2026-10") from None
    return year, month


# ------------------------------------------------------------------------------------- all terms


@dataclass(frozen=True, slots=True)
class Terms:
    """Everything needed to judge and value a contract, as plain data."""

    capacity: Capacity
    requirement: AcceleratorRequirement
    placement: Placement
    start: date
    end: date
    price: PriceTerms
    tz: str = DEFAULT_TZ
    currency: str = "CNY"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What follows from a contract's terms: the models that may serve it, the capacity in each one's
    GPUs and nodes, the billable quantity, the UTC bounds and the total value."""

    conversions: Mapping[str, Conversion]
    quantity: BillableQuantity
    starts_at: datetime
    ends_at: datetime
    value: ContractValue

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(self.conversions))


def evaluate(terms: Terms, *, catalog: Catalog | None = None) -> Evaluation:
    """Check the terms together and derive what follows; :class:`ContractInvalid` says what to fix."""
    catalog = catalog if catalog is not None else load_catalog()
    starts_at, ends_at = term_bounds(terms.start, terms.end, terms.tz)
    conversions = compatible_models(terms.requirement, terms.capacity, catalog=catalog)
    quantity = billable_quantity(terms.capacity, conversions, terms.price.pricing)
    value = contract_value(terms.price, terms.start, terms.end, tz=terms.tz, quantity=quantity)
    if value.total >= MAX_VALUE:
        raise ContractInvalid(
            f"the total contract value {value.total:,} {terms.currency} is beyond any real contract; "
            "check the price, its unit and the term"
        )
    return Evaluation(
        conversions=conversions,
        quantity=quantity,
        starts_at=starts_at,
        ends_at=ends_at,
        value=value,
    )


# ------------------------------------------------------------------------------------ SLA policy


@dataclass(frozen=True, slots=True)
class CreditTier:
    """Credit ``credit_pct`` % of the month's fee when availability is below ``below`` %."""

    below: Decimal
    credit_pct: Decimal

    def to_dict(self) -> dict[str, str]:
        return {"below": str(self.below), "credit_pct": str(self.credit_pct)}


def _pct(value: object, what: str) -> Decimal:
    if isinstance(value, float | bool):
        raise SlaPolicyInvalid(f"{what} must be a decimal written as text or Decimal, got {value!r}")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except ArithmeticError:
        raise SlaPolicyInvalid(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite() or not 0 <= number <= 100:
        raise SlaPolicyInvalid(f"{what} must be a percentage between 0 and 100, got {value}")
    return number


def validate_sla_policy(
    target_pct: Decimal, tiers: Iterable[CreditTier | Mapping[str, Any]], cap_pct: Decimal
) -> tuple[CreditTier, ...]:
    """The credit tiers, checked: each threshold and credit in 0..100, thresholds strictly falling and
    credits strictly rising (lower availability, larger credit), no threshold above the target (that
    tier would credit a month that met the SLA)."""
    target = _pct(target_pct, "the availability target")
    _pct(cap_pct, "the credit cap")
    checked: list[CreditTier] = []
    for i, raw in enumerate(tiers, start=1):
        if isinstance(raw, CreditTier):
            below, credit = raw.below, raw.credit_pct
        elif isinstance(raw, Mapping) and set(raw) == {"below", "credit_pct"}:
            below, credit = raw["below"], raw["credit_pct"]
        else:
            raise SlaPolicyInvalid(
                f'credit tier {i} must look like {{"below": "99.9", "credit_pct": "10"}}, got {raw!r}'
            )
        tier = CreditTier(_pct(below, f"tier {i} below"), _pct(credit, f"tier {i} credit_pct"))
        if tier.below > target:
            raise SlaPolicyInvalid(
                f"tier {i} starts below {tier.below}%, above the availability target {target}%; "
                "a month that meets the target must earn no credit"
            )
        if checked:
            previous = checked[-1]
            if tier.below >= previous.below:
                raise SlaPolicyInvalid(
                    f"tier {i} (below {tier.below}%) must have a lower threshold than tier {i - 1} "
                    f"(below {previous.below}%); list tiers from the highest threshold down"
                )
            if tier.credit_pct <= previous.credit_pct:
                raise SlaPolicyInvalid(
                    f"tier {i} credits {tier.credit_pct}%, not more than tier {i - 1} "
                    f"({previous.credit_pct}%); a lower availability must earn a larger credit"
                )
        checked.append(tier)
    return tuple(checked)


def credit_pct_for(availability_pct: Decimal, tiers: Sequence[CreditTier]) -> Decimal:
    """The credit % a month earns: the largest credit among tiers whose threshold it falls below."""
    earned = [t.credit_pct for t in tiers if availability_pct < t.below]
    return max(earned, default=Decimal("0"))


# --------------------------------------------------------------------------------- buyer tax id

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code (统一社会信用代码), GB 32100-2015:
    ``31 − (Σ value(cᵢ) · 3ⁱ mod 31) mod 31``, as a character of :data:`USCC_CHARS`."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def validate_tax_id(value: str) -> str:
    """A Chinese buyer's taxpayer id as the fapiao prints it: the 18-character unified social credit code
    (check character verified), or an older 15- or 20-character taxpayer registration number. Spaces are
    dropped and letters upper-cased; anything else is refused with what is wrong."""
    code = "".join(value.split()).upper()
    if len(code) == 18:
        if bad := sorted({c for c in code if c not in USCC_CHARS}):
            raise ValueError(f"a unified social credit code has no {', '.join(bad)} (GB 32100-2015)")
        if code[17] != (expected := uscc_check_char(code[:17])):
            raise ValueError(
                f"{code} fails its check character: the 18th should be {expected}; check for a typo"
            )
        return code
    if len(code) in (15, 20) and code.isascii() and code.isalnum():
        return code
    raise ValueError(
        f"a taxpayer id has 18 characters (统一社会信用代码), or 15 or 20 for an older registration; "
        f"{code!r} has {len(code)}"
    )


__all__ = [
    "DEFAULT_TZ",
    "TRANSITIONS",
    "AcceleratorRequirement",
    "BillableQuantity",
    "Capacity",
    "CapacityUnit",
    "ContractInvalid",
    "ContractStatus",
    "ContractValue",
    "CreditTier",
    "Evaluation",
    "IllegalTransition",
    "Placement",
    "PriceTerms",
    "Pricing",
    "SlaPolicyInvalid",
    "TermLength",
    "Terms",
    "add_months",
    "billable_quantity",
    "check_transition",
    "compatible_models",
    "contract_value",
    "convert_capacity",
    "credit_pct_for",
    "evaluate",
    "fen",
    "meets_spec",
    "month_fee",
    "term_bounds",
    "term_hours",
    "term_length",
    "uscc_check_char",
    "validate_sla_policy",
    "validate_tax_id",
]
