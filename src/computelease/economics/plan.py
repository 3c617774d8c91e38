"""A scenario laid out on its month grid: every input that does not vary between Monte Carlo paths.

:func:`prepare` resolves the catalog (GPUs per node, power, reference prices), converts contracted PFLOPS
to GPUs, builds each loan and lease schedule with the finance core (exact, in ``Decimal``) and each lot's
depreciation, then turns them into float arrays indexed by month. The deterministic projection and the
Monte Carlo engine both start from the same :class:`Plan`, so they model the same business.

Conventions:

* Month ``m`` runs from ``start + m months``; its flows are dated at its end, so they are discounted
  ``m + 1`` months: ``DF_m = (1 + r)^(−(m+1)/12)`` with ``r`` the annual discount rate.
* Prices quoted VAT-inclusive (``accounting.vat.prices_include_vat``) are split:
  ``net = gross / (1 + v)``. Revenue and costs in the P&L are net; cash receipts are gross.
* A lot is paid in its purchase month, serves from ``in_service_months`` later, and (Chinese practice,
  as in the finance core) is depreciated from the month after it enters service.
* Failures: ``N ~ Poisson(λ)`` events a month with ``λ = rate/1000 × GPUs × days``; each takes a node
  (or one GPU, ``failure_scope: gpu``) down for ``repair_hours``. The SLA availability of a contract
  is ``A = 1 − N × repair × g / (GPUs × hours)`` and its credit the largest tier credit with
  ``A < below``. The expected credit is ``Σ_j (c_j − c_{j−1}) × P(N ≥ k_j)`` with
  ``k_j = ⌊(1 − below_j) × GPUs × hours / (repair × g)⌋ + 1`` (tiers mildest first).
* Occupancy of uncontracted capacity follows ``y_m = y_{m−1} + κ (μ − y_{m−1})`` on the logit scale,
  ``μ = logit(occupancy)``, ``y_0 = logit(occupancy_start)``; the market price is
  ``p_m = p_0 (1 + drift)^(m/12) Π_{launches ≤ m} (1 + step)``.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from computelease.economics.scenario import (
    Financing,
    Scenario,
    ScenarioInvalid,
    catalog_price,
    lease_terms,
    month_index,
    month_start,
)
from computelease.money import FEN

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Lot:
    index: int
    sku: str
    accelerator: int  # index into Plan.accelerators
    gpus_per_node: int
    nodes: int
    purchase_month: int
    service_month: int
    gross: Decimal  # what is paid, VAT included
    cost: Decimal  # VAT-exclusive, capitalised and depreciated
    vat: Decimal
    kw: float


@dataclass(frozen=True, slots=True)
class Tranche:
    """One draw of an instrument: a finance-core schedule and the lots it finances."""

    instrument: str
    start: date
    month: int
    principal: Decimal
    lots: tuple[int, ...]
    quote: Any  # computelease.finance.core.Quote

    @property
    def schedule(self) -> Any:
        return self.quote.schedule


@dataclass(frozen=True, eq=False)
class Plan:
    scenario: Scenario
    instruments: tuple[str, ...]
    months: tuple[date, ...]
    hours: np.ndarray  # (T,)
    days: np.ndarray  # (T,)
    df: np.ndarray  # (T,) discount factors
    accelerators: tuple[str, ...]
    lots: tuple[Lot, ...]
    cap_gpus: np.ndarray  # (A, T) GPUs in service
    nodes_in_service: np.ndarray  # (T,)
    # contracts
    contract_names: tuple[str, ...]
    contract_acc: np.ndarray  # (C,) accelerator index
    contract_gpus: np.ndarray  # (C, T) while active
    contract_fee: np.ndarray  # (C, T) net revenue if fully delivered
    contract_gpu_hours: np.ndarray  # (C, T)
    win_p: np.ndarray  # (C,)
    credit_expected: np.ndarray  # (C, T) expected share of the fee credited
    credit_steps: np.ndarray  # (C, J) c_j − c_{j−1}
    credit_cdf: np.ndarray  # (C, J, T) P(N ≤ k_j − 1): a uniform draw above it is a credit
    # market
    market_price: np.ndarray  # (A, T) net revenue per GPU-month rented, at the deterministic price
    market_hours: np.ndarray  # (A, T) GPU-hours per GPU-month (for a price per GPU-hour)
    unavailable: np.ndarray  # (A,) expected share of time a GPU is down
    launch_months: tuple[tuple[int, ...], ...]  # per accelerator
    occupancy: np.ndarray  # (T,) deterministic occupancy of uncontracted capacity
    occ_mu: float
    occ_y0: float
    occ_kappa: float
    # costs
    rack: np.ndarray
    om: np.ndarray
    insurance: np.ndarray
    power_fixed: np.ndarray  # (T,) drawn whether rented or not
    power_var: np.ndarray  # (A, T) drawn at full use, scaled by the busy share
    depreciation: np.ndarray
    book_value: np.ndarray  # (T,) end of month
    market_value: np.ndarray  # (A, T) deterministic market value of the fleet held, end of month
    capex: np.ndarray  # (T,) gross
    vat_in_equipment: np.ndarray  # (T,) all equipment input VAT, at purchase (the unlevered view)
    vat_in_owner: np.ndarray  # (T,) equipment VAT the owner can deduct at purchase
    vat_in_rents: np.ndarray  # (T,) VAT on direct-lease rents and fees, deductible by the lessee
    # financing, levered
    drawdown: np.ndarray
    fees: np.ndarray
    fees_expense: np.ndarray
    deposits: np.ndarray
    refunds: np.ndarray
    debt_service: np.ndarray
    purchase_options: np.ndarray
    interest: np.ndarray  # P&L, VAT-exclusive where the lessee deducts the VAT
    outstanding: np.ndarray  # (T,) principal owed at month end
    terminal_financing: float  # settling the financing at the horizon: − principal − options + deposits
    dscr_window: np.ndarray  # (T,) trailing months of the DSCR test; 0 before operations start
    tranches: tuple[Tranche, ...]
    lease_names: tuple[str, ...]
    lease_principal: np.ndarray  # (L,)
    lease_outstanding: np.ndarray  # (L, T)
    lease_collateral: np.ndarray  # (L, A, T) deterministic market value of the leased lots
    # rates
    tax_rate: float
    vat_out: float
    min_cash: float
    discount_rate: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def T(self) -> int:
        return len(self.months)


def _f(value: Decimal) -> float:
    return float(value)


def _poisson_cdf(k: int, lam: float) -> float:
    """``P(N ≤ k)`` for ``N ~ Poisson(lam)``, summed in log space so large ``lam`` does not underflow."""
    if k < 0:
        return 0.0
    if lam <= 0:
        return 1.0
    if k > lam + 12 * math.sqrt(lam) + 30:
        return 1.0
    i = np.arange(k + 1, dtype=float)
    logs = -lam + i * math.log(lam) - np.array([math.lgamma(x + 1) for x in i])
    return float(min(1.0, np.exp(logs).sum()))


def _curve(points: list[tuple[int, float]], age: np.ndarray) -> np.ndarray:
    """Residual value share at ``age`` months: linear between points, 1 at age 0 unless given, flat after."""
    if not points:
        return np.ones_like(age, dtype=float)
    if points[0][0] > 0:
        points = [(0, 1.0), *points]
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    return np.interp(age, xs, ys)


def prepare(scenario: Scenario, *, catalog: Any = None) -> Plan:
    """Lay ``scenario`` out on its month grid. Raises :class:`ScenarioInvalid` for terms only the finance
    core can judge with the real principal (a balloon above it, say)."""
    from computelease.catalog.core import convert, load_catalog
    from computelease.finance import core

    catalog = catalog if catalog is not None else load_catalog()
    warnings: list[str] = []
    start = scenario.start
    T = scenario.horizon_months
    months = tuple(month_start(start, m) for m in range(T))
    days = np.array([calendar.monthrange(d.year, d.month)[1] for d in months], dtype=float)
    hours = days * 24.0
    r = _f(scenario.discount_rate)
    df = (1.0 + r) ** (-(np.arange(T) + 1.0) / 12.0)
    vat = scenario.accounting.vat
    vat_out = _f(vat.output)
    vat_eq = vat.equipment
    incl = vat.prices_include_vat
    sites = {s.id: s for s in scenario.sites}
    market = scenario.market
    node_scope = market.failure_scope == "node"

    # -- fleet
    accelerators: list[str] = []
    gpn_of: dict[str, int] = {}
    lots: list[Lot] = []
    for i, purchase in enumerate(scenario.fleet):
        sku = catalog.sku(purchase.sku)
        if sku.accelerator_id not in accelerators:
            accelerators.append(sku.accelerator_id)
            gpn_of[sku.accelerator_id] = sku.gpus_per_node
        if purchase.unit_price is None:
            amount, price = catalog_price(sku, scenario)  # type: ignore[misc]
            unit = amount
            warnings.append(
                f"fleet[{i}].unit_price: catalog reference price used ({price.currency} {price.amount:,}, "
                f"confidence {price.confidence}: {price.source})"
            )
        else:
            currency = purchase.currency or scenario.currency
            unit = purchase.unit_price * (scenario.fx[currency] if currency != scenario.currency else 1)
        gross = (unit * purchase.count).quantize(FEN, ROUND_HALF_UP)
        if incl:
            cost = (gross / (1 + vat_eq)).quantize(FEN, ROUND_HALF_UP)
        else:
            cost, gross = gross, (gross * (1 + vat_eq)).quantize(FEN, ROUND_HALF_UP)
        if purchase.kw_per_node is not None:
            kw = _f(purchase.kw_per_node)
        else:
            kw = _f(sku.typical_kw.value)
            if sku.typical_kw.confidence == "weak":
                warnings.append(
                    f"fleet[{i}].kw_per_node: catalog typical power used ({sku.typical_kw.value} kW, "
                    f"confidence {sku.typical_kw.confidence})"
                )
        pm = month_index(start, purchase.date)
        lots.append(
            Lot(
                index=i,
                sku=sku.id,
                accelerator=accelerators.index(sku.accelerator_id),
                gpus_per_node=sku.gpus_per_node,
                nodes=purchase.count,
                purchase_month=pm,
                service_month=pm + purchase.in_service_months,
                gross=gross,
                cost=cost,
                vat=gross - cost,
                kw=kw,
            )
        )
    A = len(accelerators)
    t = np.arange(T)
    cap = np.zeros((A, T))
    nodes_in_service = np.zeros(T)
    rack = np.zeros(T)
    om = np.zeros(T)
    insurance = np.zeros(T)
    power_fixed = np.zeros(T)
    power_var = np.zeros((A, T))
    depreciation = np.zeros(T)
    book = np.zeros(T)
    market_value = np.zeros((A, T))
    lot_value = np.zeros((len(lots), T))
    capex = np.zeros(T)
    vat_in_equipment = np.zeros(T)
    residual_points = [(p.age_months, _f(p.value)) for p in market.residual]
    dep = scenario.accounting.depreciation
    for lot, purchase in zip(lots, scenario.fleet, strict=True):
        site = sites[purchase.site]
        serving = t >= lot.service_month
        held = t >= lot.purchase_month
        cap[lot.accelerator] += serving * lot.nodes * lot.gpus_per_node
        nodes_in_service += serving * lot.nodes
        rack += serving * lot.nodes * _f(site.rack_per_node_month)
        om += serving * lot.nodes * _f(site.om_per_node_month)
        insurance += serving * _f(lot.cost * site.insurance_rate) / 12.0
        full = serving * lot.nodes * lot.kw * hours * _f(site.pue) * _f(site.power_price_kwh)
        idle = _f(site.idle_power_fraction)
        power_fixed += full * idle
        power_var[lot.accelerator] += full * (1.0 - idle)
        capex[lot.purchase_month] += _f(lot.gross)
        vat_in_equipment[lot.purchase_month] += _f(lot.vat)
        salvage = (lot.cost * dep.salvage_rate).quantize(FEN, ROUND_HALF_UP)
        in_service = (
            months[lot.service_month] if lot.service_month < T else month_start(start, lot.service_month)
        )
        if dep.method == "straight_line":
            rows = core.straight_line(lot.cost, salvage, dep.months, in_service=in_service)
        else:
            rows = core.declining_balance(
                lot.cost, salvage, dep.months, factor=dep.factor, in_service=in_service
            )
        charges = np.zeros(T)
        for row in rows:
            m = month_index(start, row.period_end)
            if m >= T:
                break
            charges[m] += _f(row.charge)
        depreciation += charges
        book += held * (_f(lot.cost) - np.cumsum(charges))
        age = (t - lot.purchase_month + 1).astype(float)
        value = held * _f(lot.cost) * _curve(residual_points, age)
        lot_value[lot.index] = value
        market_value[lot.accelerator] += value

    # -- contracts
    C = len(scenario.contracts)
    contract_acc = np.zeros(C, dtype=np.int64)
    contract_gpus = np.zeros((C, T))
    contract_fee = np.zeros((C, T))
    contract_gpu_hours = np.zeros((C, T))
    win_p = np.ones(C)
    J = max((len(c.sla) for c in scenario.contracts), default=0)
    credit_steps = np.zeros((C, J))
    credit_cdf = np.ones((C, J, T))
    credit_expected = np.zeros((C, T))
    rate = _f(market.failures_per_1000_gpu_days) / 1000.0
    repair = _f(market.repair_hours)
    out_div = (1 + vat.output) if incl else Decimal(1)
    for c, contract in enumerate(scenario.contracts):
        cap_spec = contract.capacity
        conv = convert(
            contract.accelerator,
            pflops=cap_spec.pflops,
            gpus=cap_spec.gpus,
            nodes=cap_spec.nodes,
            precision=cap_spec.precision,
            sparse=cap_spec.sparse,
            sku=cap_spec.sku,
            catalog=catalog,
        )
        if conv.figure is not None and conv.figure.confidence == "weak" and cap_spec.pflops is not None:
            warnings.append(f"contracts[{c}].capacity: converted with a weak figure ({conv.figure.source})")
        a = accelerators.index(contract.accelerator)
        contract_acc[c] = a
        m0 = month_index(start, contract.start)
        active = (t >= m0) & (t < m0 + contract.months)
        if m0 + contract.months > T:
            warnings.append(
                f"contracts[{c}]: runs {m0 + contract.months - T} months beyond the horizon; "
                "those are not counted"
            )
        gpus = conv.gpus
        contract_gpus[c] = active * gpus
        contract_gpu_hours[c] = active * gpus * hours
        price = contract.price
        if price.per_gpu_hour is not None:
            contract_fee[c] = active * gpus * hours * _f(price.per_gpu_hour / out_div)
        elif price.per_server_month is not None:
            contract_fee[c] = active * conv.nodes * _f(price.per_server_month / out_div)
        else:
            contract_fee[c] = active * _f(price.total / out_div / contract.months)
        win_p[c] = _f(contract.probability)
        g = (conv.gpus_per_node or 1) if node_scope else 1
        previous = 0.0
        for j, tier in enumerate(contract.sla):
            step = _f(tier.credit) - previous
            previous = _f(tier.credit)
            credit_steps[c, j] = step
            for m in np.flatnonzero(active):
                lam = rate * gpus * days[m]
                if lam <= 0 or repair <= 0:
                    continue
                k = math.floor((1 - _f(tier.below)) * gpus * hours[m] / (repair * g)) + 1
                cdf = _poisson_cdf(k - 1, lam)
                credit_cdf[c, j, m] = cdf
                credit_expected[c, m] += step * (1.0 - cdf)
    demand = np.zeros((A, T))
    for c in range(C):
        demand[contract_acc[c]] += contract_gpus[c] * win_p[c]
    short = np.flatnonzero((demand > cap + _EPS).any(axis=0))
    if short.size:
        warnings.append(
            f"contracts need more GPUs than are in service in {short.size} months "
            f"from {months[short[0]]:%Y-%m}; "
            "the undelivered share earns nothing"
        )

    # -- market
    market_price = np.zeros((A, T))
    market_hours = np.zeros((A, T))
    launch_months: list[tuple[int, ...]] = [() for _ in range(A)]
    prices = {p.accelerator: p for p in market.prices}
    for a, accelerator in enumerate(accelerators):
        market_hours[a] = hours
        spec = prices.get(accelerator)
        if spec is None:
            continue
        shape = (1.0 + _f(spec.annual_drift)) ** (t / 12.0)
        launches = []
        for launch in spec.launches:
            lm = month_index(start, launch.date)
            if lm < T:
                shape = shape * np.where(t >= lm, 1.0 + _f(launch.step), 1.0)
                launches.append(lm)
        launch_months[a] = tuple(launches)
        if spec.per_gpu_hour is not None:
            market_price[a] = _f(spec.per_gpu_hour / out_div) * shape * hours
        else:
            market_price[a] = _f(spec.per_server_month / out_div) / gpn_of[accelerator] * shape
    scope = np.array([gpn_of[a] if node_scope else 1 for a in accelerators], dtype=float)
    unavailable = np.minimum(1.0, rate / 24.0 * repair * scope)

    def logit(p: float) -> float:
        p = min(max(p, _EPS), 1 - _EPS)
        return math.log(p / (1 - p))

    mu = logit(_f(market.occupancy))
    y0 = logit(_f(market.occupancy_start if market.occupancy_start is not None else market.occupancy))
    kappa = _f(market.reversion_per_month)
    ys = np.empty(T)
    y = y0
    for m in range(T):
        if m:
            y = y + kappa * (mu - y)
        ys[m] = y
    occupancy = 1.0 / (1.0 + np.exp(-ys))

    # -- financing
    instruments = scenario.funding.instruments
    direct_table = core.default_vat_table()
    if vat.direct_lease is not None:
        direct_table = direct_table.with_rate("direct", vat.direct_lease, date(1900, 1, 1), source="scenario")
    tranches: list[Tranche] = []
    first_purchase = min(p.date for p in scenario.fleet)
    for name in instruments:
        terms: Financing = getattr(scenario.funding, name)
        draws: list[tuple[date, Decimal, tuple[int, ...]]] = []
        if terms.amount is not None:
            when = terms.date or first_purchase
            covered = tuple(lot.index for lot, p in zip(lots, scenario.fleet, strict=True) if p.date <= when)
            value = sum((lots[i].gross for i in covered), Decimal(0))
            if terms.amount > value:
                raise ScenarioInvalid(
                    [
                        f"funding.{name}.amount: {terms.amount:,} is more than the {value:,} "
                        "paid for the servers "
                        f"bought by {when}"
                    ]
                )
            draws.append((when, terms.amount, covered))
        else:
            for lot, p in zip(lots, scenario.fleet, strict=True):
                when = max(p.date, terms.date) if terms.date else p.date
                if month_index(start, when) < T and terms.share > 0:
                    draws.append((when, lot.gross * terms.share, (lot.index,)))
        for when, principal, covered in draws:
            try:
                lease = lease_terms(terms, name, principal, when)
            except core.FinanceTermError as exc:
                raise ScenarioInvalid([f"funding.{name}.{exc.detail}"]) from None
            table = direct_table if name == "direct_lease" else None
            tranches.append(
                Tranche(
                    name,
                    when,
                    month_index(start, when),
                    lease.principal,
                    covered,
                    core.quote(lease, vat_table=table),
                )
            )

    drawdown = np.zeros(T)
    fees = np.zeros(T)
    fees_expense = np.zeros(T)
    deposits = np.zeros(T)
    refunds = np.zeros(T)
    debt_service = np.zeros(T)
    purchase_options = np.zeros(T)
    interest = np.zeros(T)
    outstanding = np.zeros(T)
    vat_in_rents = np.zeros(T)
    vat_in_owner = vat_in_equipment.copy()
    terminal_financing = 0.0
    lease_names = tuple(name for name in instruments if name != "bank")
    L = len(lease_names)
    lease_principal = np.zeros(L)
    lease_outstanding = np.zeros((L, T))
    lease_collateral = np.zeros((L, A, T))
    horizon_end = scenario.end

    def at(when: date) -> int:
        return month_index(start, when)

    for tranche in tranches:
        schedule = tranche.schedule
        lease = schedule.terms
        direct = tranche.instrument == "direct_lease"
        vat_factor = 1.0
        if direct:
            v = direct_table.rate("direct", lease.start)
            vat_factor = 1.0 / (1.0 + _f(v))
            # The lessor bought the financed share: its input VAT reaches the lessee through the rents.
            for i in tranche.lots:
                share = _f(tranche.principal) / sum(_f(lots[j].gross) for j in tranche.lots)
                vat_in_owner[lots[i].purchase_month] -= _f(lots[i].vat) * share
            for line in tranche.quote.vat:
                m = at(line.date)
                if m < T:
                    vat_in_rents[m] += _f(line.vat)
        for flow in tranche.quote.flows:
            m = at(flow.date)
            if m >= T:
                continue
            amount = _f(flow.amount)
            label = flow.label
            if label == "financing":
                drawdown[m] += amount
            elif label == "fee":
                fees[m] -= amount
                fees_expense[m] -= amount * vat_factor
            elif label == "deposit":
                deposits[m] -= amount
            elif label == "deposit_refund":
                refunds[m] += amount
            elif label in ("rent", "rent less deposit", "balloon"):
                debt_service[m] -= amount
            elif label == "purchase_option":
                purchase_options[m] -= amount
        owed = np.zeros(T)
        m0 = tranche.month
        owed[m0:] = _f(lease.principal)
        rows = schedule.rows
        for k, row in enumerate(rows):
            m = at(row.date)
            if m >= T:
                break
            interest[m] += _f(row.interest) * vat_factor
            # The balloon is paid with the last rent, so nothing is owed after it.
            owed[m:] = 0.0 if k == len(rows) - 1 else _f(row.closing)
        outstanding += owed
        if schedule.end >= horizon_end:
            terminal_financing += -owed[-1] - _f(lease.purchase_option) + _f(lease.deposit)
        if tranche.instrument in lease_names:
            li = lease_names.index(tranche.instrument)
            lease_principal[li] += _f(lease.principal)
            lease_outstanding[li] += owed
            for i in tranche.lots:
                lease_collateral[li, lots[i].accelerator] += lot_value[i]
        if tranche.month + lease.months > T:
            warnings.append(
                f"funding.{tranche.instrument}: the draw of {tranche.start} runs beyond the horizon; "
                "what is then "
                "owed is settled in the terminal value"
            )
    # The DSCR is tested from the first month any capacity serves (debt paid before that is funded by
    # equity, as in project finance), on up to ``dscr_months`` trailing months.
    serving = np.flatnonzero(nodes_in_service > 0)
    ops_start = int(serving[0]) if serving.size else T
    span = scenario.funding.dscr_months
    window = np.where(t >= ops_start, np.minimum(span, t - ops_start + 1), 0).astype(np.int64)
    return Plan(
        scenario=scenario,
        instruments=instruments,
        months=months,
        hours=hours,
        days=days,
        df=df,
        accelerators=tuple(accelerators),
        lots=tuple(lots),
        cap_gpus=cap,
        nodes_in_service=nodes_in_service,
        contract_names=tuple(c.name for c in scenario.contracts),
        contract_acc=contract_acc,
        contract_gpus=contract_gpus,
        contract_fee=contract_fee,
        contract_gpu_hours=contract_gpu_hours,
        win_p=win_p,
        credit_expected=credit_expected,
        credit_steps=credit_steps,
        credit_cdf=credit_cdf,
        market_price=market_price,
        market_hours=market_hours,
        unavailable=unavailable,
        launch_months=tuple(launch_months),
        occupancy=occupancy,
        occ_mu=mu,
        occ_y0=y0,
        occ_kappa=kappa,
        rack=rack,
        om=om,
        insurance=insurance,
        power_fixed=power_fixed,
        power_var=power_var,
        depreciation=depreciation,
        book_value=book,
        market_value=market_value,
        capex=capex,
        vat_in_equipment=vat_in_equipment,
        vat_in_owner=vat_in_owner,
        vat_in_rents=vat_in_rents,
        drawdown=drawdown,
        fees=fees,
        fees_expense=fees_expense,
        deposits=deposits,
        refunds=refunds,
        debt_service=debt_service,
        purchase_options=purchase_options,
        interest=interest,
        outstanding=outstanding,
        terminal_financing=terminal_financing,
        dscr_window=window,
        tranches=tuple(tranches),
        lease_names=lease_names,
        lease_principal=lease_principal,
        lease_outstanding=lease_outstanding,
        lease_collateral=lease_collateral,
        tax_rate=_f(scenario.accounting.income_tax_rate),
        vat_out=vat_out,
        min_cash=_f(scenario.funding.min_cash),
        discount_rate=r,
        warnings=tuple(warnings),
    )
