"""What a set of nodes earned over a period, for the lessor's view.

The figure comes from billing when billing is installed (``computelease.billing.service.earned_by_nodes``:
invoiced revenue apportioned to nodes by GPU-hours; basis ``invoiced``). Until then it is the
**contracted** revenue, computed the same way from the contracts instead of the invoices::

    contract revenue in [s, e)  = total value × |term ∩ [s, e)| / |term|          (time-prorated)
    node's share                = node's allocated GPU-hours for the contract in [s, e)
                                  / all the contract's allocated GPU-hours in [s, e)
    earned by the nodes         = Σ_contracts revenue in [s, e) × Σ_{their nodes} share

exact (fractions), rounded to the fen once per currency. Contracted revenue ignores SLA credits and
unpaid invoices, so it is an upper bound of what the nodes brought in; the basis says which one it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from computelease.kit.time import as_utc

INVOICED = "invoiced"
CONTRACTED = "contracted"


@dataclass(frozen=True, slots=True)
class Earned:
    amounts: dict[str, Decimal]  # currency → amount, on ``basis``
    basis: str  # "invoiced" (from billing) or "contracted" (allocations × contract prices)
    contracted: dict[str, Decimal]  # the contracted figure, always (what the nodes should bring in)


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> int:
    return _seconds(max(a0, b0), min(a1, b1))


def contracted_by_nodes(
    session: Session, node_ids: Iterable[int], start: datetime, end: datetime
) -> dict[str, Decimal]:
    """Contracted revenue of ``[start, end)`` apportioned to ``node_ids`` by allocated GPU-hours."""
    from computelease.allocation.models import Allocation
    from computelease.contracts.core import ContractStatus, fen
    from computelease.contracts.models import Contract
    from computelease.fleet.models import Gpu

    ids = set(node_ids)
    start, end = as_utc(start), as_utc(end)
    if not ids or end <= start:
        return {}
    touched = select(Allocation.contract_id).where(
        Allocation.node_id.in_(ids), Allocation.start_at < end, Allocation.end_at > start
    )
    contracts = {
        c.id: c
        for c in session.scalars(
            select(Contract).where(Contract.id.in_(touched), Contract.status != ContractStatus.draft)
        )
    }
    if not contracts:
        return {}
    allocations = session.execute(
        select(Allocation.node_id, Allocation.contract_id, Allocation.start_at, Allocation.end_at).where(
            Allocation.contract_id.in_(list(contracts)), Allocation.start_at < end, Allocation.end_at > start
        )
    ).all()
    node_set = {a.node_id for a in allocations}
    gpus: dict[int, int] = defaultdict(int)
    for (node_id,) in session.execute(select(Gpu.node_id).where(Gpu.node_id.in_(node_set))):
        gpus[node_id] += 1
    total: dict[int, int] = defaultdict(int)  # contract → GPU-seconds in the window
    mine: dict[int, int] = defaultdict(int)  # contract → GPU-seconds on the given nodes
    for a in allocations:
        gpu_s = max(gpus[a.node_id], 1) * _overlap(as_utc(a.start_at), as_utc(a.end_at), start, end)
        total[a.contract_id] += gpu_s
        if a.node_id in ids:
            mine[a.contract_id] += gpu_s
    sums: dict[str, Fraction] = defaultdict(Fraction)
    for cid, contract in contracts.items():
        c0, c1 = as_utc(contract.starts_at), as_utc(contract.ends_at)
        term = _seconds(c0, c1)
        if not term or not total[cid]:
            continue
        in_window = Fraction(contract.total_value) * _overlap(c0, c1, start, end) / term
        sums[contract.currency] += in_window * mine[cid] / total[cid]
    return {cur: fen(amount) for cur, amount in sums.items()}


def earned_by_nodes(session: Session, node_ids: Iterable[int], start: datetime, end: datetime) -> Earned:
    """Invoiced revenue when billing provides it, else contracted revenue; the basis says which."""
    ids = set(node_ids)
    contracted = contracted_by_nodes(session, ids, start, end)
    try:
        from computelease.billing.service import earned_by_nodes as invoiced
    except ImportError:
        return Earned(contracted, CONTRACTED, contracted)
    return Earned(dict(invoiced(session, ids, as_utc(start), as_utc(end))), INVOICED, contracted)
