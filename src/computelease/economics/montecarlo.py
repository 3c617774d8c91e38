"""Monte Carlo over the deterministic plan: occupancy, prices, failures, pipeline wins and residual values
vary by path; everything else (capacity, contracts, schedules, depreciation) is the plan's.

The model, per path (``z`` standard normal draws, ``σ`` from the scenario's ``risk`` section)::

    price      X_m = X_{m−1} + σ_p z − σ_p²/2  (+ σ_J z_J − σ_J²/2 in a launch month)
               p_m = p̄_m · e^{X_m}                         E[p_m] = p̄_m, the deterministic price
    occupancy  y_m = y_{m−1} + κ (μ − y_{m−1}) + σ_o (ρ z_p + √(1−ρ²) z_o),   o_m = 1 / (1 + e^{−y_m})
    failures   N_m ~ Poisson(λ_m) per contract, drawn as U ~ U(0,1): tier j credits when U ≥ P(N ≤ k_j − 1)
    pipeline   each pipeline contract is won on a path with its win probability (once per path)
    residual   RV = RV̄_T · e^{X_T} · e^{σ_R z_R − σ_R²/2}     (used-GPU values move with rental prices)

and the month's lines follow the deterministic projection's formulas (see :mod:`.projection`). With all
volatilities zero, ``failures: expected`` and ``pipeline: expected`` every path is the deterministic
projection (tested); with volatility, occupancy enters through the logistic, so the mean drifts from the
deterministic line by Jensen's inequality and converges to it as ``σ_o → 0``.

Outputs, over paths: P5/P50/P95 of the project NPV, the equity NPV and the equity IRR; the probability
that the DSCR is below 1.0 in any month with debt service; the probability of a cash shortfall (the
owners put in the deterministic plan's equity on its dates, which keeps ``min_cash`` in hand; a path's
misses eat into that buffer, and a shortfall is a month whose cash would fall below zero: the owners
then restore the buffer, so later months stay defined); and for each lease, a lessor's expected loss
``E[max(0, outstanding − recovery × collateral value)]`` at the lessee's first shortfall while the
lease is outstanding.

**Equity IRR per path** is solved for all paths of a chunk at once, without a Python loop over paths:
the log-ratio of discounted inflows to outflows (zero at the IRR, and nearly straight in
``ln(1 + rate)``) is evaluated on a grid of up to 8 rates from −99% to +1,000% a year, the first
crossing brackets the rate, four Illinois (modified regula falsi) steps and a secant step refine it; see
:func:`equity_irr`. The result agrees with pyxirr to 1e-5 (tested; ~1e-6 typically). A path whose NPV is
still negative at −99% is reported as −99% (a near-total loss); one still positive at +1,000% as
+1,000%; the shares of both are reported, so percentiles keep their rank.

**Numerics.** The kernel carries cumulative sums per path (revenue, the taxed base, the VAT base; see
:class:`Inputs`), so tax with losses carried forward, VAT with credits carried forward and cash all come
from a few array operations a month. Log price, logit occupancy and the month's revenue pieces are
float32 (their rounding is ~1e-7 of a month's revenue); the cumulative money states and NPVs are float64,
so the zero-volatility paths match the projection to ~1e-9. Normal draws come from a 65,536-entry
quantile table indexed by 16 random bits (:func:`normal_table`): ~4 ns a draw where numpy's ziggurat
takes ~45 ns on the reference machine. No BLAS call is made: OpenBLAS threads would compete with the
worker processes.

**Streaming and reproducibility.** Paths are simulated in chunks of ``chunk_size``; a chunk steps through
the months holding only arrays of its paths (plus its equity flows, ``months × chunk``, for the IRR), so
memory is bounded by the chunk, not by the number of paths. Chunk ``i`` draws from the ``i``-th child of
``SeedSequence(seed)``, so results depend on the seed and the chunk size, never on how many worker
processes run the chunks.

**Backends.** ``backend="numpy"`` (the default) is the kernel here, run in worker processes. ``"jax"``
(:mod:`.mc_jax`) and ``"torch"`` (:mod:`.mc_torch`) run one shared, branch-free formulation of the same
month (:mod:`.mc_array`) on their device, a GPU where one is visible, else the CPU, chunk after chunk in
this process (larger chunks: 65,536 paths on a CPU, 262,144 on a GPU). Same model, same dtypes
(float64 money states, float32 random pieces), same equity-IRR algorithm; other random numbers (JAX's
and torch's generators, seeded from the ``i``-th child of ``SeedSequence(seed)`` per chunk), so each
backend is reproducible per seed and chunk size, and the backends agree as follows (tested in
``tests/economics/test_montecarlo_backends.py``):

* with all volatilities zero, ``failures: expected`` and ``pipeline: expected``, every path is the
  deterministic projection on every backend: NPVs to 1e-6 of the capex (~1e-15 observed), the equity
  IRR to 1e-5;
* with volatility, at 200,000 paths, within Monte Carlo error: P5/P50/P95 of the project and equity NPV
  within 1% of ``max(|value|, P95 − P5)`` (the difference of two independent runs has a standard error
  of ~0.2% of P95 − P5 there), P5/P50/P95 of the equity IRR within 0.01 (one percentage point),
  P(DSCR < 1), P(cash shortfall), the share of IRRs at the floor and a lessor's default probability
  within 0.01 absolute, a lessor's expected loss within 3% relative. Fewer paths widen these bands as
  ``1/√paths``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from computelease.economics.plan import Plan
from computelease.errors import BadRequest

BACKENDS = ("numpy", "torch", "jax")
DEFAULT_CHUNK = 16_384
IRR_FLOOR = -0.99
IRR_CAP = 10.0
# Annual rates at which the equity IRR is first bracketed.
_GRID_RATES = np.array([-0.99, -0.9, -0.6, -0.2, 0.1, 0.5, 2.0, 10.0])
_REFINE = 4


class BackendUnavailable(BadRequest):
    pass


@dataclass(frozen=True, slots=True)
class Spread:
    p5: float
    p50: float
    p95: float
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> Spread:
        values = values[~np.isnan(values)]
        if not values.size:
            return cls(math.nan, math.nan, math.nan, math.nan)
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        return cls(float(p5), float(p50), float(p95), float(values.mean(dtype=np.float64)))

    def to_dict(self, places: int = 2) -> dict[str, float | None]:
        return {
            k: (None if math.isnan(v) else round(v, places))
            for k, v in (("p5", self.p5), ("p50", self.p50), ("p95", self.p95), ("mean", self.mean))
        }


@dataclass(frozen=True, slots=True)
class LessorRisk:
    instrument: str
    principal: float
    default_probability: float  # a shortfall while the lease is outstanding
    expected_loss: float
    loss_given_default: float | None  # mean loss over defaulting paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "principal": round(self.principal, 2),
            "default_probability": round(self.default_probability, 6),
            "expected_loss": round(self.expected_loss, 2),
            "expected_loss_rate": round(self.expected_loss / self.principal, 6) if self.principal else None,
            "loss_given_default": None
            if self.loss_given_default is None
            else round(self.loss_given_default, 2),
        }


@dataclass(frozen=True, eq=False)
class McResult:
    paths: int
    seed: int
    chunk_size: int
    workers: int
    backend: str
    npv: Spread
    equity_npv: Spread
    equity_irr: Spread
    irr_floored: float  # share of paths at IRR_FLOOR (NPV negative even at −99%)
    irr_capped: float
    p_dscr_below_1: float
    p_cash_shortfall: float
    lessor: tuple[LessorRisk, ...]
    mean_revenue: np.ndarray  # (T,)
    mean_cash: np.ndarray  # (T,)
    elapsed_s: float
    samples: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def path_months_per_s(self) -> float:
        return self.paths * len(self.mean_cash) / self.elapsed_s if self.elapsed_s else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "paths": self.paths,
            "seed": self.seed,
            "chunk_size": self.chunk_size,
            "backend": self.backend,
            "npv": self.npv.to_dict(),
            "equity_npv": self.equity_npv.to_dict(),
            "equity_irr": {
                **self.equity_irr.to_dict(6),
                "floored_share": round(self.irr_floored, 6),
                "capped_share": round(self.irr_capped, 6),
            },
            "p_dscr_below_1": round(self.p_dscr_below_1, 6),
            "p_cash_shortfall": round(self.p_cash_shortfall, 6),
            "lessor": [risk.to_dict() for risk in self.lessor],
        }


# ----------------------------------------------------------------------------------------- the kernel


@dataclass(frozen=True, eq=False)
class Inputs:
    """What a worker needs: the plan's arrays and the risk settings as plain numbers (no Decimals, no
    pydantic models), so it pickles quickly and float32 arithmetic is not widened by numpy scalars.

    The kernel carries cumulative sums per path, and the month's deterministic parts are folded into
    cumulative scalars here (``Σ_{i≤m}``), so each path-month costs few array operations::

        X_m  = Σ revenue                       (net of VAT and credits)
        E_m  = X_m − Σ variable power          (the part of EBIT that varies)
        K_m  = max(K_{m−1}, E_m − ebt_cost_m)   income tax paid to date = t·K_m (losses carried forward)
        Ku_m = max(Ku_{m−1}, E_m − ebit_cost_m) the same on EBIT, for the unlevered project
        P_m  = max(P_{m−1}, X_m − vat_in_m / v) VAT paid to date = v·P_m (input credits carried forward)
        S_m  = (1+v)·X_m − (X_m − E_m) − t·K_m − v·P_m + pre_equity_fixed_m     Σ pre-equity flows
        cash = S_m + planned_m + I_m   where I (owners' unplanned top-ups) grows by min_cash − cash
                                       in a month whose cash would otherwise be below zero
    """

    T: int
    A: int
    cap: list[list[float]]  # [a][m]
    contract_acc: list[int]
    contract_gpus: list[list[float]]  # [c][m]
    contract_fee: list[list[float]]
    win_p: list[float]
    drawn: list[bool]  # won or lost per path
    credit_expected: list[list[float]]
    credit_steps: list[list[float]]  # [c][j]
    credit_threshold: list[list[list[int]]]  # [c][j][m]: a 32-bit draw at or above it is a credit
    poisson: bool
    market_price: list[list[float]]  # [a][m], net of expected downtime
    launches: list[frozenset[int]]
    occupancy: list[float]
    occ_mu: float
    occ_y0: float
    occ_kappa: float
    power_var: list[list[float]]
    ebt_cost: list[float]  # Σ (fixed opex + depreciation + interest + financing fees)
    ebit_cost: list[float]  # Σ (fixed opex + depreciation)
    vat_in: list[float]  # Σ deductible input VAT / v
    vat_in_project: list[float]
    pre_equity_fixed: list[float]  # Σ (− fixed opex − capex + drawdowns − fees − ... − options)
    project_fixed_npv: float  # Σ_m Q_fixed_m · w_m, the unlevered flows' deterministic part
    npv_weight: list[float]  # w_m = df_m − df_{m+1} (df_{T−1} for the last month): NPV by parts
    planned_floor: list[float]  # min_cash − Σ planned equity to date
    planned_equity_cum: list[float]
    dscr_threshold: list[float]  # trailing debt service + trailing fixed flows; NaN where untested
    window: list[int]
    df: list[float]
    market_value_end: list[float]
    book_end: float
    terminal_financing: float
    lease_outstanding: list[list[float]]
    lease_collateral: list[list[list[float]]]  # [l][a][m]
    tax_rate: float
    vat_out: float
    min_cash: float
    tolerance: float
    irr_hint: float  # the deterministic equity IRR, where the per-path search starts
    sigma_p: float
    sigma_o: float
    sigma_j: float
    sigma_r: float
    rho: float
    recovery: float


def inputs_of(plan: Plan) -> Inputs:
    from computelease.economics.projection import _lines, irr, trailing

    risk = plan.scenario.risk
    deterministic = _lines(plan)
    expected = irr(deterministic["_equity_flows"]).value
    fixed_opex = plan.rack + plan.om + plan.insurance + plan.power_fixed
    v = plan.vat_out
    financing = (
        -plan.capex
        + plan.drawdown
        - plan.fees
        - plan.deposits
        + plan.refunds
        - plan.debt_service
        - plan.purchase_options
    )
    pre_fixed = np.cumsum(financing - fixed_opex)
    window = plan.dscr_window
    tested = (plan.debt_service > 0) & (window > 0)
    # trailing CFADS = (S_m − S_{m−w}) − trailing fixed pre-equity flows other than opex; compare it with
    # the trailing debt service.
    threshold = np.where(tested, trailing(plan.debt_service, window) + trailing(financing, window), np.nan)
    T = plan.T
    weight = np.empty(T)
    if T:
        weight[:-1] = plan.df[:-1] - plan.df[1:]
        weight[-1] = plan.df[-1]
    project_fixed = -np.cumsum(fixed_opex + plan.capex)
    planned = np.cumsum(deterministic["equity_in"])
    thresholds = []
    for c in range(len(plan.contract_names)):
        per_tier = []
        for j in range(plan.credit_steps.shape[1]):
            # P(U32 ≥ ⌈cdf·2³²⌉) = 1 − cdf; a threshold of 2³² (cdf = 1) is never reached.
            per_tier.append([min(1 << 32, math.ceil(cdf * 2.0**32)) for cdf in plan.credit_cdf[c, j]])
        thresholds.append(per_tier)
    scale = 1.0 / v if v else 0.0
    return Inputs(
        T=T,
        A=len(plan.accelerators),
        cap=plan.cap_gpus.tolist(),
        contract_acc=plan.contract_acc.tolist(),
        contract_gpus=plan.contract_gpus.tolist(),
        contract_fee=plan.contract_fee.tolist(),
        win_p=plan.win_p.tolist(),
        drawn=[risk.pipeline == "draw" and p < 1.0 for p in plan.win_p.tolist()],
        credit_expected=plan.credit_expected.tolist(),
        credit_steps=plan.credit_steps.tolist(),
        credit_threshold=thresholds,
        poisson=risk.failures == "poisson",
        market_price=(plan.market_price * (1.0 - plan.unavailable)[:, None]).tolist(),
        launches=[frozenset(m) for m in plan.launch_months],
        occupancy=plan.occupancy.tolist(),
        occ_mu=plan.occ_mu,
        occ_y0=plan.occ_y0,
        occ_kappa=plan.occ_kappa,
        power_var=plan.power_var.tolist(),
        ebt_cost=np.cumsum(fixed_opex + plan.depreciation + plan.interest + plan.fees_expense).tolist(),
        ebit_cost=np.cumsum(fixed_opex + plan.depreciation).tolist(),
        vat_in=(np.cumsum(plan.vat_in_owner + plan.vat_in_rents) * scale).tolist(),
        vat_in_project=(np.cumsum(plan.vat_in_equipment) * scale).tolist(),
        pre_equity_fixed=pre_fixed.tolist(),
        project_fixed_npv=float(project_fixed @ weight),
        npv_weight=weight.tolist(),
        planned_floor=(plan.min_cash - planned).tolist(),
        planned_equity_cum=planned.tolist(),
        dscr_threshold=threshold.tolist(),
        window=window.tolist(),
        df=plan.df.tolist(),
        market_value_end=plan.market_value[:, -1].tolist(),
        book_end=float(plan.book_value[-1]),
        terminal_financing=plan.terminal_financing,
        lease_outstanding=plan.lease_outstanding.tolist(),
        lease_collateral=plan.lease_collateral.tolist(),
        tax_rate=plan.tax_rate,
        vat_out=v,
        min_cash=plan.min_cash,
        tolerance=1e-6 * max(1.0, float(plan.capex.sum())),
        irr_hint=0.0 if expected is None else expected,
        sigma_p=float(risk.price_vol),
        sigma_o=float(risk.occupancy_vol),
        sigma_j=float(risk.launch_vol),
        sigma_r=float(risk.residual_vol),
        rho=float(risk.price_occupancy_correlation),
        recovery=float(risk.recovery_rate),
    )


@dataclass(frozen=True, eq=False)
class ChunkOut:
    npv: np.ndarray
    equity_npv: np.ndarray
    equity_irr: np.ndarray
    dscr_low: int
    shortfall: int
    defaults: np.ndarray  # (L,)
    losses: np.ndarray  # (L,) summed
    sum_revenue: np.ndarray
    sum_cash: np.ndarray


_TABLE: np.ndarray | None = None


def normal_table() -> np.ndarray:
    """Φ⁻¹ at the midpoints of 65,536 equal-probability bins, rescaled to unit variance (float32).

    A draw is one entry picked by 16 random bits: the inverse-transform method with a tabulated
    quantile function. It costs a few ns where numpy's ziggurat costs ~45 ns on the reference machine;
    the price is a distribution cut at ±4.4σ with 65,536 levels, which no monthly business figure can
    tell from a normal (the mean is exactly 0 by symmetry, the variance exactly 1 by the rescaling).
    """
    global _TABLE
    if _TABLE is None:
        from statistics import NormalDist

        inv = NormalDist().inv_cdf
        table = np.array([inv((i + 0.5) / 65536.0) for i in range(65536)])
        table /= math.sqrt(np.mean(table**2))
        _TABLE = table.astype(np.float32)
    return _TABLE


class _Draws:
    """Random numbers for one chunk, all from one bit generator so the chunk's seed fixes them."""

    def __init__(self, seed: np.random.SeedSequence, n: int) -> None:
        self.generator = np.random.Generator(np.random.PCG64(seed))
        self.bits = self.generator.bit_generator
        self.n = n
        self.table = normal_table()

    def normal(self, out: np.ndarray | None = None) -> np.ndarray:
        n = self.n
        index = self.bits.random_raw((n + 3) // 4).view(np.uint16)[:n]
        return np.take(self.table, index, out=out, mode="clip")

    def uint32(self) -> np.ndarray:
        n = self.n
        return self.bits.random_raw((n + 1) // 2).view(np.uint32)[:n]

    def uniform(self) -> np.ndarray:
        return self.generator.random(self.n)


class _Workspace:
    """Arrays reused from chunk to chunk within one process. A chunk needs ~20 MB of them; allocated
    afresh each time, glibc hands the large ones back to the kernel and the next chunk faults them in
    again, which cost worker processes a third of a second of system time per million paths."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def take(
        self, name: str, shape: int | tuple[int, ...], dtype: Any, fill: float | None = None
    ) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int) else shape
        array = self.arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self.arrays[name] = np.empty(shape, dtype)
        if fill is not None:
            array.fill(fill)
        return array


_LOCAL = threading.local()  # one workspace per thread: two simulations in one process must not share


def _workspace() -> _Workspace:
    workspace = getattr(_LOCAL, "workspace", None)
    if workspace is None:
        workspace = _LOCAL.workspace = _Workspace()
    return workspace


def simulate_chunk(x: Inputs, seed: np.random.SeedSequence, n: int) -> ChunkOut:
    """Simulate ``n`` paths, stepping through the months; see the module docstring for the model and
    :class:`Inputs` for the cumulative states. Stochastic state (log price, logit occupancy, the month's
    revenue pieces) is float32; the cumulative money states are float64."""
    f4, f8 = np.float32, np.float64
    draws = _Draws(seed, n)
    T, A = x.T, x.A
    C = len(x.contract_fee)
    L = len(x.lease_outstanding)
    sp, so, sj, sr, rho = x.sigma_p, x.sigma_o, x.sigma_j, x.sigma_r, x.rho
    stochastic_price = sp > 0 or sj > 0
    stochastic_occupancy = so > 0
    need_zp = sp > 0 or (stochastic_occupancy and rho != 0)
    rho_c = math.sqrt(max(0.0, 1.0 - rho * rho))
    kappa, mu = x.occ_kappa, x.occ_mu
    t_rate, v = x.tax_rate, x.vat_out
    gross = 1.0 + v
    variable_power = any(any(row) for row in x.power_var)

    # Once per path: pipeline wins and the residual value's own noise.
    weights: list[Any] = list(x.win_p)
    for c in range(C):
        if x.drawn[c]:
            weights[c] = (draws.uniform() < x.win_p[c]).astype(f4)
    residual = None
    if sr > 0:
        residual = draws.normal().astype(f8)
        residual *= sr
        residual -= 0.5 * sr * sr
        np.exp(residual, out=residual)
    workspace = _workspace()
    ws = workspace.take
    log_price = ws("log_price", (A, n), f4, 0.0) if stochastic_price else None
    price_factor = ws("price_factor", (A, n), f4, 1.0) if stochastic_price else None
    y = ws("y", n, f4, x.occ_y0) if stochastic_occupancy else None
    occ = ws("occ", n, f4)
    z = ws("z", n, f4)
    zp = ws("zp", n, f4)
    work4 = ws("work4", n, f4)

    rev = ws("rev", n, f8)
    X = ws("X", n, f8, 0.0)  # Σ revenue
    E = ws("E", n, f8, 0.0) if variable_power else X  # Σ (revenue − variable power)
    K = ws("K", n, f8, 0.0)
    Ku = ws("Ku", n, f8, 0.0)
    P = ws("P", n, f8, 0.0)
    Pu = ws("Pu", n, f8, 0.0)
    S = ws("S", n, f8, 0.0)
    S_prev = ws("S_prev", n, f8, 0.0)
    top = ws("top", n, f8, 0.0)  # I: owners' top-ups to date
    npv = ws("npv", n, f8, 0.0)
    equity_npv = ws("equity_npv", n, f8, 0.0)
    tmp = ws("tmp", n, f8)
    tmp2 = ws("tmp2", n, f8)
    low = ws("low", n, bool)
    shortfall = ws("shortfall", n, bool, False)
    dscr_low = ws("dscr_low", n, bool, False)
    defaulted = ws("defaulted", (L, n), bool, False)
    losses = np.zeros(L)
    flows = ws("flows", (T, n), f4)
    span = max(x.window, default=0)
    ring = ws("ring", (max(span, 1), n), f8, 0.0)  # S of the last `span` months, by month % span
    sum_revenue = np.zeros(T)
    sum_cash = np.zeros(T)

    for m in range(T):
        # -- shocks: the common market shock moves prices and, through ρ, occupancy
        if m and need_zp:
            draws.normal(out=zp)
        if m and sp > 0:
            np.multiply(zp, sp, out=z)
            z -= 0.5 * sp * sp
            log_price += z
        if m and stochastic_occupancy:
            draws.normal(out=z)
            z *= so * rho_c
            z += kappa * mu
            y *= 1.0 - kappa
            y += z
            if rho:
                np.multiply(zp, so * rho, out=z)
                y += z
        if sj > 0:
            for a in range(A):
                if m in x.launches[a]:
                    draws.normal(out=z)
                    z *= sj
                    z -= 0.5 * sj * sj
                    log_price[a] += z
        if stochastic_price:
            np.exp(log_price, out=price_factor)
        if stochastic_occupancy:
            np.negative(y, out=occ)
            np.exp(occ, out=occ)
            occ += 1.0
            np.reciprocal(occ, out=occ)
            occupancy: Any = occ
        else:
            occupancy = x.occupancy[m]

        # -- revenue (net of VAT and SLA credits) = rev + rev_fixed; power that varies with use
        rev_fixed = 0.0
        rev_set = False
        var_opex: Any = 0.0
        demand: list[Any] = [0.0] * A
        for c in range(C):
            g = x.contract_gpus[c][m]
            if g:
                demand[x.contract_acc[c]] = demand[x.contract_acc[c]] + g * weights[c]
        delivered: list[Any] = []
        for a in range(A):
            d = demand[a]
            cap = x.cap[a][m]
            if isinstance(d, np.ndarray):
                share = np.ones(n, f4)
                np.divide(cap, d, out=share, where=d > cap)
                delivered.append(share)
            else:
                delivered.append(1.0 if d <= cap else cap / d)
        for a in range(A):
            cap = x.cap[a][m]
            price = x.market_price[a][m]
            if cap <= 0:
                continue
            d = demand[a]
            free = np.maximum(cap - d, 0.0) if isinstance(d, np.ndarray) else max(cap - d, 0.0)
            var = x.power_var[a][m]
            if var:
                used = np.minimum(d, cap) if isinstance(d, np.ndarray) else min(d, cap)
                var_opex = var_opex + var * (used + free * occupancy) / cap
            if not price:
                continue
            if isinstance(free, np.ndarray) or isinstance(occupancy, np.ndarray) or stochastic_price:
                np.multiply(occupancy, free * price, out=work4)
                if stochastic_price:
                    work4 *= price_factor[a]
                if rev_set:
                    rev += work4
                else:
                    np.copyto(rev, work4)
                    rev_set = True
            else:
                rev_fixed += free * occupancy * price
        if not rev_set:
            rev.fill(0.0)
        for c in range(C):
            fee = x.contract_fee[c][m]
            if not fee:
                continue
            earned = fee * weights[c] * delivered[x.contract_acc[c]]
            expected = x.credit_expected[c][m]
            if isinstance(earned, np.ndarray):
                rev += earned * (1.0 - expected) if not x.poisson else earned
            else:
                rev_fixed += earned * (1.0 - expected) if not x.poisson else earned
            if x.poisson and expected:
                u = draws.uint32()
                for j, step in enumerate(x.credit_steps[c]):
                    threshold = x.credit_threshold[c][j][m]
                    if step and threshold < (1 << 32):
                        np.greater_equal(u, threshold, out=low)
                        if isinstance(earned, np.ndarray):
                            rev -= low * (earned * step)
                        else:
                            np.multiply(low, earned * step, out=tmp)
                            rev -= tmp
        if rev_fixed:
            rev += rev_fixed
        sum_revenue[m] = rev.sum()

        # -- cumulative states: revenue, taxed bases, VAT bases (see Inputs)
        X += rev
        if variable_power:
            E += rev
            E -= var_opex
        if t_rate:
            np.subtract(E, x.ebt_cost[m], out=tmp)
            np.maximum(K, tmp, out=K)
            np.subtract(E, x.ebit_cost[m], out=tmp)
            np.maximum(Ku, tmp, out=Ku)
        if v:
            np.subtract(X, x.vat_in[m], out=tmp)
            np.maximum(P, tmp, out=P)
            np.subtract(X, x.vat_in_project[m], out=tmp)
            np.maximum(Pu, tmp, out=Pu)
        # S = (1+v)·X − (X − E) − t·K − v·P + fixed
        np.multiply(X, gross, out=S)
        if variable_power:
            S -= X
            S += E
        if t_rate:
            np.multiply(K, t_rate, out=tmp)
            S -= tmp
        if v:
            np.multiply(P, v, out=tmp)
            S -= tmp
        S += x.pre_equity_fixed[m]
        np.subtract(S, S_prev, out=flows[m])
        S, S_prev = S_prev, S

        # -- cash: the plan's equity on its dates keeps `min_cash` in hand; the buffer absorbs a path's
        # misses until its cash would run out (below zero): that month is short, and the owners put in
        # what restores the buffer.
        np.subtract(x.planned_floor[m], S_prev, out=tmp)  # min_cash − (S + planned)
        tmp -= top  # min_cash − cash before any top-up this month
        np.greater(tmp, x.min_cash + x.tolerance, out=low)
        shortfall |= low
        tmp *= low
        top += tmp
        sum_cash[m] = S_prev.sum() + top.sum() + n * x.planned_equity_cum[m]
        if L and low.any():
            for li in range(L):
                owed = x.lease_outstanding[li][m]
                if owed <= 0:
                    continue
                new = low & ~defaulted[li]
                if not new.any():
                    continue
                collateral = np.zeros(int(new.sum()))
                for a in range(A):
                    value = x.lease_collateral[li][a][m]
                    if value:
                        collateral += value * (price_factor[a][new] if stochastic_price else 1.0)
                if residual is not None:
                    collateral *= residual[new]
                losses[li] += np.maximum(owed - x.recovery * collateral, 0.0).sum()
                defaulted[li] |= new

        # -- DSCR on trailing months: (S_m − S_{m−w}) against trailing debt service and fixed flows
        if span:
            w = x.window[m]
            threshold = x.dscr_threshold[m]
            if w and threshold == threshold:
                if m - w >= 0:
                    np.subtract(S_prev, ring[(m - w) % span], out=tmp)
                    np.less(tmp, threshold, out=low)
                else:
                    np.less(S_prev, threshold, out=low)
                dscr_low |= low
            ring[m % span] = S_prev

        # -- NPVs by parts: Σ df_m ΔQ_m = Σ Q_m (df_m − df_{m+1}) + Q_{T−1} df_{T−1}
        wm = x.npv_weight[m]
        np.multiply(S_prev, wm, out=tmp)
        equity_npv += tmp
        # the unlevered project's Q: (1+v)·X − (X − E) − t·Ku − v·Pu, its fixed part added at the end
        np.multiply(X, gross * wm, out=tmp)
        if variable_power:
            np.subtract(E, X, out=tmp2)
            tmp2 *= wm
            tmp += tmp2
        if t_rate:
            np.multiply(Ku, t_rate * wm, out=tmp2)
            tmp -= tmp2
        if v:
            np.multiply(Pu, v * wm, out=tmp2)
            tmp -= tmp2
        npv += tmp

    # -- terminal: the fleet at its residual value, the gain over book value taxed
    npv += x.project_fixed_npv
    rv = np.zeros(n, f8)
    for a in range(A):
        if x.market_value_end[a]:
            rv += x.market_value_end[a] * (price_factor[a] if stochastic_price else 1.0)
    if residual is not None:
        rv *= residual
    terminal = rv - t_rate * (rv - x.book_end)
    if T:
        npv += terminal * x.df[T - 1]
        equity_npv += (terminal + x.terminal_financing) * x.df[T - 1]
        flows[T - 1] += terminal + x.terminal_financing
    # The workspace is reused by the next chunk: hand out copies.
    return ChunkOut(
        npv=npv.copy(),
        equity_npv=equity_npv.copy(),
        equity_irr=equity_irr(flows, x.irr_hint, workspace=workspace),
        dscr_low=int(dscr_low.sum()),
        shortfall=int(shortfall.sum()),
        defaults=defaulted.sum(axis=1),
        losses=losses,
        sum_revenue=sum_revenue,
        sum_cash=sum_cash,
    )


def equity_irr(flows: np.ndarray, hint: float = 0.0, *, workspace: _Workspace | None = None) -> np.ndarray:
    """Annual IRR of each column of ``flows`` (months × paths; month ``m`` discounted ``m + 1`` months).

    With ``g = ln(1 + monthly rate)``, ``P(g)`` and ``N(g)`` the discounted positive and negative flows,
    the root of ``h(g) = ln P(g) − ln N(g)`` is the IRR. ``h`` is a difference of log-sum-exps of lines
    in ``g``, nearly straight even where the NPV itself is steep (a near-total loss), so regula falsi
    converges in a few steps where it crawls on the NPV. ``h`` is evaluated on a grid of rates (the
    search starts at ``hint``, the expected rate, and widens only as far as some path needs); the first
    crossing where ``h`` falls through zero brackets the root (the investment-type rate: below it the
    equity is worth more than it costs; flows ending in a payment can have a second, spurious root near
    −100%), else the first where it rises; Illinois steps refine the bracket and a last secant step gives
    the rate. Every evaluation is Horner's rule over the months, in float32, for all paths at once.
    ``IRR_FLOOR`` where ``h`` is negative across the grid, ``IRR_CAP`` where it is positive.
    """
    f4 = np.float32
    T, n = flows.shape
    ws = (workspace or _Workspace()).take
    positive = np.maximum(flows, 0.0, out=ws("irr_positive", (T, n), f4))
    negative = np.minimum(flows, 0.0, out=ws("irr_negative", (T, n), f4))
    np.negative(negative, out=negative)
    p = ws("irr_p", n, f4)
    q = ws("irr_q", n, f4)
    x = ws("irr_x", n, f4)
    tiny = f4(1e-30)

    def h(g: np.ndarray | float) -> np.ndarray:
        if isinstance(g, np.ndarray):
            np.negative(g, out=x)
            np.exp(x, out=x)
        else:
            x.fill(math.exp(-g))
        np.copyto(p, positive[T - 1])
        np.copyto(q, negative[T - 1])
        for m in range(T - 2, -1, -1):
            np.multiply(p, x, out=p)
            np.add(p, positive[m], out=p)
            np.multiply(q, x, out=q)
            np.add(q, negative[m], out=q)
        np.maximum(q, tiny, out=q)
        np.divide(p, q, out=p)
        np.maximum(p, tiny, out=p)
        return np.log(p).astype(np.float64)

    grid = np.log1p(_GRID_RATES) / 12.0
    K = len(grid)
    # Start from the grid cell of the expected rate and widen it only while some path's root lies
    # outside: a calm simulation needs two or three grid evaluations, not all of them.
    i0 = int(np.clip(np.searchsorted(_GRID_RATES, hint), 1, K - 1)) - 1
    i1 = i0 + 1
    values = {i0: h(float(grid[i0])), i1: h(float(grid[i1]))}
    while True:
        window = np.stack([values[i] for i in range(i0, i1 + 1)])
        above = window > 0
        # The investment-type root: the NPV falls through zero as the rate rises (+ → −).
        falling = above[:-1] & ~above[1:]
        settled = falling.any(axis=0)
        grow_down = i0 > 0 and bool((~settled & ~above[0]).any())
        grow_up = i1 < K - 1 and bool((~settled & above[-1]).any())
        if not (grow_down or grow_up):
            break
        if grow_down:
            i0 -= 1
            values[i0] = h(float(grid[i0]))
        if grow_up:
            i1 += 1
            values[i1] = h(float(grid[i1]))
    rising = ~above[:-1] & above[1:]
    # Where no + → − crossing exists, a − → + one (borrowing-type flows) is the rate.
    k = np.where(settled, np.argmax(falling, axis=0), np.argmax(rising, axis=0))
    floored = ~settled & ~rising.any(axis=0) & ~above[0]
    capped = ~settled & ~rising.any(axis=0) & above[0]
    cols = np.arange(n)
    lo, hi = grid[i0 + k], grid[i0 + k + 1]
    h_lo, h_hi = window[k, cols], window[k + 1, cols]
    w_lo, w_hi = h_lo, h_hi  # Illinois-weighted values used for the next point
    kept = np.zeros(n, np.int8)  # which end the last step kept: 1 the high end, −1 the low end
    for _ in range(_REFINE):
        c = _secant(lo, hi, w_lo, w_hi)
        h_c = h(c.astype(f4))
        move_lo = (h_c > 0) == (h_lo > 0)  # the root lies between c and hi
        # Illinois: an end kept twice running has its weight halved, so it moves next time.
        w_hi = np.where(move_lo & (kept == 1), 0.5 * w_hi, w_hi)
        w_lo = np.where(~move_lo & (kept == -1), 0.5 * w_lo, w_lo)
        lo, h_lo, w_lo = np.where(move_lo, c, lo), np.where(move_lo, h_c, h_lo), np.where(move_lo, h_c, w_lo)
        hi, h_hi, w_hi = np.where(move_lo, hi, c), np.where(move_lo, h_hi, h_c), np.where(move_lo, w_hi, h_c)
        kept = np.where(move_lo, 1, -1).astype(np.int8)
    out = np.expm1(12.0 * _secant(lo, hi, h_lo, h_hi))
    out[floored] = IRR_FLOOR
    out[capped] = IRR_CAP
    return out


def _secant(lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray) -> np.ndarray:
    """Where the chord through ``(lo, f_lo)`` and ``(hi, f_hi)`` crosses zero, kept inside ``[lo, hi]``."""
    span = f_hi - f_lo
    flat = span == 0
    c = np.where(flat, 0.5 * (lo + hi), hi - f_hi * (hi - lo) / np.where(flat, 1.0, span))
    return np.clip(c, np.minimum(lo, hi), np.maximum(lo, hi))


# ------------------------------------------------------------------------------------------ the driver

_WORKER_INPUTS: Inputs | None = None


def _init(inputs: Inputs) -> None:
    global _WORKER_INPUTS
    _WORKER_INPUTS = inputs


def _run_chunk(index: int, seed: np.random.SeedSequence, n: int) -> tuple[int, ChunkOut]:
    assert _WORKER_INPUTS is not None
    return index, simulate_chunk(_WORKER_INPUTS, seed, n)


def _fork_safe_context() -> Any:
    """The platform's default start method, unless JAX or torch is loaded in this process: their threads
    make ``fork`` unsafe (a child can deadlock), so the workers are then started by a fork server."""
    if "jax" in sys.modules or "torch" in sys.modules:
        import multiprocessing

        if "forkserver" in multiprocessing.get_all_start_methods():
            return multiprocessing.get_context("forkserver")
    return None


def require_backend(backend: str) -> str:
    """The backend's name, or :class:`BackendUnavailable` in one line when it cannot run here."""
    if backend not in BACKENDS:
        raise BackendUnavailable(f"backend {backend!r} is not known; use one of {', '.join(BACKENDS)}")
    if backend == "numpy":
        return backend
    if importlib.util.find_spec(backend) is None:
        raise BackendUnavailable(
            f"backend {backend!r} is not installed here; "
            f"install it (pip install {backend}) or use --backend numpy"
        )
    return backend


def _array_backend(backend: str) -> Any:
    """The module that runs ``backend`` (:mod:`.mc_jax` or :mod:`.mc_torch`), imported on first use."""
    try:
        if backend == "jax":
            from computelease.economics import mc_jax as module
        else:
            from computelease.economics import mc_torch as module
        module.device()  # imports the library: a broken install fails here, in one line
    except Exception as exc:  # any import or device error means the same to the caller
        raise BackendUnavailable(
            f"backend {backend!r} is installed but does not start ({type(exc).__name__}: {exc}); "
            "use --backend numpy"
        ) from exc
    return module


def simulate(
    plan: Plan,
    *,
    paths: int,
    seed: int = 0,
    workers: int | None = None,
    chunk_size: int | None = None,
    backend: str = "numpy",
    progress: Callable[[int, int], None] | None = None,
    keep_samples: bool = False,
) -> McResult:
    """Simulate ``paths`` paths of ``plan``. With numpy, ``workers`` processes (default: every core) share
    the chunks; jax and torch run the chunks in turn on their device (``workers`` is then 1).
    ``chunk_size`` defaults to :data:`DEFAULT_CHUNK` for numpy and to the backend's own default (larger,
    and larger still on a GPU) otherwise. ``progress(done, total)`` is called as chunks finish."""
    require_backend(backend)
    module = _array_backend(backend) if backend != "numpy" else None
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK if module is None else module.default_chunk()
    if paths < 1:
        raise BadRequest(f"paths must be at least 1, got {paths}")
    if chunk_size < 1:
        raise BadRequest(f"chunk_size must be at least 1, got {chunk_size}")
    workers = workers or os.cpu_count() or 1
    began = time.perf_counter()
    inputs = inputs_of(plan)
    sizes = [min(chunk_size, paths - lo) for lo in range(0, paths, chunk_size)]
    results: list[ChunkOut | None] = [None] * len(sizes)
    done = 0
    workers = min(workers, len(sizes))
    if module is not None:
        workers = 1
        results = list(
            module.simulate_chunks(
                inputs, seed, sizes, progress=(lambda d: progress(d, paths)) if progress else None
            )
        )
    elif workers <= 1:
        seeds = np.random.SeedSequence(seed).spawn(len(sizes))
        for i, (s, n) in enumerate(zip(seeds, sizes, strict=True)):
            results[i] = simulate_chunk(inputs, s, n)
            done += n
            if progress:
                progress(done, paths)
    else:
        seeds = np.random.SeedSequence(seed).spawn(len(sizes))
        with ProcessPoolExecutor(
            max_workers=workers, initializer=_init, initargs=(inputs,), mp_context=_fork_safe_context()
        ) as pool:
            futures = [
                pool.submit(_run_chunk, i, s, n) for i, (s, n) in enumerate(zip(seeds, sizes, strict=True))
            ]
            for future in as_completed(futures):
                i, out = future.result()
                results[i] = out
                done += sizes[i]
                if progress:
                    progress(done, paths)
    chunks = [r for r in results if r is not None]
    npv = np.concatenate([r.npv for r in chunks])
    equity_npv = np.concatenate([r.equity_npv for r in chunks])
    irr = np.concatenate([r.equity_irr for r in chunks])
    defaults = sum((r.defaults for r in chunks), np.zeros(len(plan.lease_names)))
    losses = sum((r.losses for r in chunks), np.zeros(len(plan.lease_names)))
    lessor = tuple(
        LessorRisk(
            instrument=name,
            principal=float(plan.lease_principal[i]),
            default_probability=float(defaults[i]) / paths,
            expected_loss=float(losses[i]) / paths,
            loss_given_default=float(losses[i] / defaults[i]) if defaults[i] else None,
        )
        for i, name in enumerate(plan.lease_names)
    )
    elapsed = time.perf_counter() - began
    samples = {"npv": npv, "equity_npv": equity_npv, "equity_irr": irr} if keep_samples else {}
    return McResult(
        paths=paths,
        seed=seed,
        chunk_size=chunk_size,
        workers=workers,
        backend=backend,
        npv=Spread.of(npv),
        equity_npv=Spread.of(equity_npv),
        equity_irr=Spread.of(irr),
        irr_floored=float(np.mean(irr <= IRR_FLOOR)),
        irr_capped=float(np.mean(irr >= IRR_CAP)),
        p_dscr_below_1=sum(r.dscr_low for r in chunks) / paths,
        p_cash_shortfall=sum(r.shortfall for r in chunks) / paths,
        lessor=lessor,
        mean_revenue=sum((r.sum_revenue for r in chunks), np.zeros(plan.T)) / paths,
        mean_cash=sum((r.sum_cash for r in chunks), np.zeros(plan.T)) / paths,
        elapsed_s=elapsed,
        samples=samples,
    )
