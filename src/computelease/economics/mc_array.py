"""The Monte Carlo kernel written once for the array backends (JAX and torch, :mod:`.mc_jax` and
:mod:`.mc_torch`): the model of :mod:`.montecarlo`, one month a step, as pure functions of arrays.

The numpy kernel (:func:`.montecarlo.simulate_chunk`) is tuned for a CPU: in-place updates into reused
buffers, Python branches on whatever is a plain number this month. Here every per-month input of the
plan is a row of a ``(T, …)`` array (:class:`Months`), every branch that does not depend on the month is
decided once from :class:`Static`, and :func:`step` maps ``(state, month, draws)`` to the next state
with no in-place update, so JAX can ``lax.scan`` it under ``jit`` and torch can call it in a loop on a
GPU. A backend supplies :class:`Ops`: a handful of array functions whose names and dtype rules differ
between ``jax.numpy`` and ``torch`` (everything else is written with operators), and the draws.

Dtypes follow the numpy kernel: log price, logit occupancy, the demand shares and the month's revenue
pieces are float32 where anything about them is random (float64 when they are the plan's numbers, so a
path with all volatilities zero is the projection to ~1e-9, as numpy's is); the cumulative money states,
the NPVs and the IRR's final rate are float64. Binary operations never mix float32 arrays with float64
arrays implicitly (JAX and torch promote 0-d arrays differently): the per-month rows are cast first.

Randomness is the backend's (``jax.random`` or ``torch.Generator``): the same model, other draws. Draws
are true normals (the numpy kernel uses a 65,536-level quantile table, indistinguishable at any
business figure), credits compare 32 random bits with the same thresholds, pipeline wins compare a
uniform with the win probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from computelease.economics.montecarlo import _GRID_RATES, _REFINE, IRR_CAP, IRR_FLOOR, Inputs

Array = Any

# Tags of the draws within a month (JAX folds them into the month's key; torch draws in this order).
TAG_PRICE, TAG_OCCUPANCY, TAG_LAUNCH, TAG_CREDIT = 0, 1, 2, 3
TAG_WIN, TAG_RESIDUAL = 0, 1


class Draws(Protocol):
    def normal(self, tag: int, shape: tuple[int, ...]) -> Array: ...  # float32

    def bits(self, tag: int, shape: tuple[int, ...]) -> Array: ...  # int64 in [0, 2³²)

    def uniform(self, tag: int, shape: tuple[int, ...]) -> Array: ...  # float64 in [0, 1)


class Ops(Protocol):
    f32: Any
    f64: Any

    def cast(self, a: Array, dtype: Any) -> Array: ...

    def full(self, shape: tuple[int, ...], value: float, dtype: Any) -> Array: ...

    def where(self, cond: Array, a: Array, b: Array) -> Array: ...

    def maximum(self, a: Array, b: Array) -> Array: ...  # same dtypes, or b a Python number

    def minimum(self, a: Array, b: Array) -> Array: ...

    def exp(self, a: Array) -> Array: ...

    def log(self, a: Array) -> Array: ...

    def expm1(self, a: Array) -> Array: ...

    def clip(self, a: Array, lo: Array, hi: Array) -> Array: ...

    def sum(self, a: Array, axis: int | None = None) -> Array: ...

    def stack(self, arrays: list[Array]) -> Array: ...

    def row(self, a: Array, i: Array) -> Array: ...

    def set_row(self, a: Array, i: Array, value: Array) -> Array: ...

    def any(self, a: Array, axis: int) -> Array: ...

    def argmax(self, a: Array, axis: int) -> Array: ...

    def arange(self, n: int) -> Array: ...

    def from_numpy(self, a: np.ndarray) -> Array: ...

    def irr_h(self, positive: Array, negative: Array, x: Array) -> Array:
        """``ln(Σ_m positive_m x^m) − ln(Σ_m negative_m x^m)`` (float64) by Horner's rule in float32,
        for ``x = e^{−g}`` (float32) of shape ``(n,)`` or ``(K, 1)`` (then the result is ``(K, n)``)."""
        ...


@dataclass(frozen=True, slots=True)
class Static:
    """What does not change from month to month: shapes, volatilities, which parts are random."""

    T: int
    A: int
    C: int
    L: int
    J: int
    contract_acc: tuple[int, ...]
    drawn: tuple[bool, ...]
    win_p: tuple[float, ...]
    credit_steps: tuple[tuple[float, ...], ...]
    poisson: bool
    sp: float
    so: float
    sj: float
    sr: float
    rho: float
    rho_c: float
    kappa: float
    mu: float
    y0: float
    t_rate: float
    v: float
    variable_power: bool
    stochastic_price: bool
    stochastic_occupancy: bool
    any_drawn: bool
    need_zp: bool
    span: int
    min_cash: float
    tolerance: float
    recovery: float
    project_fixed_npv: float
    market_value_end: tuple[float, ...]
    book_end: float
    terminal_financing: float
    df_last: float
    irr_hint: float

    @property
    def random_revenue(self) -> bool:
        """Whether the month's revenue pieces vary by path (then they are float32, as in numpy)."""
        return self.stochastic_price or self.stochastic_occupancy or self.any_drawn or self.poisson


def chunk_seeds(seed: int, count: int) -> list[int]:
    """63-bit seeds, one per chunk, from the children of ``SeedSequence(seed)`` (JAX and torch alike)."""
    return [
        int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))
        for child in np.random.SeedSequence(seed).spawn(count)
    ]


def static_of(x: Inputs) -> Static:
    C = len(x.contract_fee)
    stochastic_price = x.sigma_p > 0 or x.sigma_j > 0
    stochastic_occupancy = x.sigma_o > 0
    return Static(
        T=x.T,
        A=x.A,
        C=C,
        L=len(x.lease_outstanding),
        J=len(x.credit_steps[0]) if C else 0,
        contract_acc=tuple(x.contract_acc),
        drawn=tuple(x.drawn),
        win_p=tuple(x.win_p),
        credit_steps=tuple(tuple(row) for row in x.credit_steps),
        poisson=x.poisson and any(any(row) for row in x.credit_expected),
        sp=x.sigma_p,
        so=x.sigma_o,
        sj=x.sigma_j,
        sr=x.sigma_r,
        rho=x.rho,
        rho_c=math.sqrt(max(0.0, 1.0 - x.rho * x.rho)),
        kappa=x.occ_kappa,
        mu=x.occ_mu,
        y0=x.occ_y0,
        t_rate=x.tax_rate,
        v=x.vat_out,
        variable_power=any(any(row) for row in x.power_var),
        stochastic_price=stochastic_price,
        stochastic_occupancy=stochastic_occupancy,
        any_drawn=any(x.drawn),
        need_zp=x.sigma_p > 0 or (stochastic_occupancy and x.rho != 0),
        span=max(x.window, default=0),
        min_cash=x.min_cash,
        tolerance=x.tolerance,
        recovery=x.recovery,
        project_fixed_npv=x.project_fixed_npv,
        market_value_end=tuple(x.market_value_end),
        book_end=x.book_end,
        terminal_financing=x.terminal_financing,
        df_last=x.df[-1] if x.T else 0.0,
        irr_hint=x.irr_hint,
    )


def months_of(x: Inputs) -> dict[str, np.ndarray]:
    """The plan's per-month inputs as numpy arrays with the month first (what ``lax.scan`` steps over)."""
    T, A = x.T, x.A
    C, L = len(x.contract_fee), len(x.lease_outstanding)
    J = len(x.credit_steps[0]) if C else 0
    span = max(x.window, default=0)
    m = np.arange(T)
    window = np.asarray(x.window, np.int64).reshape(T)
    threshold = np.asarray(x.dscr_threshold, np.float64).reshape(T)
    tested = (window > 0) & ~np.isnan(threshold)

    def table(rows: list, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(rows, np.float64).reshape(shape)

    return {
        "first": (m == 0),
        "cap": table(x.cap, (A, T)).T.copy(),
        "market_price": table(x.market_price, (A, T)).T.copy(),
        "power_var": table(x.power_var, (A, T)).T.copy(),
        "launch": np.array([[mi in x.launches[a] for a in range(A)] for mi in range(T)], bool).reshape(T, A),
        "occupancy": table(x.occupancy, (T,)),
        "gpus": table(x.contract_gpus, (C, T)).T.copy(),
        "fee": table(x.contract_fee, (C, T)).T.copy(),
        "credit_expected": table(x.credit_expected, (C, T)).T.copy(),
        "credit_threshold": np.asarray(x.credit_threshold, np.int64)
        .reshape(C, J, T)
        .transpose(2, 0, 1)
        .copy(),
        "ebt_cost": table(x.ebt_cost, (T,)),
        "ebit_cost": table(x.ebit_cost, (T,)),
        "vat_in": table(x.vat_in, (T,)),
        "vat_in_project": table(x.vat_in_project, (T,)),
        "pre_equity_fixed": table(x.pre_equity_fixed, (T,)),
        "planned_floor": table(x.planned_floor, (T,)),
        "planned_equity_cum": table(x.planned_equity_cum, (T,)),
        "npv_weight": table(x.npv_weight, (T,)),
        "dscr_tested": tested,
        "dscr_threshold": np.where(tested, threshold, 0.0),
        # the ring of the last `span` months' S: read month m − w (zero before the first month), write m
        "ring_read": (m - window) % max(span, 1),
        "ring_read_valid": m - window >= 0,
        "ring_write": m % max(span, 1),
        "lease_outstanding": table(x.lease_outstanding, (L, T)).T.copy(),
        "lease_collateral": table(x.lease_collateral, (L, A, T)).transpose(2, 0, 1).copy(),
    }


def init(ops: Ops, st: Static, draws: Draws, n: int) -> dict[str, Array]:
    """The state before the first month, with the once-per-path draws: pipeline wins and residual noise."""
    f4, f8 = ops.f32, ops.f64
    wins = []
    win_u = draws.uniform(TAG_WIN, (max(st.C, 1), n))
    for c in range(st.C):
        wins.append(ops.cast(win_u[c] < st.win_p[c], f4) if st.drawn[c] else None)
    state: dict[str, Array] = {
        "wins": wins,
        "log_price": ops.full((st.A, n), 0.0, f4),
        "y": ops.full((n,), st.y0, f4),
        "residual": None,
    }
    if st.sr > 0:
        z = ops.cast(draws.normal(TAG_RESIDUAL, (n,)), f8)
        state["residual"] = ops.exp(z * st.sr - 0.5 * st.sr * st.sr)
    zero = ops.full((n,), 0.0, f8)
    for name in ("X", "E", "K", "Ku", "P", "Pu", "S", "top", "npv", "equity_npv"):
        state[name] = zero
    no = ops.full((n,), 0.0, f8) < 0.0
    state["shortfall"] = no
    state["dscr_low"] = no
    state["defaulted"] = ops.full((max(st.L, 1), n), 0.0, f8) < 0.0
    state["losses"] = ops.full((max(st.L, 1),), 0.0, f8)
    state["ring"] = ops.full((max(st.span, 1), n), 0.0, f8)
    return state


CARRIED = (
    "log_price",
    "y",
    "X",
    "E",
    "K",
    "Ku",
    "P",
    "Pu",
    "S",
    "top",
    "npv",
    "equity_npv",
    "shortfall",
    "dscr_low",
    "defaulted",
    "losses",
    "ring",
)


def step(
    ops: Ops, st: Static, fixed: dict[str, Array], state: dict[str, Array], mo: dict[str, Array], draws: Draws
) -> tuple[dict[str, Array], tuple[Array, Array, Array]]:
    """One month for every path of the chunk: ``(state, month's row of the plan, draws) → (state, (flow
    to equity, Σ revenue, Σ cash))``. ``fixed`` holds what :func:`init` drew once per path (wins, residual)
    and the mask of real (not padding) paths. See :func:`.montecarlo.simulate_chunk` for the same month,
    written for numpy."""
    f4, f8 = ops.f32, ops.f64
    A, C, L = st.A, st.C, st.L
    later = ~mo["first"]
    valid = fixed["valid"]
    n_valid = fixed["n_valid"]
    fw = f4 if st.random_revenue else f8  # dtype of the month's revenue pieces

    # -- shocks: the common market shock moves prices and, through ρ, occupancy
    log_price, y = state["log_price"], state["y"]
    zp = draws.normal(TAG_PRICE, (log_price.shape[1],)) if st.need_zp else None
    if st.sp > 0:
        shock = zp * st.sp - 0.5 * st.sp * st.sp
        log_price = ops.where(later, log_price + shock, log_price)
    if st.stochastic_occupancy:
        moved = y * (1.0 - st.kappa) + (
            draws.normal(TAG_OCCUPANCY, y.shape) * (st.so * st.rho_c) + st.kappa * st.mu
        )
        if st.rho:
            moved = moved + zp * (st.so * st.rho)
        y = ops.where(later, moved, y)
    if st.sj > 0:
        jump = draws.normal(TAG_LAUNCH, log_price.shape) * st.sj - 0.5 * st.sj * st.sj
        log_price = log_price + ops.where(mo["launch"][:, None], jump, 0.0)
    price_factor = ops.exp(log_price) if st.stochastic_price else None
    occupancy = 1.0 / (1.0 + ops.exp(-y)) if st.stochastic_occupancy else ops.cast(mo["occupancy"], fw)

    # -- demand per accelerator and the share of it that capacity delivers
    demand: list[Any] = [0.0] * A
    for c in range(C):
        g = ops.cast(mo["gpus"][c], fw)
        wins = fixed["wins"][c]
        demand[st.contract_acc[c]] = demand[st.contract_acc[c]] + (
            g * wins if wins is not None else g * st.win_p[c]
        )
    delivered = []
    rev: Any = 0.0
    var_opex: Any = 0.0
    for a in range(A):
        cap = ops.cast(mo["cap"][a], fw)
        d = demand[a] + 0.0 * cap
        safe_d = ops.where(d > cap, d, cap + 1.0)
        delivered.append(ops.where(d > cap, cap / safe_d, 1.0))
        has_cap = cap > 0
        safe_cap = ops.where(has_cap, cap, 1.0)
        free = ops.maximum(cap - d, 0.0)
        used = ops.minimum(d, cap)
        var = ops.cast(mo["power_var"][a], fw)
        var_opex = var_opex + ops.where(has_cap, var * (used + free * occupancy) / safe_cap, 0.0)
        market = occupancy * (free * ops.cast(mo["market_price"][a], fw))
        if price_factor is not None:
            market = market * price_factor[a]
        rev = rev + ops.where(has_cap, market, 0.0)

    # -- contract fees, less SLA credits: expected ones, or tiers drawn per path
    credit_bits = draws.bits(TAG_CREDIT, (C, log_price.shape[1])) if st.poisson else None
    for c in range(C):
        earned = ops.cast(mo["fee"][c], fw) * delivered[st.contract_acc[c]]
        wins = fixed["wins"][c]
        earned = earned * wins if wins is not None else earned * st.win_p[c]
        if not st.poisson:
            rev = rev + earned * (1.0 - ops.cast(mo["credit_expected"][c], fw))
            continue
        rev = rev + earned
        for j, step_ in enumerate(st.credit_steps[c]):
            if step_:
                hit = credit_bits[c] >= mo["credit_threshold"][c, j]
                rev = rev - ops.where(hit, earned * step_, 0.0)
    n = log_price.shape[1]
    rev = ops.cast(rev + ops.full((n,), 0.0, fw), f8)
    var_opex = ops.cast(var_opex + ops.full((n,), 0.0, fw), f8)
    sum_revenue = ops.sum(ops.where(valid, rev, 0.0))

    # -- cumulative states: revenue, taxed bases, VAT bases (see montecarlo.Inputs)
    X = state["X"] + rev
    E = state["E"] + rev - var_opex if st.variable_power else X
    K, Ku, P, Pu = state["K"], state["Ku"], state["P"], state["Pu"]
    if st.t_rate:
        K = ops.maximum(K, E - mo["ebt_cost"])
        Ku = ops.maximum(Ku, E - mo["ebit_cost"])
    if st.v:
        P = ops.maximum(P, X - mo["vat_in"])
        Pu = ops.maximum(Pu, X - mo["vat_in_project"])
    S = X * (1.0 + st.v) - (X - E) - K * st.t_rate - P * st.v + mo["pre_equity_fixed"]
    flow = ops.cast(S - state["S"], f4)

    # -- cash: a path is short in a month whose cash would fall below zero; the owners restore min_cash
    gap = mo["planned_floor"] - S - state["top"]  # min_cash − cash before any top-up this month
    low = gap > st.min_cash + st.tolerance
    shortfall = state["shortfall"] | low
    top = state["top"] + ops.where(low, gap, 0.0)
    sum_cash = ops.sum(ops.where(valid, S + top, 0.0)) + n_valid * mo["planned_equity_cum"]

    # -- a lessor's loss at the lessee's first shortfall while the lease is outstanding
    defaulted, losses = state["defaulted"], state["losses"]
    if L:
        rows_d, rows_l = [], []
        for li in range(L):
            owed = mo["lease_outstanding"][li]
            new = low & ~defaulted[li] & (owed > 0) & valid
            collateral = ops.full((n,), 0.0, f8)
            for a in range(A):
                value = mo["lease_collateral"][li, a]
                if price_factor is not None:
                    collateral = collateral + value * ops.cast(price_factor[a], f8)
                else:
                    collateral = collateral + value
            if fixed["residual"] is not None:
                collateral = collateral * fixed["residual"]
            loss = ops.maximum(owed - collateral * st.recovery, 0.0)
            rows_l.append(losses[li] + ops.sum(ops.where(new, loss, 0.0)))
            rows_d.append(defaulted[li] | new)
        defaulted, losses = ops.stack(rows_d), ops.stack(rows_l)

    # -- DSCR on trailing months: (S_m − S_{m−w}) against trailing debt service and fixed flows
    ring, dscr_low = state["ring"], state["dscr_low"]
    if st.span:
        before = ops.row(ring, mo["ring_read"])
        trailing = S - ops.where(mo["ring_read_valid"], before, 0.0)
        dscr_low = dscr_low | (mo["dscr_tested"] & (trailing < mo["dscr_threshold"]))
        ring = ops.set_row(ring, mo["ring_write"], S)

    # -- NPVs by parts: Σ df_m ΔQ_m = Σ Q_m (df_m − df_{m+1}) + Q_{T−1} df_{T−1}
    wm = mo["npv_weight"]
    equity_npv = state["equity_npv"] + S * wm
    project = X * (1.0 + st.v) + (E - X) - Ku * st.t_rate - Pu * st.v
    npv = state["npv"] + project * wm

    new_state = {
        "log_price": log_price,
        "y": y,
        "X": X,
        "E": E,
        "K": K,
        "Ku": Ku,
        "P": P,
        "Pu": Pu,
        "S": S,
        "top": top,
        "npv": npv,
        "equity_npv": equity_npv,
        "shortfall": shortfall,
        "dscr_low": dscr_low,
        "defaulted": defaulted,
        "losses": losses,
        "ring": ring,
    }
    return new_state, (flow, sum_revenue, sum_cash)


def terminal(ops: Ops, st: Static, fixed: dict[str, Array], state: dict[str, Array]) -> dict[str, Array]:
    """The fleet at its residual value, the gain over book value taxed; the per-chunk totals."""
    f8 = ops.f64
    valid = fixed["valid"]
    n = state["npv"].shape[0]
    rv = ops.full((n,), 0.0, f8)
    for a in range(st.A):
        value = st.market_value_end[a]
        if value:
            rv = rv + (value * ops.cast(ops.exp(state["log_price"][a]), f8) if st.stochastic_price else value)
    if fixed["residual"] is not None:
        rv = rv * fixed["residual"]
    end = rv - (rv - st.book_end) * st.t_rate
    npv = state["npv"] + st.project_fixed_npv + end * st.df_last
    equity_end = end + st.terminal_financing
    return {
        "npv": npv,
        "equity_npv": state["equity_npv"] + equity_end * st.df_last,
        "equity_end": equity_end,  # added to the last month's flow
        "dscr_low": ops.sum(ops.cast(state["dscr_low"] & valid, f8)),
        "shortfall": ops.sum(ops.cast(state["shortfall"] & valid, f8)),
        "defaults": ops.sum(ops.cast(state["defaulted"], f8), axis=1),
        "losses": state["losses"],
    }


# ------------------------------------------------------------------------------------ equity IRR


def equity_irr(ops: Ops, flows: Array, hint: float = 0.0, valid: Array | None = None) -> Array:
    """Annual IRR of each column of ``flows`` (months × paths, float32): :func:`.montecarlo.equity_irr`
    without a data-dependent branch, so JAX can ``jit`` it whole and torch runs it without waiting for
    the GPU. ``h`` is evaluated at all 8 grid rates in one pass over the months; the numpy version's
    widening of the window around the expected rate is replayed on those values (at most 6 rounds, each
    a no-op once the window is settled), so the chosen crossing, the Illinois steps and the secant step
    are the numpy version's. ``valid`` masks padding columns out of the widening decisions."""
    f32, f64 = ops.f32, ops.f64
    positive = ops.maximum(flows, 0.0)
    negative = -ops.minimum(flows, 0.0)
    n = flows.shape[1]
    ok = valid if valid is not None else ops.full((n,), 1.0, f64) > 0

    def h(x: Array) -> Array:
        return ops.irr_h(positive, negative, x)

    rates = np.log1p(_GRID_RATES) / 12.0
    K = len(rates)
    grid = ops.from_numpy(rates)
    values = h(ops.from_numpy(np.exp(-rates).astype(np.float32)[:, None]))  # (K, n)
    above = values > 0
    falling = above[:-1] & ~above[1:]  # pair p: grid points p and p + 1
    rising = ~above[:-1] & above[1:]
    pair = ops.from_numpy(np.arange(K - 1))
    start = int(np.clip(np.searchsorted(_GRID_RATES, hint), 1, K - 1)) - 1
    i0 = ops.from_numpy(np.array(start))
    i1 = i0 + 1

    def settled_in(i0: Array, i1: Array) -> tuple[Array, Array, Array]:
        inside = ((pair >= i0) & (pair + 1 <= i1))[:, None]
        return falling & inside, rising & inside, ops.any(falling & inside, 0)

    for _ in range(K - 2):
        _, _, settled = settled_in(i0, i1)
        open_ = ~settled & ok
        grow_down = (i0 > 0) & ops.any(open_ & ~ops.row(above, i0), 0)
        grow_up = (i1 < K - 1) & ops.any(open_ & ops.row(above, i1), 0)
        i0 = ops.where(grow_down, i0 - 1, i0)
        i1 = ops.where(grow_up, i1 + 1, i1)
    fall_in, rise_in, settled = settled_in(i0, i1)
    # The investment-type root (+ → −) where there is one, else a − → + crossing (borrowing-type flows).
    k = ops.where(settled, ops.argmax(fall_in, 0), ops.argmax(rise_in, 0))
    no_rise = ~ops.any(rise_in, 0)
    first_above = ops.row(above, i0)
    floored = ~settled & no_rise & ~first_above
    capped = ~settled & no_rise & first_above
    cols = ops.arange(n)
    lo, hi = grid[k], grid[k + 1]
    h_lo, h_hi = values[k, cols], values[k + 1, cols]
    w_lo, w_hi = h_lo, h_hi
    kept = ops.full((n,), 0.0, f64)  # 1 the high end was kept, −1 the low end, 0 neither yet
    for _ in range(_REFINE):
        c = _secant(ops, lo, hi, w_lo, w_hi)
        h_c = h(ops.exp(-ops.cast(c, f32)))
        move_lo = (h_c > 0) == (h_lo > 0)  # the root lies between c and hi
        w_hi = ops.where(move_lo & (kept == 1), 0.5 * w_hi, w_hi)
        w_lo = ops.where(~move_lo & (kept == -1), 0.5 * w_lo, w_lo)
        lo, h_lo, w_lo = (
            ops.where(move_lo, c, lo),
            ops.where(move_lo, h_c, h_lo),
            ops.where(move_lo, h_c, w_lo),
        )
        hi, h_hi, w_hi = (
            ops.where(move_lo, hi, c),
            ops.where(move_lo, h_hi, h_c),
            ops.where(move_lo, w_hi, h_c),
        )
        kept = ops.where(move_lo, 1.0, -1.0)
    out = ops.expm1(_secant(ops, lo, hi, h_lo, h_hi) * 12.0)
    out = ops.where(floored, IRR_FLOOR, out)
    return ops.where(capped, IRR_CAP, out)


def _secant(ops: Ops, lo: Array, hi: Array, f_lo: Array, f_hi: Array) -> Array:
    """Where the chord through ``(lo, f_lo)`` and ``(hi, f_hi)`` crosses zero, kept inside ``[lo, hi]``."""
    span = f_hi - f_lo
    flat = span == 0
    c = ops.where(flat, 0.5 * (lo + hi), hi - f_hi * (hi - lo) / ops.where(flat, 1.0, span))
    return ops.clip(c, ops.minimum(lo, hi), ops.maximum(lo, hi))
