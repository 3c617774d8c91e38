"""Monte Carlo: agrees with the projection at zero volatility, converges to it, is reproducible and does
not depend on the number of workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyxirr

from computelease.economics import montecarlo
from computelease.economics.montecarlo import BackendUnavailable, equity_irr, normal_table, simulate
from computelease.economics.plan import prepare
from computelease.economics.projection import project
from computelease.economics.scenario import Scenario, load_scenario, parse_scenario

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
ZERO = {
    "occupancy_vol": 0,
    "price_vol": 0,
    "launch_vol": 0,
    "residual_vol": 0,
    "failures": "expected",
    "pipeline": "expected",
}


def _example(stem: str) -> Scenario:
    return load_scenario(EXAMPLES[0].parent / f"{stem}.yaml")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_zero_volatility_is_the_projection(path: Path) -> None:
    plan = prepare(load_scenario(path).with_risk(**ZERO))
    deterministic = project(plan, solve=False)
    result = simulate(plan, paths=300, seed=1, workers=1, chunk_size=128, keep_samples=True)
    s = deterministic.summary
    scale = float(plan.capex.sum())
    # Every path is the projection: float32 touches only the per-path monthly revenue pieces.
    assert np.allclose(result.samples["npv"], s.npv, rtol=0, atol=1e-6 * scale)
    assert np.allclose(result.samples["equity_npv"], s.equity_npv, rtol=0, atol=1e-6 * scale)
    if s.equity_irr.value is not None:
        assert np.allclose(result.samples["equity_irr"], s.equity_irr.value, atol=1e-5)
    assert np.allclose(result.mean_revenue, deterministic.lines["revenue"], rtol=1e-6, atol=1.0)
    assert np.allclose(result.mean_cash, deterministic.lines["cash"], rtol=1e-6, atol=1e-6 * scale)
    assert result.p_cash_shortfall == 0.0
    assert result.p_dscr_below_1 == (1.0 if s.min_dscr is not None and s.min_dscr < 1 else 0.0)


def test_mean_converges_as_volatility_falls() -> None:
    """Occupancy enters through the logistic, so with volatility the mean NPV differs from the projection
    (Jensen); the gap shrinks as σ → 0. Prices are a martingale: price volatility alone keeps the mean
    revenue on the projection, within sampling error."""
    base = _example("lianhua_zixing").with_risk(**ZERO)
    deterministic = project(prepare(base), solve=False).summary.npv
    gaps = []
    for sigma in (0.4, 0.1, 0.025):
        plan = prepare(base.with_risk(occupancy_vol=sigma))
        result = simulate(plan, paths=4000, seed=11, workers=1)
        gaps.append(abs(result.npv.mean - deterministic))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 2e-3 * abs(deterministic)

    plan = prepare(base.with_risk(price_vol=0.05, launch_vol=0.1))
    result = simulate(plan, paths=20000, seed=5, workers=1, keep_samples=True)
    expected = project(plan, solve=False).lines["revenue"]
    # The market share of revenue is the only random part; its relative sampling error is small.
    assert np.allclose(result.mean_revenue, expected, rtol=0.01)


def test_drawn_pipeline_keeps_the_expected_revenue() -> None:
    """Each pipeline contract is won or lost per path; revenue is linear in the win, so its mean is the
    projection's probability-weighted revenue."""
    risk = {**ZERO, "pipeline": "draw"}
    plan = prepare(_example("kingsoft_direct_lease").with_risk(**risk))
    result = simulate(plan, paths=20000, seed=2, workers=1)
    expected = project(plan, solve=False).lines["revenue"]
    assert np.allclose(result.mean_revenue, expected, rtol=0.005)
    assert result.npv.p5 < result.npv.p95  # the wins do spread the outcomes


def test_seeds_reproduce_and_differ() -> None:
    plan = prepare(_example("qingyun_sale_leaseback"))
    a = simulate(plan, paths=3000, seed=42, workers=1, chunk_size=1000, keep_samples=True)
    b = simulate(plan, paths=3000, seed=42, workers=1, chunk_size=1000, keep_samples=True)
    c = simulate(plan, paths=3000, seed=43, workers=1, chunk_size=1000, keep_samples=True)
    for key in ("npv", "equity_npv", "equity_irr"):
        assert np.array_equal(a.samples[key], b.samples[key])
    assert not np.array_equal(a.samples["npv"], c.samples["npv"])
    assert a.to_dict() == b.to_dict()


def test_results_do_not_depend_on_the_workers() -> None:
    plan = prepare(_example("kingsoft_direct_lease"))
    one = simulate(plan, paths=5000, seed=7, workers=1, chunk_size=1024, keep_samples=True)
    two = simulate(plan, paths=5000, seed=7, workers=2, chunk_size=1024, keep_samples=True)
    assert two.workers == 2
    for key in ("npv", "equity_npv", "equity_irr"):
        assert np.array_equal(one.samples[key], two.samples[key])
    assert np.array_equal(one.mean_cash, two.mean_cash)
    assert one.to_dict() == two.to_dict()


def test_per_path_irr_matches_pyxirr() -> None:
    rng = np.random.default_rng(3)
    months, paths = 60, 400
    flows = np.zeros((months, paths))
    flows[0] = -rng.uniform(50e6, 300e6, paths)
    flows[1:] = rng.normal(4e6, 1e6, (months - 1, paths))
    flows[-1] += rng.uniform(0, 200e6, paths)
    # A third of the paths lose nearly everything: the NPV is steep near −99%.
    flows[:, :130] = -np.abs(rng.normal(2e6, 1e6, (months, 130)))
    flows[-1, :130] = rng.uniform(1e6, 60e6, 130)
    flows[0, :130] = -100e6
    got = equity_irr(flows.astype(np.float32), hint=0.0)
    checked = 0
    for j in range(paths):
        monthly = pyxirr.irr(np.concatenate(([0.0], flows[:, j])), silent=True)
        if monthly is None:
            continue
        expected = (1 + monthly) ** 12 - 1
        if expected <= montecarlo.IRR_FLOOR:
            assert got[j] == montecarlo.IRR_FLOOR
            continue
        assert got[j] == pytest.approx(expected, abs=1e-5)
        checked += 1
    assert checked > 300


def test_irr_floor_cap_and_the_later_root() -> None:
    flows = np.zeros((24, 3), dtype=np.float32)
    flows[:, 0] = -1.0  # never pays back
    flows[:, 1] = 1.0  # never costs anything
    flows[0, 2], flows[1:23, 2], flows[23, 2] = -100.0, 10.0, -30.0  # ends with a payment: two roots
    got = equity_irr(flows)
    assert got[0] == montecarlo.IRR_FLOOR and got[1] == montecarlo.IRR_CAP
    monthly = (1 + got[2]) ** (1 / 12) - 1
    value = sum(float(f) / (1 + monthly) ** (m + 1) for m, f in enumerate(flows[:, 2]))
    assert value == pytest.approx(0, abs=1e-3) and got[2] > 0  # the investment-type root, not ≈ −100%


def test_normal_table_is_standard() -> None:
    table = normal_table().astype(np.float64)
    assert table.mean() == pytest.approx(0, abs=1e-12)
    assert (table**2).mean() == pytest.approx(1, abs=1e-6)
    assert table.min() < -4.3 and table.max() > 4.3


def test_lessor_expected_loss() -> None:
    """The idle centre on a direct lease: the lessee runs short of cash and the lessor loses what the
    collateral does not cover. Without volatility and with the plan's own equity, nobody defaults."""
    scenario = _example("idle_centre").with_route("direct_lease")
    result = simulate(prepare(scenario), paths=4000, seed=3, workers=1)
    (risk,) = result.lessor
    assert risk.instrument == "direct_lease"
    assert 0 < risk.default_probability <= 1
    assert 0 < risk.expected_loss < risk.principal
    assert risk.loss_given_default is not None and risk.expected_loss <= risk.loss_given_default
    calm = simulate(prepare(scenario.with_risk(**ZERO)), paths=500, seed=3, workers=1)
    assert calm.lessor[0].default_probability == 0 and calm.lessor[0].expected_loss == 0


def test_a_cash_buffer_absorbs_misses() -> None:
    """The plan's equity keeps ``min_cash`` in hand; a path is short only when its misses use it all up."""
    scenario = _example("idle_centre")
    shares = []
    for buffer in (0, 6_000_000, 60_000_000, 600_000_000):
        funding = scenario.funding.model_copy(update={"min_cash": buffer})
        variant = scenario.model_copy(update={"funding": funding})
        shares.append(simulate(prepare(variant), paths=3000, seed=4, workers=1).p_cash_shortfall)
    assert shares[0] > shares[1] > shares[2] >= shares[3] == 0
    assert shares[0] > 0.5  # with no buffer, half the paths do worse than the plan at some point


def test_distribution_is_ordered_and_plausible() -> None:
    result = simulate(prepare(_example("lianhua_zixing")), paths=5000, seed=9, workers=1)
    for spread in (result.npv, result.equity_npv, result.equity_irr):
        assert spread.p5 < spread.p50 < spread.p95
    assert 0 <= result.p_cash_shortfall <= 1 and 0 <= result.p_dscr_below_1 <= 1
    assert result.path_months_per_s > 0


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_missing_backends_say_so_in_one_line(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(montecarlo.importlib.util, "find_spec", lambda name: None)
    plan = prepare(parse_scenario(_tiny()))
    with pytest.raises(BackendUnavailable) as caught:
        simulate(plan, paths=10, backend=backend)
    assert caught.value.detail == (
        f"backend {backend!r} is not installed here; "
        f"install it (pip install {backend}) or use --backend numpy"
    )
    with pytest.raises(BackendUnavailable, match="not known"):
        simulate(plan, paths=10, backend="cupy")


def _tiny() -> dict:
    return {
        "name": "tiny",
        "start": "2025-01-01",
        "horizon_months": 6,
        "discount_rate": "0.08",
        "sites": [{"id": "a", "power_price_kwh": "0.5", "pue": "1.2"}],
        "fleet": [{"sku": "nvidia-hgx-h100-8gpu", "count": 1, "date": "2025-01-01", "site": "a"}],
        "market": {"prices": [{"accelerator": "nvidia-h100-sxm", "per_gpu_hour": 12}], "occupancy": "0.8"},
        "accounting": {"depreciation": {"months": 60}, "income_tax_rate": "0.25"},
    }


def test_catalog_price_is_used_with_a_warning() -> None:
    plan = prepare(parse_scenario(_tiny()))
    assert plan.lots[0].gross == 2300000
    assert any("catalog reference price used (CNY 2,300,000, confidence weak" in w for w in plan.warnings)
