"""The torch backend of the Monte Carlo engine: :mod:`.mc_array`'s kernel, one month a call, in eager
torch on ``cuda`` where a GPU is visible, else on the CPU. It is :mod:`.mc_jax` with the scan written
as a loop: the model, the dtypes (float64 money states, float32 random pieces), the chunk seeds
(:func:`.mc_array.chunk_seeds`), the padding of the last chunk and the equity IRR are the same code.

Randomness: chunk ``i`` has its own ``torch.Generator`` seeded with the ``i``-th chunk seed; the draws
come from it in a fixed order (once-per-path draws, then month by month), so results are reproducible
per seed, chunk size and device type, but they are neither numpy's nor JAX's draws: the backends agree
within Monte Carlo error (see :mod:`.montecarlo` for the stated tolerance), and to ~1e-9 on the
deterministic paths. CUDA and CPU generators give different streams for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from computelease.economics import mc_array
from computelease.economics.mc_array import CARRIED
from computelease.economics.montecarlo import ChunkOut, Inputs

CPU_CHUNK = 65_536
GPU_CHUNK = 262_144
# Per-month rows used as indices: kept on the host as Python ints (indexing with them needs no sync).
_HOST_ROWS = ("ring_read", "ring_write")


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_chunk() -> int:
    return GPU_CHUNK if device() != "cpu" else CPU_CHUNK


class TorchOps:
    def __init__(self, dev: Any) -> None:
        import torch

        self.torch, self.device = torch, dev
        self.f32, self.f64 = torch.float32, torch.float64

    def _tensor(self, a: Any, like: Any = None) -> Any:
        t = self.torch
        if isinstance(a, t.Tensor):
            return a
        dtype = like.dtype if isinstance(like, t.Tensor) else (t.float64 if isinstance(a, float) else None)
        return t.as_tensor(a, dtype=dtype, device=self.device)

    def cast(self, a: Any, dtype: Any) -> Any:
        return self._tensor(a).to(dtype)

    def full(self, shape: tuple[int, ...], value: float, dtype: Any) -> Any:
        return self.torch.full(shape, value, dtype=dtype, device=self.device)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.torch.where(cond, self._tensor(a, b), self._tensor(b, a))

    def maximum(self, a: Any, b: Any) -> Any:
        if isinstance(b, (int, float)):
            return self.torch.clamp(a, min=b)
        return self.torch.maximum(self._tensor(a, b), b)

    def minimum(self, a: Any, b: Any) -> Any:
        if isinstance(b, (int, float)):
            return self.torch.clamp(a, max=b)
        return self.torch.minimum(self._tensor(a, b), b)

    def exp(self, a: Any) -> Any:
        return self.torch.exp(a)

    def log(self, a: Any) -> Any:
        return self.torch.log(a)

    def expm1(self, a: Any) -> Any:
        return self.torch.expm1(a)

    def clip(self, a: Any, lo: Any, hi: Any) -> Any:
        return self.torch.minimum(self.torch.maximum(a, lo), hi)

    def sum(self, a: Any, axis: int | None = None) -> Any:
        return a.sum() if axis is None else a.sum(dim=axis)

    def stack(self, arrays: list[Any]) -> Any:
        return self.torch.stack(arrays)

    def row(self, a: Any, i: Any) -> Any:
        if isinstance(i, int):
            return a[i]
        return a.index_select(0, i.reshape(1)).squeeze(0)

    def set_row(self, a: Any, i: Any, value: Any) -> Any:
        # In place: the step's state is replaced as a whole, nothing else holds the old ring.
        if isinstance(i, int):
            a[i] = value
        else:
            a.index_copy_(0, i.reshape(1), value.unsqueeze(0))
        return a

    def any(self, a: Any, axis: int) -> Any:
        return self.torch.any(a, dim=axis)

    def argmax(self, a: Any, axis: int) -> Any:
        # torch has no argmax over bool; the first maximum is returned, as numpy's argmax does.
        return self.torch.argmax(a.to(self.torch.float32), dim=axis)

    def arange(self, n: int) -> Any:
        return self.torch.arange(n, device=self.device)

    def from_numpy(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(a, device=self.device)

    def irr_h(self, positive: Any, negative: Any, x: Any) -> Any:
        p = positive[-1] + 0 * x
        q = negative[-1] + 0 * x
        for m in range(positive.shape[0] - 2, -1, -1):
            p = p * x + positive[m]
            q = q * x + negative[m]
        tiny = 1e-30
        ratio = self.torch.clamp(p / self.torch.clamp(q, min=tiny), min=tiny)
        return self.torch.log(ratio).to(self.torch.float64)


class _Draws:
    """All of a chunk's draws from one generator, in the order the kernel asks for them (tags unused)."""

    def __init__(self, generator: Any, dev: Any) -> None:
        import torch

        self.torch, self.generator, self.device = torch, generator, dev

    def normal(self, tag: int, shape: tuple[int, ...]) -> Any:
        t = self.torch
        return t.randn(shape, generator=self.generator, dtype=t.float32, device=self.device)

    def bits(self, tag: int, shape: tuple[int, ...]) -> Any:
        t = self.torch
        return t.randint(0, 1 << 32, shape, generator=self.generator, dtype=t.int64, device=self.device)

    def uniform(self, tag: int, shape: tuple[int, ...]) -> Any:
        t = self.torch
        return t.rand(shape, generator=self.generator, dtype=t.float64, device=self.device)


def simulate_chunks(
    inputs: Inputs,
    seed: int,
    sizes: list[int],
    progress: Callable[[int], None] | None = None,
    dev: str | None = None,
) -> list[ChunkOut]:
    """Every chunk of ``sizes`` in turn on ``dev`` (default: :func:`device`); ``progress(paths done)``
    after each."""
    import torch

    dev = dev or device()
    ops = TorchOps(dev)
    st = mc_array.static_of(inputs)
    n = max(sizes)
    table = mc_array.months_of(inputs)
    months = {k: torch.as_tensor(v, device=dev) for k, v in table.items() if k not in _HOST_ROWS}
    out = []
    done = 0
    with torch.inference_mode():
        for size, s in zip(sizes, mc_array.chunk_seeds(seed, len(sizes)), strict=True):
            generator = torch.Generator(device=dev)
            generator.manual_seed(s)
            draws = _Draws(generator, dev)
            state = mc_array.init(ops, st, draws, n)
            valid = torch.arange(n, device=dev) < size
            fixed = {
                "wins": state["wins"],
                "residual": state["residual"],
                "valid": valid,
                "n_valid": float(size),
            }
            carry = {name: state[name] for name in CARRIED}
            flows, sum_revenue, sum_cash = [], [], []
            for m in range(st.T):
                mo = {k: v[m] for k, v in months.items()}
                mo.update({k: int(table[k][m]) for k in _HOST_ROWS})
                carry, (flow, revenue, cash) = mc_array.step(ops, st, fixed, carry, mo, draws)
                flows.append(flow)
                sum_revenue.append(revenue)
                sum_cash.append(cash)
            end = mc_array.terminal(ops, st, fixed, carry)
            flow_table = torch.stack(flows)
            if st.T:
                flow_table[-1] = (flow_table[-1].to(torch.float64) + end["equity_end"]).to(torch.float32)
            irr = mc_array.equity_irr(ops, flow_table, st.irr_hint, valid)
            out.append(
                ChunkOut(
                    npv=end["npv"][:size].cpu().numpy(),
                    equity_npv=end["equity_npv"][:size].cpu().numpy(),
                    equity_irr=irr[:size].cpu().numpy().astype(np.float64),
                    dscr_low=int(end["dscr_low"]),
                    shortfall=int(end["shortfall"]),
                    defaults=end["defaults"][: st.L].cpu().numpy(),
                    losses=end["losses"][: st.L].cpu().numpy(),
                    sum_revenue=torch.stack(sum_revenue).cpu().numpy().astype(np.float64),
                    sum_cash=torch.stack(sum_cash).cpu().numpy().astype(np.float64),
                )
            )
            done += size
            if progress:
                progress(done)
    return out
