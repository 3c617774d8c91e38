"""The deterministic projection: one month-by-month P&L, cash flow and balance of cash, vectorised over
months with numpy (floats: this is a projection, not a settled amount).

With ``w_c`` the win probability of contract ``c`` (1 when signed), ``d`` the delivered share of the
contracted GPUs (``min(1, capacity / demand)``), ``o_m`` the occupancy and ``p_m`` the market price::

    revenue      = Σ_c fee_c × w_c × d  +  Σ_a free_a × o_m × p_a,m × (1 − u_a)      (net of VAT)
    free_a       = max(0, capacity_a − Σ_c GPUs_c × w_c)                             uncontracted GPUs
    SLA credits  = Σ_c fee_c × w_c × d × E[credit share]
    power        = kW × hours × PUE × price/kWh × (idle + (1 − idle) × busy share)
    EBITDA       = revenue − credits − (rack + power + O&M + insurance)
    EBT          = EBITDA − depreciation − interest − financing fees
    tax          = rate × (K_m − K_{m−1}),  K_m = max(0, max_{s≤m} Σ_{i≤s} EBT_i)  (losses carried forward)
    VAT paid     = P_m − P_{m−1},  P_m = max(0, max_{s≤m} Σ_{i≤s} (output − input VAT))  (credit carried)
    CFADS        = receipts − opex − tax − VAT paid         (receipts = net revenue × (1 + VAT))
    pre-equity   = CFADS − capex + drawdowns − fees − deposits + refunds − debt service − options
    equity in    = I_m − I_{m−1},  I_m = max(0, max_{s≤m} (min_cash − S_s)),  S = Σ pre-equity
    cash_m       = S_m + I_m                                 (owners top cash up to min_cash)
    DSCR_m       = Σ CFADS / Σ debt service over the trailing ``dscr_months`` (12) months, tested in
                   months with debt service from the first month any capacity serves

At the horizon the fleet is valued at its residual market value ``RV`` and the gain over book value is
taxed: ``terminal = RV − t × (RV − NBV)``. The equity's flows are the free cash flow to equity (the
pre-equity line: negative when owners must put money in, positive when they could take it out) plus the
terminal value less the financing still owed; so with no debt the equity IRR equals the project IRR.
The project (unlevered) view uses the same lines with tax on EBIT, all equipment VAT deducted at
purchase, and no financing. NPV discounts month ``m`` by ``(1 + r)^(−(m+1)/12)``; IRRs are
solved by the finance core (monthly, then ``(1 + i)^12 − 1``) and are ``None`` with a reason when no
rate exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from computelease.economics.plan import Plan, prepare
from computelease.economics.scenario import Scenario

# The order the workbook and ``--json --lines`` show them in.
LINES = (
    "revenue_contracts",
    "revenue_market",
    "sla_credits",
    "revenue",
    "rack",
    "power",
    "om",
    "insurance",
    "opex",
    "ebitda",
    "depreciation",
    "interest",
    "financing_fees",
    "ebt",
    "tax",
    "net_income",
    "receipts",
    "vat_paid",
    "cfads",
    "capex",
    "drawdown",
    "fees",
    "deposits",
    "refunds",
    "debt_service",
    "purchase_options",
    "equity_in",
    "net_cash_flow",
    "cash",
    "outstanding",
    "dscr",
    "occupancy",
    "project_cash_flow",
    "equity_cash_flow",
)


@dataclass(frozen=True, slots=True)
class Rate:
    """An annual effective rate, or ``None`` with the reason there is none."""

    value: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "note": self.note}


@dataclass(frozen=True, slots=True)
class Solved:
    """A break-even figure, or ``None`` with the reason there is none."""

    value: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "note": self.note}


@dataclass(frozen=True, slots=True)
class Summary:
    npv: float  # project, unlevered
    equity_npv: float
    project_irr: Rate
    equity_irr: Rate
    payback_month: int | None  # months from the start until cumulative project cash turns non-negative
    payback_date: date | None
    breakeven_occupancy: Solved
    breakeven_price: Solved  # per GPU-hour, in the scenario's price basis (VAT included when prices are)
    peak_funding_need: float
    equity_needed: float
    financing_cost: Decimal  # interest, fees and purchase options over each schedule's whole term
    min_dscr: float | None
    min_cash: float
    end_cash: float
    residual_value: float
    revenue: float
    ebitda: float
    net_income: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "npv": round(self.npv, 2),
            "equity_npv": round(self.equity_npv, 2),
            "project_irr": self.project_irr.to_dict(),
            "equity_irr": self.equity_irr.to_dict(),
            "payback_month": self.payback_month,
            "payback_date": self.payback_date.isoformat() if self.payback_date else None,
            "breakeven_occupancy": self.breakeven_occupancy.to_dict(),
            "breakeven_price_per_gpu_hour": self.breakeven_price.to_dict(),
            "peak_funding_need": round(self.peak_funding_need, 2),
            "equity_needed": round(self.equity_needed, 2),
            "financing_cost": str(self.financing_cost),
            "min_dscr": None if self.min_dscr is None else round(self.min_dscr, 4),
            "min_cash": round(self.min_cash, 2),
            "end_cash": round(self.end_cash, 2),
            "residual_value": round(self.residual_value, 2),
            "revenue": round(self.revenue, 2),
            "ebitda": round(self.ebitda, 2),
            "net_income": round(self.net_income, 2),
        }


@dataclass(frozen=True, eq=False)
class Projection:
    plan: Plan
    lines: dict[str, np.ndarray]
    summary: Summary

    @property
    def months(self) -> tuple[date, ...]:
        return self.plan.months


# --------------------------------------------------------------------------------------------- maths


def carried_forward(amounts: np.ndarray) -> np.ndarray:
    """``K_m − K_{m−1}`` with ``K_m = max(0, max_{s≤m} Σ_{i≤s} x_i)``: what is payable each month when
    negative amounts are carried forward against later positive ones (tax losses, VAT credits)."""
    k = np.maximum.accumulate(np.maximum(np.cumsum(amounts), 0.0))
    return np.diff(k, prepend=0.0)


def topped_up(flows: np.ndarray, floor: float) -> np.ndarray:
    """Owners' injections that keep ``cash = Σ flows + Σ injections`` at or above ``floor``:
    ``I_m = max(0, max_{s≤m} (floor − S_s))`` (the running shortfall below the floor)."""
    shortfall = np.maximum.accumulate(np.maximum(floor - np.cumsum(flows), 0.0))
    return np.diff(shortfall, prepend=0.0)


def _lines(plan: Plan, occupancy: np.ndarray | None = None, gpu_hour_price: float | None = None) -> dict:
    occ = plan.occupancy if occupancy is None else occupancy
    T = plan.T
    A = len(plan.accelerators)
    w = plan.win_p[:, None]
    expected_gpus = plan.contract_gpus * w
    demand = np.zeros((A, T))
    np.add.at(demand, plan.contract_acc, expected_gpus)
    cap = plan.cap_gpus
    delivered = np.ones((A, T))
    np.divide(cap, demand, out=delivered, where=demand > cap)
    if gpu_hour_price is None:
        fee = plan.contract_fee
        market_price = plan.market_price
    else:
        fee = plan.contract_gpu_hours * gpu_hour_price
        market_price = plan.market_hours * gpu_hour_price
    earned = fee * w * delivered[plan.contract_acc]
    revenue_contracts = earned.sum(axis=0)
    credits = (earned * plan.credit_expected).sum(axis=0)
    free = np.maximum(cap - demand, 0.0)
    rented = free * occ
    revenue_market = (rented * market_price * (1.0 - plan.unavailable)[:, None]).sum(axis=0)
    busy = np.zeros((A, T))
    np.divide(np.minimum(demand, cap) + rented, cap, out=busy, where=cap > 0)
    power = plan.power_fixed + (plan.power_var * busy).sum(axis=0)
    revenue = revenue_contracts + revenue_market - credits
    opex = plan.rack + power + plan.om + plan.insurance
    ebitda = revenue - opex
    ebit = ebitda - plan.depreciation
    ebt = ebit - plan.interest - plan.fees_expense
    tax = plan.tax_rate * carried_forward(ebt)
    output_vat = revenue * plan.vat_out
    receipts = revenue + output_vat
    vat_paid = carried_forward(output_vat - plan.vat_in_owner - plan.vat_in_rents)
    cfads = receipts - opex - tax - vat_paid
    pre_equity = (
        cfads
        - plan.capex
        + plan.drawdown
        - plan.fees
        - plan.deposits
        + plan.refunds
        - plan.debt_service
        - plan.purchase_options
    )
    equity_in = topped_up(pre_equity, plan.min_cash)
    net = pre_equity + equity_in
    cash = np.cumsum(net)
    dscr = dscr_of(cfads, plan.debt_service, plan.dscr_window)

    # Terminal values, at the end of the last month.
    rv = float(plan.market_value[:, -1].sum())
    gain_tax = plan.tax_rate * (rv - float(plan.book_value[-1]))
    tax_u = plan.tax_rate * carried_forward(ebit)
    vat_u = carried_forward(output_vat - plan.vat_in_equipment)
    project = receipts - opex - tax_u - vat_u - plan.capex
    project_terminal = rv - gain_tax
    # Free cash flow to equity: what the owners put in (negative) or could take out (positive) each month.
    # Retained cash is not added at the end: counting it there as well would count it twice.
    equity = pre_equity
    equity_terminal = rv - gain_tax + plan.terminal_financing
    project_flows = project.copy()
    project_flows[-1] += project_terminal
    equity_flows = equity.copy()
    equity_flows[-1] += equity_terminal
    return {
        "revenue_contracts": revenue_contracts,
        "revenue_market": revenue_market,
        "sla_credits": credits,
        "revenue": revenue,
        "rack": plan.rack,
        "power": power,
        "om": plan.om,
        "insurance": plan.insurance,
        "opex": opex,
        "ebitda": ebitda,
        "depreciation": plan.depreciation,
        "interest": plan.interest,
        "financing_fees": plan.fees_expense,
        "ebt": ebt,
        "tax": tax,
        "net_income": ebt - tax,
        "receipts": receipts,
        "vat_paid": vat_paid,
        "cfads": cfads,
        "capex": plan.capex,
        "drawdown": plan.drawdown,
        "fees": plan.fees,
        "deposits": plan.deposits,
        "refunds": plan.refunds,
        "debt_service": plan.debt_service,
        "purchase_options": plan.purchase_options,
        "equity_in": equity_in,
        "net_cash_flow": net,
        "cash": cash,
        "outstanding": plan.outstanding,
        "dscr": dscr,
        "occupancy": np.broadcast_to(occ, (T,)).astype(float),
        "project_cash_flow": project,
        "equity_cash_flow": equity,
        "_project_flows": project_flows,
        "_equity_flows": equity_flows,
        "_residual_value": rv,
    }


def trailing(values: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``Σ values[m − window_m + 1 .. m]`` for each month ``m``."""
    total = np.concatenate(([0.0], np.cumsum(values)))
    m = np.arange(len(values))
    return total[m + 1] - total[m + 1 - window]


def dscr_of(cfads: np.ndarray, debt_service: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Trailing CFADS over trailing debt service, in months with debt service once operations run
    (``window > 0``); NaN elsewhere."""
    out = np.full(len(cfads), np.nan)
    tested = (debt_service > 0) & (window > 0)
    out[tested] = trailing(cfads, window)[tested] / trailing(debt_service, window)[tested]
    return out


def npv(flows: np.ndarray, df: np.ndarray) -> float:
    return float(flows @ df)


def irr(flows: np.ndarray) -> Rate:
    """Annual effective IRR of monthly flows (month ``m`` at index ``m + 1``), solved and checked by the
    finance core: ``None`` with its reason where no rate makes the NPV zero."""
    from computelease.finance import core

    flows_in = [
        core.CashFlow(date(2000, 1, 1), Decimal(f"{amount:.2f}"), "flow", m + 1)
        for m, amount in enumerate(flows)
        if round(amount, 2)
    ]
    if not flows_in:
        return Rate(None, "no rate: there are no cash flows")
    found = core.periodic_irr(flows_in, 12)
    if found.rate is None:
        return Rate(None, found.note)
    monthly = float(found.rate) / 12.0
    return Rate((1.0 + monthly) ** 12 - 1.0, found.note)


def _bisect(f: Any, lo: float, hi: float, *, tol: float, iterations: int = 200) -> float:
    f_lo = f(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


def _project_npv(plan: Plan, **override: Any) -> float:
    return npv(_lines(plan, **override)["_project_flows"], plan.df)


def breakeven_occupancy(plan: Plan) -> Solved:
    """The flat occupancy of uncontracted capacity at which the project NPV is zero (bisection)."""
    if not plan.market_price.any():
        return Solved(None, "no uncontracted capacity is priced, so occupancy does not move the NPV")

    def f(level: float) -> float:
        return _project_npv(plan, occupancy=np.full(plan.T, level))

    low, high = f(0.0), f(1.0)
    if low >= 0:
        return Solved(0.0, "the NPV is not negative even with no uncontracted capacity rented")
    if high < 0:
        return Solved(None, f"the NPV stays negative even at 100% occupancy ({high:,.0f})")
    return Solved(_bisect(f, 0.0, 1.0, tol=1e-7))


def breakeven_price(plan: Plan) -> Solved:
    """The flat price per GPU-hour, charged for every GPU-hour sold (contracted and market), at which the
    project NPV is zero. Quoted on the scenario's price basis (VAT-inclusive when its prices are)."""
    if not (plan.contract_gpu_hours.any() or plan.market_price.any() or plan.occupancy.any()):
        return Solved(None, "no GPU-hours are sold")
    gross = 1.0 + plan.vat_out if plan.scenario.accounting.vat.prices_include_vat else 1.0

    def f(price: float) -> float:
        return _project_npv(plan, gpu_hour_price=price / gross)

    if f(0.0) >= 0:
        return Solved(0.0, "the NPV is not negative even at a price of zero")
    hi = 1.0
    while f(hi) < 0:
        hi *= 2.0
        if hi > 1e9:
            return Solved(None, "no price makes the NPV positive (nothing is sold, or costs grow with price)")
    return Solved(_bisect(f, 0.0, hi, tol=1e-6 * hi))


def project(plan: Plan, *, solve: bool = True) -> Projection:
    """The projection of a prepared plan. ``solve=False`` skips the break-even searches (compare, tests)."""
    lines = _lines(plan)
    project_flows = lines.pop("_project_flows")
    equity_flows = lines.pop("_equity_flows")
    rv = lines.pop("_residual_value")
    cumulative = np.cumsum(lines["project_cash_flow"])
    payback = None
    negative = np.flatnonzero(cumulative < 0)
    if negative.size and negative[-1] + 1 < plan.T:
        payback = int(negative[-1]) + 1
    elif not negative.size and plan.T:
        payback = 0
    dscr = lines["dscr"]
    financing_cost = sum(
        (
            t.schedule.totals.interest + t.schedule.terms.fee + t.schedule.terms.purchase_option
            for t in plan.tranches
        ),
        Decimal(0),
    )
    summary = Summary(
        npv=npv(project_flows, plan.df),
        equity_npv=npv(equity_flows, plan.df),
        project_irr=irr(project_flows),
        equity_irr=irr(equity_flows),
        payback_month=None if payback is None else payback + 1,
        payback_date=None if payback is None else plan.months[payback],
        breakeven_occupancy=breakeven_occupancy(plan) if solve else Solved(None, "not solved"),
        breakeven_price=breakeven_price(plan) if solve else Solved(None, "not solved"),
        peak_funding_need=float(np.max(np.cumsum(lines["equity_in"]) + plan.outstanding, initial=0.0)),
        equity_needed=float(lines["equity_in"].sum()),
        financing_cost=financing_cost,
        min_dscr=None if np.isnan(dscr).all() else float(np.nanmin(dscr)),
        min_cash=float(lines["cash"].min()) + 0.0,
        end_cash=float(lines["cash"][-1]),
        residual_value=rv,
        revenue=float(lines["revenue"].sum()),
        ebitda=float(lines["ebitda"].sum()),
        net_income=float(lines["net_income"].sum()),
    )
    lines["project_flows_with_terminal"] = project_flows
    lines["equity_flows_with_terminal"] = equity_flows
    return Projection(plan, lines, summary)


def run(scenario: Scenario, *, catalog: Any = None, solve: bool = True) -> Projection:
    """Prepare and project ``scenario``."""
    return project(prepare(scenario, catalog=catalog), solve=solve)
