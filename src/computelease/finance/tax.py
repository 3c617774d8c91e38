"""VAT (增值税) on a lease's payments, from a dated table that callers can replace or extend.

Direct lease (直租): a leasing service, VAT on the whole rent. Sale-and-leaseback (售后回租): a loan
service, VAT on what is collected other than principal, i.e. the interest, the fee and the purchase
option. Interest capitalised during grace becomes taxable when a later rent pays it back (repayments
count against capitalised interest before the original principal).

Amounts in a schedule are VAT-inclusive by default (租金含税, as Chinese lessors quote):
``vat = taxable × r / (1 + r)``. With ``inclusive=False`` VAT is charged on top: ``vat = taxable × r``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple

from computelease.finance.schedule import ZERO, FinanceTermError, LeaseKind, Schedule, _decimal, _enum
from computelease.money import CONTEXT, FEN


@dataclass(frozen=True, slots=True)
class VatRate:
    kind: LeaseKind
    rate: Decimal
    valid_from: date
    valid_until: date | None
    source: str

    def applies(self, kind: LeaseKind, on: date) -> bool:
        return (
            self.kind is kind
            and self.valid_from <= on
            and (self.valid_until is None or on <= self.valid_until)
        )


@dataclass(frozen=True, slots=True)
class VatTable:
    rates: tuple[VatRate, ...]

    def rate(self, kind: LeaseKind | str, on: date) -> Decimal:
        if not isinstance(kind, LeaseKind):
            kind = _enum(LeaseKind, "kind", kind)
        # Later rows win, so a caller's override appended to the shipped table takes effect.
        for row in reversed(self.rates):
            if row.applies(kind, on):
                return row.rate
        raise FinanceTermError(
            "vat_rate", f"the VAT table has no rate for a {kind} lease on {on}; add a dated row for it"
        )

    def with_rate(
        self, kind: LeaseKind | str, rate: Decimal | str, valid_from: date, *, source: str = "caller override"
    ) -> VatTable:
        """A copy where ``rate`` applies to ``kind`` from ``valid_from`` on."""
        value = _decimal("vat_rate", rate)
        if not ZERO <= value < 1:
            raise FinanceTermError(
                "vat_rate", f"{value} is not a fraction between 0 and 1, e.g. 0.13 for 13%"
            )
        row = VatRate(_enum(LeaseKind, "kind", kind), value, valid_from, None, source)
        return VatTable((*self.rates, row))


def load_vat_table(path: str | Path | None = None) -> VatTable:
    """Read a VAT table in the shipped TOML layout (``[[rate]]`` rows with kind, rate, from, until,
    source); without ``path``, the table shipped in ``computelease/finance/data/vat_rates.toml``."""
    if path is None:
        text = files("computelease.finance").joinpath("data/vat_rates.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    rows = []
    for number, item in enumerate(data.get("rate", []), start=1):
        try:
            rows.append(
                VatRate(
                    kind=_enum(LeaseKind, "kind", item["kind"]),
                    rate=_decimal("rate", item["rate"]),
                    valid_from=item["from"],
                    valid_until=item.get("until"),
                    source=str(item.get("source", "")),
                )
            )
        except KeyError as exc:
            raise FinanceTermError(
                "vat_rate", f"row {number} of the VAT table lacks {exc.args[0]!r}"
            ) from None
    return VatTable(tuple(rows))


@cache
def default_vat_table() -> VatTable:
    return load_vat_table()


class VatLine(NamedTuple):
    """VAT on one amount the lessor collects. ``period`` is the rent's period, None for other lines."""

    date: date
    label: str  # rent, balloon, purchase_option, fee
    period: int | None
    amount: Decimal
    taxable: Decimal
    rate: Decimal
    vat: Decimal


def vat_lines(
    schedule: Schedule, *, table: VatTable | None = None, inclusive: bool = True
) -> tuple[VatLine, ...]:
    """VAT on the fee, each rent, the balloon and the purchase option, at the rate in force on its date."""
    table = table or default_vat_table()
    terms = schedule.terms
    kind = terms.kind
    on_interest_only = kind is LeaseKind.sale_leaseback
    lines: list[VatLine] = []
    capitalised = ZERO

    def line(when: date, label: str, period: int | None, amount: Decimal, taxable: Decimal) -> None:
        rate = table.rate(kind, when)
        base = taxable * rate / (1 + rate) if inclusive else taxable * rate
        lines.append(VatLine(when, label, period, amount, taxable, rate, base.quantize(FEN, ROUND_HALF_UP)))

    with localcontext(CONTEXT):
        if terms.fee:
            line(terms.start, "fee", None, terms.fee, terms.fee)
        for row in schedule.rows:
            if not on_interest_only:
                line(row.date, "rent", row.period, row.payment, row.payment)
                continue
            repaid = max(row.principal, ZERO)
            if row.principal < 0:
                capitalised -= row.principal
            repaid_interest = min(capitalised, repaid)
            capitalised -= repaid_interest
            # Interest collected in cash: nothing on a capitalised row, the row's interest otherwise.
            line(row.date, "rent", row.period, row.payment, row.payment - repaid + repaid_interest)
        residual = schedule.totals.residual
        if residual:
            taxable = min(capitalised, residual) if on_interest_only else residual
            line(schedule.rows[-1].date, "balloon", None, residual, taxable)
        if terms.purchase_option:
            line(schedule.end, "purchase_option", None, terms.purchase_option, terms.purchase_option)
    return tuple(lines)
