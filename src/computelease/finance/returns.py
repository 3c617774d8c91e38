"""What a deal really costs the lessee and earns the lessor, beside the nominal rate.

The lessee's cash flows: the amount financed in at commencement, less the upfront fee (手续费) and the
security deposit (保证金); each rent on its date; the balloon with the last rent; the purchase-option
price (留购价) and the deposit's refund at the end of the term, or the deposit set against the last rents.

* ``all_in_irr``: the lessee's all-in cost, the XIRR of those flows (ACT/365, effective annual).
* ``all_in_nominal``: the IRR per period × periods a year, on the same footing as the nominal rate
  (regular leases only; an irregular first period has no whole-period grid).
* ``lessor_yield``: the XIRR of the lessor's side of the same flows after the VAT it remits; for a
  direct lease it also recovers the input VAT on the asset it bought (the principal, VAT-inclusive).

Rates are solved in floating point by pyxirr (the only place floats are used) and kept only if the NPV
at the rate is ~0. When no rate exists, the answer is ``None`` with a note that says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise
from typing import NamedTuple

import pyxirr

from computelease.finance.schedule import ZERO, DepositUse, LeaseKind, Schedule, Timing
from computelease.finance.tax import VatLine, VatTable, default_vat_table
from computelease.money import CONTEXT, FEN

RATE_PLACES = Decimal("1e-10")
# NPV at an accepted rate must be this small a share of the flows' gross size.
NPV_TOLERANCE = 1e-7


class CashFlow(NamedTuple):
    date: date
    amount: Decimal  # + received, − paid, from the side the list is for
    label: str
    index: int  # whole periods from commencement, for the periodic IRR


@dataclass(frozen=True, slots=True)
class Irr:
    """An annual rate, or ``None`` with a ``note`` saying why there is none. A note beside a rate is a
    caveat (e.g. several sign changes, so another rate may also fit)."""

    rate: Decimal | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Returns:
    nominal_rate: Decimal
    all_in_irr: Irr
    all_in_nominal: Irr
    lessor_yield: Irr


def lessee_flows(schedule: Schedule) -> tuple[CashFlow, ...]:
    """The lessee's actual cash flows under ``schedule``, in date order."""
    terms = schedule.terms
    rows = schedule.rows
    start = terms.start
    fee = terms.fee
    deposit = terms.deposit
    end_index = len(rows)
    flows = [CashFlow(start, terms.principal, "financing", 0)]
    if fee:
        flows.append(CashFlow(start, -fee, "fee", 0))
    if deposit:
        flows.append(CashFlow(start, -deposit, "deposit", 0))
    rents = [row.payment for row in rows]
    unused = deposit
    if terms.deposit_use is DepositUse.offset:
        for k in range(len(rents) - 1, -1, -1):
            if not unused:
                break
            used = min(unused, rents[k])
            rents[k] -= used
            unused -= used
    lag = 0 if terms.timing is Timing.arrears else 1
    for row, rent in zip(rows, rents, strict=True):
        if rent or row.payment:
            label = "rent" if rent == row.payment else "rent less deposit"
            flows.append(CashFlow(row.date, -rent, label, row.period - lag))
    if schedule.totals.residual:
        flows.append(CashFlow(rows[-1].date, -schedule.totals.residual, "balloon", rows[-1].period - lag))
    if terms.purchase_option:
        flows.append(CashFlow(schedule.end, -terms.purchase_option, "purchase_option", end_index))
    if unused:
        flows.append(CashFlow(schedule.end, unused, "deposit_refund", end_index))
    return tuple(flows)


def lessor_flows(
    schedule: Schedule,
    vat: Sequence[VatLine] = (),
    *,
    inclusive: bool = True,
    table: VatTable | None = None,
    lessee: Sequence[CashFlow] | None = None,
) -> tuple[CashFlow, ...]:
    """The lessor's side: the lessee's flows reversed, less the VAT remitted on VAT-inclusive amounts.
    For a direct lease the lessor bought the asset, so the input VAT in the principal comes back.
    ``lessee`` passes flows already worked out by :func:`lessee_flows`."""
    mirror = lessee if lessee is not None else lessee_flows(schedule)
    flows = [CashFlow(f.date, -f.amount, f.label, f.index) for f in mirror]
    if not inclusive:
        # VAT charged on top passes straight through to the tax office.
        return tuple(flows)
    for line in vat:
        if line.vat:
            flows.append(CashFlow(line.date, -line.vat, f"output VAT on {line.label}", 0))
    terms = schedule.terms
    if terms.kind is LeaseKind.direct and vat:
        rate = (table or default_vat_table()).rate(LeaseKind.direct, terms.start)
        with localcontext(CONTEXT):
            credit = (terms.principal * rate / (1 + rate)).quantize(FEN, ROUND_HALF_UP)
        flows.append(CashFlow(terms.start, credit, "input VAT on the asset", 0))
    flows.sort(key=lambda f: f.date)
    return tuple(flows)


def _by_date(flows: Sequence[CashFlow]) -> tuple[list[date], list[float]]:
    merged: dict[date, Decimal] = {}
    for flow in flows:
        merged[flow.date] = merged.get(flow.date, ZERO) + flow.amount
    dates = sorted(merged)
    return dates, [float(merged[d]) for d in dates]


def _sign_note(amounts: Sequence[float]) -> tuple[bool, str | None]:
    signs = [a > 0 for a in amounts if a]
    if not signs or all(signs) or not any(signs):
        return False, "no rate: the cash flows never change sign, so no discount rate makes their NPV zero"
    changes = sum(1 for a, b in pairwise(signs) if a != b)
    if changes == 1:
        return True, None
    # A deposit refunded at the end adds a sign change without adding a rate: by Norström's test the
    # rate is still unique if the running total of the flows changes sign exactly once.
    running = 0.0
    totals = []
    for amount in amounts:
        running += amount
        if running:
            totals.append(running > 0)
    if (
        abs(running) > 1e-9 * sum(abs(a) for a in amounts)
        and sum(1 for a, b in pairwise(totals) if a != b) == 1
    ):
        return True, None
    return True, f"the cash flows change sign {changes} times, so more than one rate may fit"


def _accept(rate: float | None, npv: float, amounts: Sequence[float], note: str | None) -> Irr:
    scale = sum(abs(a) for a in amounts)
    if abs(npv) > NPV_TOLERANCE * scale:
        return Irr(None, f"no rate: the solver stopped at {rate:.6%} where the NPV is {npv:,.2f}, not 0")
    return Irr(Decimal(repr(rate)).quantize(RATE_PLACES, ROUND_HALF_UP), note)


def xirr(flows: Sequence[CashFlow]) -> Irr:
    """The effective annual rate at which the dated flows' NPV is zero (XIRR, ACT/365)."""
    dates, amounts = _by_date(flows)
    ok, note = _sign_note(amounts)
    if not ok:
        return Irr(None, note)
    try:
        rate = pyxirr.xirr(dates, amounts, silent=True)
    except (pyxirr.InvalidPaymentsError, ValueError) as exc:
        return Irr(None, f"no rate: {exc}")
    if rate is None or not math.isfinite(rate):
        return Irr(None, "no rate: the solver found no rate at which the cash flows' NPV is zero")
    return _accept(rate, pyxirr.xnpv(rate, dates, amounts), amounts, note)


def periodic_irr(flows: Sequence[CashFlow], periods_per_year: int) -> Irr:
    """The IRR per period of flows on a whole-period grid, times periods a year (a nominal annual rate)."""
    size = max(flow.index for flow in flows) + 1
    grid = [ZERO] * size
    for flow in flows:
        grid[flow.index] += flow.amount
    amounts = [float(a) for a in grid]
    ok, note = _sign_note(amounts)
    if not ok:
        return Irr(None, note)
    try:
        rate = pyxirr.irr(amounts, silent=True)
    except (pyxirr.InvalidPaymentsError, ValueError) as exc:
        return Irr(None, f"no rate: {exc}")
    if rate is None or not math.isfinite(rate):
        return Irr(None, "no rate: the solver found no rate at which the cash flows' NPV is zero")
    accepted = _accept(rate, pyxirr.npv(rate, amounts), amounts, note)
    if accepted.rate is None:
        return accepted
    return Irr((accepted.rate * periods_per_year).quantize(RATE_PLACES, ROUND_HALF_UP), note)


def returns_of(
    schedule: Schedule,
    vat: Sequence[VatLine] = (),
    *,
    inclusive: bool = True,
    table: VatTable | None = None,
    flows: Sequence[CashFlow] | None = None,
) -> Returns:
    """Nominal rate, lessee's all-in cost and lessor's yield; ``flows`` are the lessee's, if known."""
    terms = schedule.terms
    flows = flows if flows is not None else lessee_flows(schedule)
    if terms.first_period_end is None:
        nominal = periodic_irr(flows, terms.periods_per_year)
    else:
        nominal = Irr(None, "no periodic rate: the first period is irregular; use the all-in XIRR")
    return Returns(
        nominal_rate=terms.annual_rate,
        all_in_irr=xirr(flows),
        all_in_nominal=nominal,
        lessor_yield=xirr(lessor_flows(schedule, vat, inclusive=inclusive, table=table, lessee=flows)),
    )
