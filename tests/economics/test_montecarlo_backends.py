"""The JAX and torch backends of the Monte Carlo engine against the numpy one.

"Same results" (issue 7) is, as stated in :mod:`computelease.economics.montecarlo`: (a) with all
volatilities zero, ``failures: expected`` and ``pipeline: expected`` every path is the deterministic
projection (NPVs to 1e-6 of the capex, the equity IRR to 1e-5), as numpy's paths are; (b) with the
examples' volatility, at 200,000 paths, the backends' figures agree within Monte Carlo error: NPV and
equity-NPV percentiles within 1% of the distribution's scale (``max(|value|, P95 − P5)``), equity-IRR
percentiles within 0.01 absolute, P(DSCR < 1), P(shortfall), the floored-IRR share and a lessor's
default probability within 0.01 absolute, a lessor's expected loss within 3% relative.

The torch tests run where torch is importable and are skipped otherwise (it is not installed on the
development machine: its wheels are gigabytes); the JAX tests are skipped where jax is not installed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pyxirr

from computelease.economics import mc_array, mc_jax, mc_torch, montecarlo
from computelease.economics.montecarlo import BackendUnavailable, McResult, require_backend, simulate
from computelease.economics.plan import Plan, prepare
from computelease.economics.projection import project
from computelease.economics.scenario import load_scenario, parse_scenario

from .conftest import EXAMPLES, ONE_NODE

ZERO = {
    "occupancy_vol": 0,
    "price_vol": 0,
    "launch_vol": 0,
    "residual_vol": 0,
    "failures": "expected",
    "pipeline": "expected",
}
JAX = pytest.param(
    "jax", marks=pytest.mark.skipif(not mc_jax.available(), reason="jax is not installed (pip install jax)")
)
TORCH = pytest.param(
    "torch",
    marks=pytest.mark.skipif(
        not mc_torch.available(),
        reason="torch is not installed here (pip install torch): the torch backend is not run",
    ),
)
BACKENDS = [JAX, TORCH]
AGREEMENT_PATHS = 200_000


def _plan(stem: str, **risk: object) -> Plan:
    scenario = load_scenario(EXAMPLES[0].parent / f"{stem}.yaml")
    return prepare(scenario.with_risk(**risk) if risk else scenario)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_zero_volatility_is_the_projection(backend: str, path: Path) -> None:
    """(a): every path is the projection. 300 paths in chunks of 128, so the last chunk is padded."""
    plan = prepare(load_scenario(path).with_risk(**ZERO))
    deterministic = project(plan, solve=False)
    result = simulate(plan, paths=300, seed=1, chunk_size=128, backend=backend, keep_samples=True)
    assert result.backend == backend and result.paths == 300 and result.workers == 1
    s = deterministic.summary
    scale = float(plan.capex.sum())
    assert result.samples["npv"].shape == (300,)
    assert np.allclose(result.samples["npv"], s.npv, rtol=0, atol=1e-6 * scale)
    assert np.allclose(result.samples["equity_npv"], s.equity_npv, rtol=0, atol=1e-6 * scale)
    if s.equity_irr.value is not None:
        assert np.allclose(result.samples["equity_irr"], s.equity_irr.value, atol=1e-5)
    assert np.allclose(result.mean_revenue, deterministic.lines["revenue"], rtol=1e-6, atol=1.0)
    assert np.allclose(result.mean_cash, deterministic.lines["cash"], rtol=1e-6, atol=1e-6 * scale)
    assert result.p_cash_shortfall == 0.0
    assert result.p_dscr_below_1 == (1.0 if s.min_dscr is not None and s.min_dscr < 1 else 0.0)
    for risk in result.lessor:
        assert risk.default_probability == 0 and risk.expected_loss == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_node_golden_case(backend: str) -> None:
    """The hand-checked one-node plan of test_projection.py, deterministic, on the backend."""
    plan = prepare(parse_scenario(ONE_NODE).with_risk(**ZERO))
    s = project(plan, solve=False).summary
    result = simulate(plan, paths=50, seed=0, backend=backend, keep_samples=True)
    assert np.allclose(result.samples["npv"], s.npv, rtol=0, atol=1e-3)
    assert np.allclose(result.samples["equity_npv"], s.equity_npv, rtol=0, atol=1e-3)


def _assert_agree(a: McResult, b: McResult) -> None:
    """(b): the stated tolerances between two backends' runs of the same plan."""
    for key in ("npv", "equity_npv"):
        sa, sb = getattr(a, key), getattr(b, key)
        spread = sa.p95 - sa.p5
        assert spread > 0
        for q in ("p5", "p50", "p95"):
            va, vb = getattr(sa, q), getattr(sb, q)
            assert abs(va - vb) <= 0.01 * max(abs(va), spread), (key, q, va, vb)
    for q in ("p5", "p50", "p95"):
        assert getattr(a.equity_irr, q) == pytest.approx(getattr(b.equity_irr, q), abs=0.01), q
    assert b.p_dscr_below_1 == pytest.approx(a.p_dscr_below_1, abs=0.01)
    assert b.p_cash_shortfall == pytest.approx(a.p_cash_shortfall, abs=0.01)
    assert b.irr_floored == pytest.approx(a.irr_floored, abs=0.01)
    assert [r.instrument for r in a.lessor] == [r.instrument for r in b.lessor]
    for ra, rb in zip(a.lessor, b.lessor, strict=True):
        assert rb.default_probability == pytest.approx(ra.default_probability, abs=0.01)
        assert rb.expected_loss == pytest.approx(ra.expected_loss, rel=0.03, abs=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "stem",
    [
        "lianhua_zixing",  # DSCR and shortfall probabilities away from 0 and 1
        "kingsoft_direct_lease",  # a lessor's default probability and expected loss
        "idle_centre",  # half the equity IRRs at the −99% floor
    ],
)
def test_backend_agrees_with_numpy_within_monte_carlo_error(backend: str, stem: str) -> None:
    plan = _plan(stem)
    reference = simulate(plan, paths=AGREEMENT_PATHS, seed=1, workers=1)
    got = simulate(plan, paths=AGREEMENT_PATHS, seed=1, backend=backend)
    assert got.backend == backend and reference.backend == "numpy"
    _assert_agree(reference, got)
    # Not the same draws: the agreement is statistical, not path by path.
    assert got.npv.p50 != reference.npv.p50
    if stem == "lianhua_zixing":
        assert 0.05 < got.p_dscr_below_1 < 0.95 and 0.05 < got.p_cash_shortfall < 0.95
    if stem == "kingsoft_direct_lease":
        assert 0.05 < got.lessor[0].default_probability < 0.95
    if stem == "idle_centre":
        assert 0.2 < got.irr_floored < 0.8


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeds_reproduce_and_differ(backend: str) -> None:
    plan = _plan("qingyun_sale_leaseback")
    a = simulate(plan, paths=3000, seed=42, chunk_size=1000, backend=backend, keep_samples=True)
    b = simulate(plan, paths=3000, seed=42, chunk_size=1000, backend=backend, keep_samples=True)
    c = simulate(plan, paths=3000, seed=43, chunk_size=1000, backend=backend, keep_samples=True)
    for key in ("npv", "equity_npv", "equity_irr"):
        assert np.array_equal(a.samples[key], b.samples[key])
    assert not np.array_equal(a.samples["npv"], c.samples["npv"])
    assert a.to_dict() == b.to_dict()
    assert a.to_dict()["backend"] == backend and a.chunk_size == 1000


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chunk_depends_on_its_seed_and_size_not_on_the_run(backend: str) -> None:
    """Chunk i's draws come from the i-th chunk seed: the first 1,000 paths of a 2,500-path run (its last
    chunk padded to 1,000) are the paths of a 1,000-path run, and padding changes no total."""
    plan = _plan("kingsoft_direct_lease")
    short = simulate(plan, paths=1000, seed=5, chunk_size=1000, backend=backend, keep_samples=True)
    long = simulate(plan, paths=2500, seed=5, chunk_size=1000, backend=backend, keep_samples=True)
    for key in ("npv", "equity_npv", "equity_irr"):
        assert np.array_equal(long.samples[key][:1000], short.samples[key])
        assert long.samples[key].shape == (2500,) and not np.isnan(long.samples[key]).any()
    mean_npv = long.samples["npv"].mean()
    assert long.npv.mean == pytest.approx(mean_npv, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_progress_is_reported_per_chunk(backend: str) -> None:
    seen: list[tuple[int, int]] = []
    simulate(
        _plan("qingyun_sale_leaseback"),
        paths=2500,
        chunk_size=1000,
        backend=backend,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


def _irr_ops(backend: str) -> tuple[object, object]:
    if backend == "jax":
        return mc_jax.JaxOps(), mc_jax.x64()
    return mc_torch.TorchOps("cpu"), _null()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _to_numpy(a: object) -> np.ndarray:
    return np.asarray(a.cpu()) if hasattr(a, "cpu") else np.asarray(a)  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_path_irr_matches_numpy_and_pyxirr(backend: str) -> None:
    """The backends' IRR is numpy's algorithm without branches: the same roots, to float32 rounding."""
    rng = np.random.default_rng(3)
    months, paths = 60, 400
    flows = np.zeros((months, paths))
    flows[0] = -rng.uniform(50e6, 300e6, paths)
    flows[1:] = rng.normal(4e6, 1e6, (months - 1, paths))
    flows[-1] += rng.uniform(0, 200e6, paths)
    flows[:, :130] = -np.abs(rng.normal(2e6, 1e6, (months, 130)))  # near-total losses
    flows[-1, :130] = rng.uniform(1e6, 60e6, 130)
    flows[0, :130] = -100e6
    flows = flows.astype(np.float32)
    expected_numpy = montecarlo.equity_irr(flows, hint=0.0)
    ops, scope = _irr_ops(backend)
    with scope:
        got = _to_numpy(mc_array.equity_irr(ops, ops.from_numpy(flows), 0.0))  # type: ignore[arg-type]
    assert got.dtype == np.float64
    # float32 Horner sums in another order (XLA fuses, may use FMA): the roots agree to ~3e-6.
    assert np.abs(got - expected_numpy).max() < 1e-5
    checked = 0
    for j in range(paths):
        monthly = pyxirr.irr(np.concatenate(([0.0], flows[:, j].astype(np.float64))), silent=True)
        if monthly is None or (1 + monthly) ** 12 - 1 <= montecarlo.IRR_FLOOR:
            continue
        assert got[j] == pytest.approx((1 + monthly) ** 12 - 1, abs=1e-5)
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("backend", BACKENDS)
def test_irr_floor_cap_and_the_later_root(backend: str) -> None:
    flows = np.zeros((24, 3), dtype=np.float32)
    flows[:, 0] = -1.0
    flows[:, 1] = 1.0
    flows[0, 2], flows[1:23, 2], flows[23, 2] = -100.0, 10.0, -30.0  # two roots: the investment-type one
    ops, scope = _irr_ops(backend)
    with scope:
        got = _to_numpy(mc_array.equity_irr(ops, ops.from_numpy(flows)))  # type: ignore[arg-type]
    assert got[0] == montecarlo.IRR_FLOOR and got[1] == montecarlo.IRR_CAP
    assert got[2] == pytest.approx(montecarlo.equity_irr(flows)[2], abs=1e-6) and got[2] > 0


@pytest.mark.skipif(not mc_jax.available(), reason="jax is not installed (pip install jax)")
def test_jax_float64_is_scoped_to_the_run() -> None:
    import jax
    import jax.numpy as jnp

    before = bool(jax.config.jax_enable_x64)
    simulate(_plan("qingyun_sale_leaseback"), paths=100, backend="jax")
    assert bool(jax.config.jax_enable_x64) == before
    if not before:
        assert jnp.zeros(1).dtype == jnp.float32


@pytest.mark.skipif(not mc_jax.available(), reason="jax is not installed (pip install jax)")
def test_numpy_workers_stay_safe_after_jax_is_loaded() -> None:
    """With JAX's threads in the process the numpy workers start from a fork server, not by fork; the
    figures are those of one worker."""
    import jax  # noqa: F401

    assert montecarlo._fork_safe_context() is not None
    plan = _plan("kingsoft_direct_lease")
    one = simulate(plan, paths=4000, seed=7, workers=1, chunk_size=1024, keep_samples=True)
    two = simulate(plan, paths=4000, seed=7, workers=2, chunk_size=1024, keep_samples=True)
    assert two.workers == 2
    assert np.array_equal(one.samples["npv"], two.samples["npv"]) and one.to_dict() == two.to_dict()


def test_backend_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require_backend("numpy") == "numpy"
    result = simulate(_plan("qingyun_sale_leaseback"), paths=10, workers=1)
    assert result.backend == "numpy" and result.chunk_size == montecarlo.DEFAULT_CHUNK
    if mc_jax.available():
        assert require_backend("jax") == "jax"
        assert mc_jax.default_chunk() in (mc_jax.CPU_CHUNK, mc_jax.GPU_CHUNK)
    if not mc_torch.available():
        with pytest.raises(BackendUnavailable, match=r"backend 'torch' is not installed here"):
            simulate(_plan("qingyun_sale_leaseback"), paths=10, backend="torch")

    def broken() -> str:
        raise ImportError("libcuda.so.1: cannot open shared object file")

    # An installed library that does not start is one line, not a traceback.
    monkeypatch.setattr(montecarlo.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(mc_torch, "device", broken)
    with pytest.raises(BackendUnavailable) as caught:
        simulate(_plan("qingyun_sale_leaseback"), paths=10, backend="torch")
    assert caught.value.detail == (
        "backend 'torch' is installed but does not start "
        "(ImportError: libcuda.so.1: cannot open shared object file); use --backend numpy"
    )


@pytest.mark.skipif(not mc_jax.available(), reason="jax is not installed (pip install jax)")
def test_cli_runs_the_jax_backend(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from computelease.cli import main

    path = str(EXAMPLES[0].parent / "qingyun_sale_leaseback.yaml")
    code = main(["scenario", "run", path, "--paths", "2000", "--seed", "3", "--backend", "jax", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    mc = data["monte_carlo"]
    assert mc["backend"] == "jax" and mc["paths"] == 2000
    assert not math.isnan(mc["npv"]["p50"])
