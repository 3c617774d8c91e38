"""The JAX backend of the Monte Carlo engine: :mod:`.mc_array`'s kernel, months stepped with
``jax.lax.scan`` inside one ``jax.jit`` per chunk, on whatever device JAX finds first (a GPU where
``jax[cuda]`` is installed, else the CPU).

Float64 is switched on for the run only (``jax.enable_x64``, scoped: the caller's JAX settings are
left as they were); the money states are float64 and the random pieces float32, as in numpy.

Randomness: chunk ``i`` uses the key ``jax.random.key(s_i)`` with ``s_i`` from the ``i``-th child of
``numpy.random.SeedSequence(seed)`` (the numpy backend's chunk seeds); the once-per-path draws fold in
0, month ``m``'s draws fold in ``m + 1``, and each kind of draw folds in its tag. So results are
reproducible per seed and chunk size, but they are not the numpy backend's draws: the backends agree
within Monte Carlo error (see :mod:`.montecarlo` for the stated tolerance), and exactly (to ~1e-9) on
the deterministic paths.

Every chunk has the first chunk's size (the last one is padded, its padding masked out of every sum),
so ``jit`` compiles once per run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from computelease.economics import mc_array
from computelease.economics.mc_array import CARRIED, Static
from computelease.economics.montecarlo import ChunkOut, Inputs

CPU_CHUNK = 65_536
GPU_CHUNK = 262_144


def available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def device() -> str:
    import jax

    return str(jax.devices()[0].platform)


def default_chunk() -> int:
    return GPU_CHUNK if device() != "cpu" else CPU_CHUNK


@contextlib.contextmanager
def x64() -> Iterator[None]:
    """Float64 on for the block, as it was after (``jax.enable_x64``; ``jax.experimental.enable_x64``
    before JAX 0.6)."""
    import jax

    scoped = getattr(jax, "enable_x64", None)
    if scoped is not None and callable(scoped):
        with scoped(True):
            yield
        return
    from jax.experimental import enable_x64  # type: ignore[attr-defined]

    with enable_x64():
        yield


class JaxOps:
    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.f32, self.f64 = jnp.float32, jnp.float64

    def cast(self, a: Any, dtype: Any) -> Any:
        return self.jnp.asarray(a).astype(dtype)

    def full(self, shape: tuple[int, ...], value: float, dtype: Any) -> Any:
        return self.jnp.full(shape, value, dtype)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.jnp.where(cond, a, b)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.jnp.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return self.jnp.minimum(a, b)

    def exp(self, a: Any) -> Any:
        return self.jnp.exp(a)

    def log(self, a: Any) -> Any:
        return self.jnp.log(a)

    def expm1(self, a: Any) -> Any:
        return self.jnp.expm1(a)

    def clip(self, a: Any, lo: Any, hi: Any) -> Any:
        return self.jnp.clip(a, lo, hi)

    def sum(self, a: Any, axis: int | None = None) -> Any:
        return self.jnp.sum(a, axis=axis)

    def stack(self, arrays: list[Any]) -> Any:
        return self.jnp.stack(arrays)

    def row(self, a: Any, i: Any) -> Any:
        return a[i]

    def set_row(self, a: Any, i: Any, value: Any) -> Any:
        return a.at[i].set(value)

    def any(self, a: Any, axis: int) -> Any:
        return self.jnp.any(a, axis=axis)

    def argmax(self, a: Any, axis: int) -> Any:
        return self.jnp.argmax(a, axis=axis)

    def arange(self, n: int) -> Any:
        return self.jnp.arange(n)

    def from_numpy(self, a: np.ndarray) -> Any:
        return self.jnp.asarray(a)

    def irr_h(self, positive: Any, negative: Any, x: Any) -> Any:
        return _horner_log_ratio(positive, negative, x)


def _horner_log_ratio(positive: Any, negative: Any, x: Any) -> Any:
    """``ln(Σ positive_m x^m / Σ negative_m x^m)`` per column, by Horner's rule from the last month."""
    import jax
    import jax.numpy as jnp

    def back(carry: Any, rows: Any) -> Any:
        p, q = carry
        pos, neg = rows
        return (p * x + pos, q * x + neg), None

    start = (positive[-1] + 0 * x, negative[-1] + 0 * x)  # (n,), or (K, n) for a column of x
    (p, q), _ = jax.lax.scan(back, start, (positive[:-1], negative[:-1]), reverse=True)
    tiny = jnp.float32(1e-30)
    ratio = jnp.maximum(p / jnp.maximum(q, tiny), tiny)
    return jnp.log(ratio).astype(jnp.float64)


class _Draws:
    """Draws of one month (or of the once-per-path draws): each kind from its own key, folded in."""

    def __init__(self, key: Any) -> None:
        import jax
        import jax.numpy as jnp

        self.random, self.jnp, self.key = jax.random, jnp, key

    def normal(self, tag: int, shape: tuple[int, ...]) -> Any:
        return self.random.normal(self.random.fold_in(self.key, tag), shape, self.jnp.float32)

    def bits(self, tag: int, shape: tuple[int, ...]) -> Any:
        raw = self.random.bits(self.random.fold_in(self.key, tag), shape, self.jnp.uint32)
        return raw.astype(self.jnp.int64)

    def uniform(self, tag: int, shape: tuple[int, ...]) -> Any:
        return self.random.uniform(self.random.fold_in(self.key, tag), shape, self.jnp.float64)


@lru_cache(maxsize=16)
def _compiled(st: Static, n: int) -> Callable[..., Any]:
    """The chunk as one jitted function of (per-month rows, key, number of real paths)."""
    import jax
    import jax.numpy as jnp

    ops = JaxOps()

    def run(months: dict[str, Any], key: Any, n_valid: Any) -> Any:
        state = mc_array.init(ops, st, _Draws(jax.random.fold_in(key, 0)), n)
        fixed = {
            "wins": state["wins"],
            "residual": state["residual"],
            "valid": jnp.arange(n) < n_valid,
            "n_valid": n_valid.astype(jnp.float64),
        }
        carry = {name: state[name] for name in CARRIED}

        def body(carry: dict[str, Any], rows: tuple[dict[str, Any], Any]) -> Any:
            mo, m = rows
            return mc_array.step(ops, st, fixed, carry, mo, _Draws(jax.random.fold_in(key, m + 1)))

        carry, (flows, sum_revenue, sum_cash) = jax.lax.scan(body, carry, (months, jnp.arange(st.T)))
        end = mc_array.terminal(ops, st, fixed, carry)
        if st.T:
            last = flows[-1].astype(jnp.float64) + end["equity_end"]
            flows = flows.at[-1].set(last.astype(jnp.float32))
        irr = mc_array.equity_irr(ops, flows, st.irr_hint, fixed["valid"])
        return end, irr, sum_revenue, sum_cash

    return jax.jit(run)


def simulate_chunks(
    inputs: Inputs,
    seed: int,
    sizes: list[int],
    progress: Callable[[int], None] | None = None,
) -> list[ChunkOut]:
    """Every chunk of ``sizes`` in turn on JAX's default device; ``progress(paths done)`` after each."""
    import jax
    import jax.numpy as jnp

    st = mc_array.static_of(inputs)
    n = max(sizes)
    out = []
    with x64():
        months = {k: jnp.asarray(v) for k, v in mc_array.months_of(inputs).items()}
        run = _compiled(st, n)
        done = 0
        for size, s in zip(sizes, mc_array.chunk_seeds(seed, len(sizes)), strict=True):
            end, irr, sum_revenue, sum_cash = run(months, jax.random.key(s), jnp.asarray(size))
            out.append(
                ChunkOut(
                    npv=np.asarray(end["npv"])[:size],
                    equity_npv=np.asarray(end["equity_npv"])[:size],
                    equity_irr=np.asarray(irr, np.float64)[:size],
                    dscr_low=int(end["dscr_low"]),
                    shortfall=int(end["shortfall"]),
                    defaults=np.asarray(end["defaults"])[: st.L],
                    losses=np.asarray(end["losses"])[: st.L],
                    sum_revenue=np.asarray(sum_revenue, np.float64),
                    sum_cash=np.asarray(sum_cash, np.float64),
                )
            )
            done += size
            if progress:
                progress(done)
    return out
