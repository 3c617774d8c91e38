"""Billing rules, pure: invoice lines of a contract's month, VAT, adjustments, payments, ageing, ledger.

Rules, in one place:

* **Service window.** A contract is billed for the part of the month it serves: ``[start, end)`` cut to
  the calendar month in the contract's time zone, ``end`` being the earlier of its term's end and its
  termination. The fixed fee, the PFLOPS-month fee and the O&M fee are prorated by that fraction of the
  month's hours (capacity × time); a price per GPU-hour is charged on the hours served.
* **On-demand usage.** Allocated GPU-hours beyond the contracted GPUs over the window are charged at the
  contract's on-demand rate per GPU-hour; without a rate they are not charged.
* **SLA credit.** The credit the SLA module computed for the month, as a negative line, never more than
  the month's compute and O&M amounts; its evidence (availability, tier, incidents) rides on the line.
* **Prices and VAT.** Chinese contracts quote prices with VAT included (含税价), the default; a line's
  amount is then its gross and ``tax = gross × r / (1 + r)``; otherwise the amount is net and
  ``tax = net × r``. Each line is rounded to the fen on its own (half-up), and the invoice's totals are
  the sums of its lines, so they always agree.
* **Adjustments** (Kill Bill's rule): a month is recomputed from its sources and compared, line kind by
  line kind, with what finalized documents already billed; only the difference is emitted, the negative
  part as a credit note, the positive part as a supplementary invoice, both referring to the original.
* **Payments** go to open invoices oldest due date first (or as the payer says); what is left is kept
  as an advance (deferred revenue) and applied to the next invoices.
* **Ledger.** Every document posts balanced double entries; the trial balance sums to zero per currency.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from computelease.contracts.core import Pricing
from computelease.errors import Unprocessable
from computelease.money import CONTEXT, FEN
from computelease.sla.core import month_bounds, parse_period, zone

ZERO = Decimal("0.00")


class BillingInvalid(Unprocessable):
    title = "Invalid billing input"


class LineKind(StrEnum):
    compute = "compute"  # the compute service fee
    om = "om"  # operation and maintenance fee
    usage = "usage"  # on-demand GPU-hours beyond the contract
    sla_credit = "sla_credit"  # negative: the month's SLA credit
    manual = "manual"  # a credit or charge entered by hand (a manual credit note)


class TaxCategory(StrEnum):
    compute_service = "compute_service"
    om_service = "om_service"
    equipment_lease = "equipment_lease"


class DocKind(StrEnum):
    invoice = "invoice"
    credit_note = "credit_note"


class InvoiceStatus(StrEnum):
    draft = "draft"
    finalized = "finalized"
    partially_paid = "partially_paid"
    paid = "paid"
    overdue = "overdue"  # never stored: a finalized or partly paid invoice past its due date
    void = "void"


# What each line kind is, for the fapiao (项目名称, 单位) and the ledger (revenue account).
CATEGORY_OF = {
    LineKind.compute: TaxCategory.compute_service,
    LineKind.usage: TaxCategory.compute_service,
    LineKind.sla_credit: TaxCategory.compute_service,
    LineKind.om: TaxCategory.om_service,
    LineKind.manual: TaxCategory.compute_service,
}
FAPIAO_ITEM = {
    TaxCategory.compute_service: "*信息技术服务*算力服务费",
    TaxCategory.om_service: "*信息技术服务*运维服务费",
    TaxCategory.equipment_lease: "*经营租赁*设备租赁费",
}


def fen(value: Fraction | Decimal | int) -> Decimal:
    """Half-up to the fen, either sign, exactly (a Fraction never passes through a float)."""
    exact = Fraction(value)
    sign = -1 if exact < 0 else 1
    units = math.floor(abs(exact) * 100 + Fraction(1, 2))
    return (Decimal(sign * units).scaleb(-2)).quantize(FEN)


# ------------------------------------------------------------------------------------------------ VAT


@dataclass(frozen=True, slots=True)
class VatRate:
    category: TaxCategory
    rate: Decimal
    valid_from: date
    valid_until: date | None
    source: str

    def applies(self, category: TaxCategory, on: date) -> bool:
        return (
            self.category is category
            and self.valid_from <= on
            and (self.valid_until is None or on <= self.valid_until)
        )


@dataclass(frozen=True, slots=True)
class VatTable:
    rates: tuple[VatRate, ...]

    def rate(self, category: TaxCategory | str, on: date) -> VatRate:
        category = TaxCategory(category)
        # Later rows win: an operator's row appended to the shipped table takes effect from its date.
        best: VatRate | None = None
        for row in self.rates:
            if row.applies(category, on) and (best is None or row.valid_from >= best.valid_from):
                best = row
        if best is None:
            raise BillingInvalid(
                f"the VAT table has no {category} rate on {on}; add a dated row "
                "(computelease billing vat add --category ... --rate ... --from ...)"
            )
        return best

    def with_rows(self, rows: Iterable[VatRate]) -> VatTable:
        return VatTable((*self.rates, *rows))


def vat_rate(category: str, rate: Decimal | str, valid_from: date, source: str = "") -> VatRate:
    try:
        value = Decimal(str(rate))
    except ArithmeticError:
        raise BillingInvalid(
            f"VAT rate {rate!r} is not a number; write it as a fraction, e.g. 0.06"
        ) from None
    if not value.is_finite() or not Decimal(0) <= value < 1:
        raise BillingInvalid(f"VAT rate {rate} must be a fraction between 0 and 1, e.g. 0.06 for 6%")
    try:
        cat = TaxCategory(category)
    except ValueError:
        known = ", ".join(TaxCategory)
        raise BillingInvalid(f"unknown tax category {category!r}; use one of {known}") from None
    return VatRate(cat, value, valid_from, None, source)


def load_vat_table(path: str | Path | None = None) -> VatTable:
    if path is None:
        text = files("computelease.billing").joinpath("data/vat_rates.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = []
    for n, item in enumerate(tomllib.loads(text).get("rate", []), start=1):
        try:
            row = vat_rate(item["category"], item["rate"], item["from"], str(item.get("source", "")))
        except KeyError as exc:
            raise BillingInvalid(f"row {n} of the VAT table lacks {exc.args[0]!r}") from None
        rows.append(VatRate(row.category, row.rate, row.valid_from, item.get("until"), row.source))
    return VatTable(tuple(rows))


@cache
def shipped_vat_table() -> VatTable:
    return load_vat_table()


# ------------------------------------------------------------------------------------------------ lines


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice line. ``net + tax == gross`` always; a credit has all three negative."""

    kind: LineKind
    category: TaxCategory
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    rate: Decimal
    tax: Decimal
    gross: Decimal
    evidence: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.kind), str(self.category), f"{self.rate.normalize():f}")


def priced(
    kind: LineKind,
    amount: Decimal,
    *,
    rate: Decimal,
    includes_vat: bool,
    description: str,
    quantity: Decimal = Decimal(1),
    unit: str = "",
    unit_price: Decimal | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> Line:
    """A line for ``amount`` as the contract priced it (gross when prices include VAT, else net)."""
    with localcontext(CONTEXT):
        if includes_vat:
            gross = amount
            tax = fen(Fraction(gross) * Fraction(rate) / (1 + Fraction(rate)))
            net = gross - tax
        else:
            net = amount
            tax = fen(Fraction(net) * Fraction(rate))
            gross = net + tax
    return Line(
        kind=kind,
        category=CATEGORY_OF[kind],
        description=description,
        quantity=quantity,
        unit=unit,
        unit_price=amount if unit_price is None else unit_price,
        net=net,
        rate=rate,
        tax=tax,
        gross=gross,
        evidence=evidence,
    )


@dataclass(frozen=True, slots=True)
class BillingTerms:
    """What billing needs of a contract, as plain data. ``end`` is the end of service (term end or
    termination, whichever is first), exclusive; instants in UTC."""

    pricing: Pricing
    price: Decimal
    om_monthly_fee: Decimal
    start: datetime
    end: datetime
    tz: str = "Asia/Shanghai"
    currency: str = "CNY"
    gpus: int | None = None
    pflops: Decimal | None = None
    on_demand_rate: Decimal | None = None
    prices_include_vat: bool = True
    payment_terms_days: int = 30


@dataclass(frozen=True, slots=True)
class SlaCredit:
    """The SLA module's figure for the month, as billing consumes it."""

    amount: Decimal
    availability_pct: Decimal
    target_pct: Decimal
    credit_pct: Decimal
    capped: bool
    incidents: int
    evidence_url: str


def service_fraction(terms: BillingTerms, period: str) -> tuple[Fraction, Fraction]:
    """(hours served in the month, hours in the month), exactly."""
    lo, hi = month_bounds(period, terms.tz)
    start, end = max(lo, terms.start), min(hi, terms.end)
    served = max(end - start, timedelta(0))
    return Fraction(int(served.total_seconds()), 3600), Fraction(int((hi - lo).total_seconds()), 3600)


def issue_date(period: str, tz: str) -> date:
    """Invoices of a month are dated its first day after: the day it can first be closed."""
    _, hi = month_bounds(period, tz)
    return hi.astimezone(zone(tz)).date()


def _num(value: Fraction, places: int = 6) -> Decimal:
    with localcontext(CONTEXT):
        return (
            (Decimal(value.numerator) / Decimal(value.denominator))
            .quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
            .normalize()
        )


def invoice_lines(
    terms: BillingTerms,
    period: str,
    *,
    vat: VatTable,
    allocated_gpu_hours: Decimal | None = None,
    sla: SlaCredit | None = None,
) -> tuple[Line, ...]:
    """The lines a contract owes for ``period`` (see the module docstring); none if it served none of it."""
    parse_period(period)
    served, month = service_fraction(terms, period)
    if served <= 0:
        return ()
    on = issue_date(period, terms.tz)
    share = served / month
    inc = terms.prices_include_vat
    lines: list[Line] = []

    def rate_of(kind: LineKind) -> Decimal:
        return vat.rate(CATEGORY_OF[kind], on).rate

    price = Fraction(terms.price)
    if terms.pricing is Pricing.monthly_fee:
        amount, qty, unit = fen(price * share), share, "月"
        description = "算力服务费 compute service fee"
    elif terms.pricing is Pricing.per_pflops_month:
        if terms.pflops is None:
            raise BillingInvalid("a price per PFLOPS-month needs the contract's billable PFLOPS")
        qty = Fraction(terms.pflops) * share
        amount, unit = fen(price * qty), "PFLOPS·月"
        description = f"算力服务费 {terms.pflops.normalize():f} PFLOPS"
    else:
        if terms.gpus is None:
            raise BillingInvalid("a price per GPU-hour needs the contract's billable GPUs")
        qty = terms.gpus * served
        amount, unit = fen(price * qty), "GPU·时"
        description = f"算力服务费 {terms.gpus} GPUs"
    lines.append(
        priced(
            LineKind.compute,
            amount,
            rate=rate_of(LineKind.compute),
            includes_vat=inc,
            description=description,
            quantity=_num(qty),
            unit=unit,
            unit_price=terms.price,
        )
    )
    if terms.om_monthly_fee:
        lines.append(
            priced(
                LineKind.om,
                fen(Fraction(terms.om_monthly_fee) * share),
                rate=rate_of(LineKind.om),
                includes_vat=inc,
                description="运维服务费 O&M fee",
                quantity=_num(share),
                unit="月",
                unit_price=terms.om_monthly_fee,
            )
        )
    if terms.on_demand_rate and allocated_gpu_hours is not None and terms.gpus is not None:
        beyond = Fraction(allocated_gpu_hours) - terms.gpus * served
        if beyond > 0:
            lines.append(
                priced(
                    LineKind.usage,
                    fen(Fraction(terms.on_demand_rate) * beyond),
                    rate=rate_of(LineKind.usage),
                    includes_vat=inc,
                    description="按需算力 on-demand GPU-hours beyond the contract",
                    quantity=_num(beyond, 4),
                    unit="GPU·时",
                    unit_price=terms.on_demand_rate,
                )
            )
    if sla is not None and sla.amount > 0:
        ceiling = sum((ln.gross if inc else ln.net for ln in lines if ln.kind in CREDITABLE), ZERO)
        credit = min(sla.amount, ceiling)
        line = priced(
            LineKind.sla_credit,
            -credit,
            rate=rate_of(LineKind.sla_credit),
            includes_vat=inc,
            description=(
                f"SLA 赔偿 credit: availability {sla.availability_pct}% < {sla.target_pct}%, "
                f"{sla.credit_pct}% of the month's fee" + (" (capped)" if sla.capped else "")
            ),
            unit="项",
            unit_price=-credit,
            evidence={
                "url": sla.evidence_url,
                "availability_pct": str(sla.availability_pct),
                "target_pct": str(sla.target_pct),
                "credit_pct": str(sla.credit_pct),
                "capped": sla.capped or credit < sla.amount,
                "incidents": sla.incidents,
            },
        )
        # Each line's tax is rounded on its own: on tiny amounts the credit's could exceed the tax it
        # takes back, leaving a negative invoice. It never takes back more than the lines charged.
        tax_ceiling = sum((ln.tax for ln in lines if ln.kind in CREDITABLE), ZERO)
        if -line.tax > tax_ceiling:
            tax = -tax_ceiling
            net, gross = (line.gross - tax, line.gross) if inc else (line.net, line.net + tax)
            line = dataclasses.replace(line, tax=tax, net=net, gross=gross)
        lines.append(line)
    return tuple(lines)


# The lines an SLA credit may take back: the month's service fees, not on-demand usage.
CREDITABLE = (LineKind.compute, LineKind.om)


@dataclass(frozen=True, slots=True)
class Totals:
    net: Decimal = ZERO
    tax: Decimal = ZERO
    gross: Decimal = ZERO


def totals(lines: Iterable[Line]) -> Totals:
    net = tax = gross = ZERO
    for ln in lines:
        net, tax, gross = net + ln.net, tax + ln.tax, gross + ln.gross
    return Totals(net, tax, gross)


def due_date(issued: date, terms_days: int) -> date:
    return issued + timedelta(days=terms_days)


# ------------------------------------------------------------------------------------------ adjustments


@dataclass(frozen=True, slots=True)
class Adjustment:
    """What to emit so that billed equals expected: ``credit`` lines (negative, for a credit note) and
    ``charge`` lines (positive, for a supplementary invoice)."""

    credit: tuple[Line, ...] = ()
    charge: tuple[Line, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.credit and not self.charge


def adjustment(expected: Sequence[Line], billed: Iterable[Line]) -> Adjustment:
    """The difference between the lines a month should have and those already billed, per line kind,
    category and rate. Each component (net, tax, gross) is differenced on its own, so after the
    adjustment the documents sum to exactly the expected amounts, fen for fen."""
    want: dict[tuple[str, str, str], list[Line]] = defaultdict(list)
    have: dict[tuple[str, str, str], list[Line]] = defaultdict(list)
    for ln in expected:
        want[ln.key].append(ln)
    for ln in billed:
        have[ln.key].append(ln)
    credit: list[Line] = []
    charge: list[Line] = []
    for key in sorted(set(want) | set(have)):
        w, h = totals(want.get(key, ())), totals(have.get(key, ()))
        d_net, d_tax, d_gross = w.net - h.net, w.tax - h.tax, w.gross - h.gross
        if not (d_net or d_tax or d_gross):
            continue
        sample = (want.get(key) or have[key])[0]
        line = Line(
            kind=sample.kind,
            category=sample.category,
            description=f"调整 adjustment: {sample.description}",
            quantity=Decimal(1),
            unit="项",
            unit_price=d_gross,
            net=d_net,
            rate=sample.rate,
            tax=d_tax,
            gross=d_gross,
            evidence=(want.get(key) or [sample])[0].evidence,
        )
        (credit if d_gross < 0 or (d_gross == 0 and d_net < 0) else charge).append(line)
    return Adjustment(tuple(credit), tuple(charge))


# ------------------------------------------------------------------------------------------- numbering


def document_number(entity: str, kind: DocKind, year: int, seq: int) -> str:
    """``CL-2026-000123`` for invoices, ``CL-CN-2026-000004`` for credit notes: one gap-free series per
    issuing entity, kind and year."""
    prefix = entity if kind is DocKind.invoice else f"{entity}-CN"
    return f"{prefix}-{year:04d}-{seq:06d}"


# ------------------------------------------------------------------------------------------- payments


@dataclass(frozen=True, slots=True)
class OpenItem:
    invoice_id: int
    due_on: date
    balance: Decimal  # what is still owed, > 0
    number: str = ""


def allocate(
    amount: Decimal, items: Sequence[OpenItem], *, order: Sequence[int] | None = None
) -> tuple[list[tuple[int, Decimal]], Decimal]:
    """Split ``amount`` over open items, oldest due date first, or in ``order`` (invoice ids) when the
    payer says which invoices it pays; returns [(invoice id, applied)] and what is left unapplied."""
    if amount <= 0:
        raise BillingInvalid(f"a payment must be positive, got {amount}")
    by_id = {i.invoice_id: i for i in items}
    if order is not None:
        unknown = [i for i in order if i not in by_id]
        if unknown:
            raise BillingInvalid(
                f"invoice(s) {', '.join(map(str, unknown))} are not open invoices of this customer "
                "in this currency"
            )
        queue = [by_id[i] for i in order]
    else:
        queue = sorted(items, key=lambda i: (i.due_on, i.invoice_id))
    left = amount
    applied: list[tuple[int, Decimal]] = []
    for item in queue:
        if left <= 0:
            break
        part = min(left, item.balance)
        if part > 0:
            applied.append((item.invoice_id, part))
            left -= part
    return applied, left


BUCKETS = ("current", "1-30", "31-60", "61-90", ">90")


def bucket(due_on: date, as_of: date) -> str:
    late = (as_of - due_on).days
    if late <= 0:
        return "current"
    if late <= 30:
        return "1-30"
    if late <= 60:
        return "31-60"
    if late <= 90:
        return "61-90"
    return ">90"


def ageing(items: Iterable[OpenItem], as_of: date) -> dict[str, Decimal]:
    out = dict.fromkeys(BUCKETS, ZERO)
    for item in items:
        out[bucket(item.due_on, as_of)] += item.balance
    return out


def status_of(
    stored: InvoiceStatus | str, gross: Decimal, settled: Decimal, due_on: date | None, as_of: date
) -> InvoiceStatus:
    """The status a reader sees: stored draft/void as is; otherwise from what is settled (paid or
    credited) against the gross, and overdue once past due with something owed."""
    stored = InvoiceStatus(stored)
    if stored in (InvoiceStatus.draft, InvoiceStatus.void):
        return stored
    if gross <= 0 or settled >= gross:
        return InvoiceStatus.paid
    if due_on is not None and as_of > due_on:
        return InvoiceStatus.overdue
    return InvoiceStatus.partially_paid if settled > 0 else InvoiceStatus.finalized


# ---------------------------------------------------------------------------------------------- ledger


class Account(StrEnum):
    receivables = "receivables"  # 应收账款
    cash = "cash"  # 银行存款
    advances = "customer_advances"  # 预收账款: payments not yet applied (deferred revenue)
    vat_payable = "vat_payable"  # 应交税费-应交增值税(销项税额)
    revenue_compute = "revenue:compute"
    revenue_om = "revenue:om"
    revenue_usage = "revenue:usage"
    sla_credits = "revenue:sla_credits"  # contra-revenue
    revenue_other = "revenue:other"


REVENUE_ACCOUNT = {
    LineKind.compute: Account.revenue_compute,
    LineKind.om: Account.revenue_om,
    LineKind.usage: Account.revenue_usage,
    LineKind.sla_credit: Account.sla_credits,
    LineKind.manual: Account.revenue_other,
}


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a journal entry; ``amount`` is positive for a debit, negative for a credit."""

    account: Account
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Journal:
    memo: str
    on: date
    postings: tuple[Posting, ...] = field(default=())

    def __post_init__(self) -> None:
        by_currency: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for p in self.postings:
            by_currency[p.currency] += p.amount
        if any(by_currency.values()):
            raise ValueError(f"unbalanced journal {self.memo}: {dict(by_currency)}")


def document_journal(memo: str, on: date, currency: str, lines: Iterable[Line]) -> Journal:
    """An invoice (or, with negative lines, a credit note): receivables against revenue by kind and
    VAT payable."""
    postings: dict[Account, Decimal] = defaultdict(lambda: ZERO)
    for ln in lines:
        postings[Account.receivables] += ln.gross
        postings[REVENUE_ACCOUNT[ln.kind]] -= ln.net
        postings[Account.vat_payable] -= ln.tax
    return Journal(memo, on, tuple(Posting(a, v, currency) for a, v in postings.items() if v))


def payment_journal(memo: str, on: date, currency: str, amount: Decimal, applied: Decimal) -> Journal:
    """Cash in; what was applied clears receivables, the rest is held as a customer advance."""
    postings = [Posting(Account.cash, amount, currency)]
    if applied:
        postings.append(Posting(Account.receivables, -applied, currency))
    if amount - applied:
        postings.append(Posting(Account.advances, -(amount - applied), currency))
    return Journal(memo, on, tuple(postings))


def advance_journal(memo: str, on: date, currency: str, applied: Decimal) -> Journal:
    """An advance applied to an invoice later: advances down, receivables down."""
    return Journal(
        memo,
        on,
        (Posting(Account.advances, applied, currency), Posting(Account.receivables, -applied, currency)),
    )


def trial_balance(postings: Iterable[tuple[str, str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    """{currency: {account: balance}} from (account, currency, amount) rows; each currency sums to 0."""
    out: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for account, currency, amount in postings:
        out[currency][account] += amount
    return {c: dict(sorted(a.items())) for c, a in sorted(out.items())}
