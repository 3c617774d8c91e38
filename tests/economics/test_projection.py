"""The deterministic projection: a golden case worked by hand, the cash identity, monotonicity, solvers."""

from __future__ import annotations

import calendar
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computelease.economics.compare import compare, parse_routes, write_html
from computelease.economics.plan import prepare
from computelease.economics.projection import _project_npv, irr, npv, project, run
from computelease.economics.scenario import ScenarioInvalid, load_scenario, parse_scenario

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_golden_one_node_twelve_months(one_node: dict) -> None:
    """One 8×H100 node for twelve months of 2025, every figure below worked by hand.

    Purchase: RMB 1,130,000 including 13% VAT → cost 1,000,000 and input VAT 130,000, paid in January,
    in service in January, so (Chinese practice) depreciated from February: 1,000,000 / 50 months =
    20,000 a month × 11 = 220,000; book value at the end 780,000.

    Revenue: RMB 106,000 a server-month including 6% VAT → 100,000 net × occupancy 0.5 = 50,000 a month
    (600,000 a year); output VAT 3,000 a month, receipts 53,000. The 130,000 of input VAT covers the
    36,000 of output VAT all year: no VAT is paid.

    Costs: rack 1,000 + O&M 500 a month; power 8 kW × hours × PUE 1.25 × 0.50 = 5 × hours
    (January: 744 h → 3,720; the year's 8,760 h → 43,800). January opex 5,220, EBITDA 44,780;
    the year's EBITDA 600,000 − 18,000 − 43,800 = 538,200.

    Tax at 25%, every month profitable: January 44,780 × 25% = 11,195; the year's EBT
    538,200 − 220,000 = 318,200, tax 79,550, net income 238,650.

    Funding: a bank loan of 600,000 at 0% over 12 months, in arrears: 50,000 a month from February,
    so 11 rents (550,000) fall in the year and 50,000 is still owed at the end.
    January: CFADS 53,000 − 5,220 − 11,195 = 36,585; pre-equity 36,585 − 1,130,000 + 600,000
    = −493,415, which the owners put in. Every later month CFADS (≈41,600–41,860) is below the 50,000
    rent, so the owners top up the difference and cash stays at 0. The year's CFADS
    636,000 − 61,800 − 79,550 = 494,650; equity put in 1,130,000 − 600,000 + 550,000 − 494,650 = 585,350.

    Terminal: residual value 0.8 × 1,000,000 = 800,000 (age 12 months), tax on the gain over book value
    25% × 20,000 = 5,000 → 795,000. Project NPV at 0%: 494,650 − 1,130,000 + 795,000 = 159,650.
    Equity NPV: −585,350 + 795,000 − 50,000 (the last rent, settled at the end) = 159,650, the same:
    the loan is free and nothing is discounted.

    Peak funding need: January's 493,415 put in + 600,000 owed = 1,093,415.
    DSCR (trailing, from January): December 494,650 / 550,000 = 0.8994, the lowest.
    """
    result = run(parse_scenario(one_node))
    lines = result.lines
    hours = np.array([calendar.monthrange(2025, m)[1] * 24 for m in range(1, 13)], dtype=float)

    assert lines["revenue"] == pytest.approx(np.full(12, 50_000.0))
    assert lines["power"] == pytest.approx(5 * hours)
    assert lines["power"][0] == pytest.approx(3_720)
    assert lines["opex"][0] == pytest.approx(5_220)
    assert lines["ebitda"][0] == pytest.approx(44_780)
    assert lines["depreciation"] == pytest.approx([0.0] + [20_000.0] * 11)
    assert lines["tax"][0] == pytest.approx(11_195)
    assert lines["vat_paid"] == pytest.approx(np.zeros(12))
    assert lines["receipts"] == pytest.approx(np.full(12, 53_000.0))
    assert lines["cfads"][0] == pytest.approx(36_585)
    assert lines["debt_service"] == pytest.approx([0.0] + [50_000.0] * 11)
    assert lines["equity_in"][0] == pytest.approx(493_415)
    assert lines["equity_in"][1:] == pytest.approx(50_000 - lines["cfads"][1:])
    assert lines["cash"] == pytest.approx(np.zeros(12), abs=1e-6)

    s = result.summary
    assert s.revenue == pytest.approx(600_000)
    assert s.ebitda == pytest.approx(538_200)
    assert float(lines["ebt"].sum()) == pytest.approx(318_200)
    assert float(lines["tax"].sum()) == pytest.approx(79_550)
    assert s.net_income == pytest.approx(238_650)
    assert float(lines["cfads"].sum()) == pytest.approx(494_650)
    assert s.equity_needed == pytest.approx(585_350)
    assert s.residual_value == pytest.approx(800_000)
    assert s.npv == pytest.approx(159_650)
    assert s.equity_npv == pytest.approx(159_650)
    assert s.peak_funding_need == pytest.approx(1_093_415)
    assert s.min_dscr == pytest.approx(494_650 / 550_000)
    assert s.financing_cost == Decimal("0.00")
    assert s.payback_month is None  # the cumulative project cash is negative all year
    # The IRRs exist and discount their flows to zero.
    flows = result.lines["project_flows_with_terminal"]
    rate = s.project_irr.value
    assert rate is not None
    assert npv(flows, (1 + rate) ** (-(np.arange(12) + 1) / 12)) == pytest.approx(0, abs=1.0)


def test_golden_with_discounting(one_node: dict) -> None:
    """At 12% a year each month's flow is discounted 1.12^(−(m+1)/12); the project flows are the hand-worked
    ones, so the NPV is their discounted sum."""
    one_node["discount_rate"] = 0.12
    result = run(parse_scenario(one_node), solve=False)
    flows = result.lines["project_flows_with_terminal"]
    df = 1.12 ** (-(np.arange(12) + 1) / 12)
    assert result.summary.npv == pytest.approx(float(flows @ df))
    assert float(flows.sum()) == pytest.approx(159_650)
    assert result.summary.npv < 159_650


def _assert_cash_identity(lines: dict) -> None:
    components = (
        lines["cfads"]
        - lines["capex"]
        + lines["drawdown"]
        - lines["fees"]
        - lines["deposits"]
        + lines["refunds"]
        - lines["debt_service"]
        - lines["purchase_options"]
        + lines["equity_in"]
    )
    scale = max(1.0, float(np.abs(lines["capex"]).sum()))
    assert np.allclose(lines["net_cash_flow"], components, atol=1e-9 * scale)
    opening = np.concatenate(([0.0], lines["cash"][:-1]))
    assert np.allclose(lines["cash"] - opening, lines["net_cash_flow"], atol=1e-9 * scale)
    assert np.allclose(
        lines["cfads"],
        lines["receipts"] - lines["opex"] - lines["tax"] - lines["vat_paid"],
        atol=1e-9 * scale,
    )
    assert (lines["cash"] >= -1e-6 * scale).all()
    assert (lines["tax"] >= -1e-9).all() and (lines["vat_paid"] >= -1e-9).all()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_cash_identity_every_month_every_route(path: Path) -> None:
    scenario = load_scenario(path)
    for route in ("own", "bank", "direct_lease", "sale_leaseback"):
        if route != "own" and getattr(scenario.funding, route) is None:
            continue
        _assert_cash_identity(run(scenario.with_route(route), solve=False).lines)


_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(
    nodes=st.integers(1, 40),
    price=st.integers(20_000, 150_000),
    occupancy=st.floats(0.0, 1.0),
    start_occupancy=st.floats(0.0, 1.0),
    route=st.sampled_from(["own", "bank", "direct_lease", "sale_leaseback"]),
    rate=st.sampled_from(["0", "0.03", "0.065"]),
    months=st.sampled_from([6, 12, 24]),
    timing=st.sampled_from(["arrears", "advance"]),
    deposit=st.sampled_from(["0", "0.05"]),
    contract_gpus=st.integers(0, 400),
    idle=st.sampled_from(["1", "0.3"]),
)
def test_cash_identity_holds_for_random_businesses(
    nodes, price, occupancy, start_occupancy, route, rate, months, timing, deposit, contract_gpus, idle
) -> None:
    data = {
        "name": "random",
        "start": "2025-01-01",
        "horizon_months": 18,
        "discount_rate": "0.08",
        "sites": [
            {
                "id": "a",
                "rack_per_node_month": 3000,
                "power_price_kwh": "0.6",
                "pue": "1.3",
                "om_per_node_month": 2000,
                "insurance_rate": "0.003",
                "idle_power_fraction": idle,
            }
        ],
        "fleet": [
            {
                "sku": "nvidia-hgx-h100-8gpu",
                "count": nodes,
                "unit_price": 2300000,
                "date": "2025-01-01",
                "site": "a",
            },
            {
                "sku": "nvidia-hgx-h100-8gpu",
                "count": 3,
                "unit_price": 2000000,
                "date": "2025-07-01",
                "site": "a",
            },
        ],
        "contracts": [
            {
                "name": "c",
                "accelerator": "nvidia-h100-sxm",
                "capacity": {"gpus": contract_gpus or 1},
                "price": {"per_gpu_hour": 12},
                "start": "2025-02-01",
                "months": 12,
                "sla": [{"below": "0.999", "credit": "0.1"}],
            },
            {
                "name": "p",
                "status": "pipeline",
                "win_probability": "0.4",
                "accelerator": "nvidia-h100-sxm",
                "capacity": {"nodes": 2},
                "price": {"per_server_month": 70000},
                "start": "2025-06-01",
                "months": 6,
            },
        ],
        "market": {
            "prices": [
                {
                    "accelerator": "nvidia-h100-sxm",
                    "per_server_month": price,
                    "annual_drift": "-0.1",
                    "launches": [{"date": "2025-09-01", "step": "-0.1"}],
                }
            ],
            "occupancy": occupancy,
            "occupancy_start": start_occupancy,
            "failures_per_1000_gpu_days": "0.47",
            "repair_hours": 12,
            "residual": [{"age_months": 12, "value": "0.62"}, {"age_months": 24, "value": "0.42"}],
        },
        "funding": {
            "use": route,
            "min_cash": 100000,
            "bank": {"share": "0.6", "rate": rate, "months": months},
            "direct_lease": {
                "share": "0.8",
                "rate": rate,
                "months": months,
                "timing": timing,
                "deposit_rate": deposit,
                "fee_rate": "0.01",
                "purchase_option": 100,
            },
            "sale_leaseback": {
                "share": "0.7",
                "rate": rate,
                "months": months,
                "timing": timing,
                "deposit_rate": deposit,
                "deposit_use": "offset",
            },
        },
        "accounting": {"depreciation": {"months": 60, "salvage_rate": "0.05"}, "income_tax_rate": "0.25"},
    }
    result = run(parse_scenario(data), solve=False)
    lines = result.lines
    _assert_cash_identity(lines)
    assert (lines["cash"] >= 100000 - 1e-3).all()  # owners keep the minimum cash
    assert result.summary.equity_needed >= 0


@pytest.fixture(scope="module")
def plans() -> dict:
    return {path.stem: prepare(load_scenario(path)) for path in EXAMPLES}


@_SETTINGS
@given(data=st.data())
def test_npv_rises_with_price(plans: dict, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(plans)))
    low = data.draw(st.floats(0.0, 60.0))
    high = data.draw(st.floats(low, 60.0))
    plan = plans[name]
    # NPV(p) is non-decreasing: revenue is linear in p and tax and VAT only take a share of the gain.
    assert _project_npv(plan, gpu_hour_price=low) <= _project_npv(plan, gpu_hour_price=high) + 1e-6 * abs(
        _project_npv(plan, gpu_hour_price=high)
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_npv_rises_with_the_market_price_in_the_file(path: Path) -> None:
    scenario = load_scenario(path)
    values = []
    for factor in ("0.5", "1", "1.5"):
        market = scenario.market
        prices = [
            p.model_copy(update={"per_server_month": p.per_server_month * Decimal(factor)})
            if p.per_server_month is not None
            else p.model_copy(update={"per_gpu_hour": p.per_gpu_hour * Decimal(factor)})
            for p in market.prices
        ]
        variant = scenario.model_copy(update={"market": market.model_copy(update={"prices": prices})})
        values.append(run(variant, solve=False).summary.npv)
    assert values[0] < values[1] < values[2]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_breakevens_zero_the_npv(path: Path, plans: dict) -> None:
    plan = plans[path.stem]
    result = project(plan)
    price = result.summary.breakeven_price
    assert price.value is not None and price.value > 0
    gross = 1 + plan.vat_out
    scale = float(plan.capex.sum())
    assert abs(_project_npv(plan, gpu_hour_price=price.value / gross)) < 1e-5 * scale
    occupancy = result.summary.breakeven_occupancy
    if occupancy.value is None:
        assert "negative even at 100%" in occupancy.note
        assert _project_npv(plan, occupancy=np.ones(plan.T)) < 0
    elif occupancy.value > 0:
        assert abs(_project_npv(plan, occupancy=np.full(plan.T, occupancy.value))) < 1e-5 * scale


def test_idle_centre_is_underwater() -> None:
    """The stress case behaves like one: negative NPV, cover below 1, a break-even occupancy above 30%."""
    summary = run(load_scenario(Path(EXAMPLES[0]).parent / "idle_centre.yaml")).summary
    assert summary.npv < 0 and summary.min_dscr is not None and summary.min_dscr < 1
    assert summary.breakeven_occupancy.value is None or summary.breakeven_occupancy.value > 0.3


def test_irr_reports_why_there_is_none() -> None:
    assert irr(np.array([-100.0, -50.0, -10.0])).value is None
    assert "never change sign" in irr(np.array([-100.0, -50.0, -10.0])).note
    found = irr(np.array([-1000.0] + [100.0] * 12))
    monthly = (1 + found.value) ** (1 / 12) - 1
    assert sum(f / (1 + monthly) ** (m + 1) for m, f in enumerate([-1000.0] + [100.0] * 12)) == pytest.approx(
        0, abs=1e-6
    )


def test_compare_routes_side_by_side(tmp_path: Path) -> None:
    scenario = load_scenario(Path(EXAMPLES[0]).parent / "kingsoft_direct_lease.yaml")
    comparison = compare(scenario, parse_routes("own,bank,direct_lease,sale_leaseback"))
    rows = {row.route: row for row in comparison.rows}
    assert list(rows) == ["own", "bank", "direct_lease", "sale_leaseback"]
    own = rows["own"]
    # Equity alone: the equity's flows are the project's, and nothing is paid for financing.
    assert own.npv == pytest.approx(own.project_npv)
    assert own.financing_cost == 0 and own.min_dscr is None
    assert own.equity_needed == pytest.approx(own.peak_funding_need)
    for route in ("bank", "direct_lease", "sale_leaseback"):
        assert rows[route].equity_needed < own.equity_needed
        assert rows[route].financing_cost > 0
        assert rows[route].project_npv == pytest.approx(own.project_npv, rel=0.02)  # VAT timing only
        assert rows[route].all_in_cost.value is not None
    data = comparison.to_dict()
    assert data["routes"][2]["route"] == "direct_lease" and isinstance(
        data["routes"][2]["financing_cost"], str
    )
    page = write_html(comparison.figure(), tmp_path / "routes.html").read_text(encoding="utf-8")
    assert "<script src=" not in page  # plotly.js embedded from the installed package, no CDN
    assert "Funding routes" in page and len(page) > 1_000_000


def test_unknown_route() -> None:
    with pytest.raises(ScenarioInvalid, match="routes: lease not known"):
        parse_routes("own,lease")
