"""Allocate 2,000 contracts onto 100,000 GPUs and print the time and the fabrics used.

Fleet: 12,500 nodes of 8 GPUs in 50 fabrics (180–320 nodes each, one accelerator model per fabric)
over 4 sites; 1% of nodes faulty or in repair; 2 spare nodes per fabric; 4 h cleaning gap.
Contracts: mixed sizes (many small inference tenants, some training clusters, a few big ones), 60%
same_fabric, 25% same_site, 15% any; most ask for one model, some accept H100 or H800; terms of 1–3
years starting within one quarter. Demand is scaled to ~90% of the fleet.

Run: .venv/bin/python benchmarks/bench_allocation.py [--runs 7] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np

from computelease.allocation.core import (
    AllocationPlan,
    AllocationPolicy,
    CapacityUnit,
    Contract,
    Node,
    NodeState,
    Placement,
    SparePolicy,
    allocate,
)

N_NODES = 12_500
N_FABRICS = 50
GPUS_PER_NODE = 8
SITES = ("bj-own", "sh-colo", "qy-own", "wlcb-colo")
# share of fabrics per model
MODELS = {"nvidia-h100-sxm": 0.5, "nvidia-h800-sxm": 0.3, "nvidia-h20": 0.2}
# some contracts accept either of these
FLEXIBLE = ("nvidia-h100-sxm", "nvidia-h800-sxm")
N_CONTRACTS = 2_000
TARGET_FILL = 0.90
SPARES_PER_FABRIC = 2


def build_fleet(rng: np.random.Generator) -> list[Node]:
    sizes = rng.integers(180, 321, size=N_FABRICS)
    # Nudge sizes so that they sum exactly to the fleet size, keeping each within bounds.
    diff = N_NODES - int(sizes.sum())
    while diff:
        i = int(rng.integers(N_FABRICS))
        step = 1 if diff > 0 else -1
        if 180 <= sizes[i] + step <= 320:
            sizes[i] += step
            diff -= step
    models = list(MODELS)
    fabric_models = rng.choice(len(models), size=N_FABRICS, p=list(MODELS.values()))
    nodes = []
    for f, size in enumerate(sizes):
        site = SITES[f % len(SITES)]
        model = models[int(fabric_models[f])]
        for k in range(int(size)):
            draw = rng.random()
            state = (
                NodeState.FAULTY
                if draw < 0.007
                else NodeState.REPAIR
                if draw < 0.01
                else NodeState.IN_SERVICE
            )
            nodes.append(Node(f"n{f:02d}-{k:03d}", state, model, site, f"fab{f:02d}", GPUS_PER_NODE))
    return nodes


def build_contracts(rng: np.random.Generator, nodes: list[Node]) -> list[Contract]:
    supply = Counter(n.model for n in nodes)
    kinds = rng.random(N_CONTRACTS)
    # GPUs: 70% inference (8–128), 25% training (128–1,024), 5% large (1,024–1,600)
    raw = np.where(
        kinds < 0.70,
        rng.integers(1, 17, N_CONTRACTS) * 8,
        np.where(
            kinds < 0.95, rng.integers(16, 129, N_CONTRACTS) * 8, rng.integers(128, 201, N_CONTRACTS) * 8
        ),
    )
    models = list(MODELS)
    model_draw = rng.choice(len(models), size=N_CONTRACTS, p=list(MODELS.values()))
    # Scale each model's demand to TARGET_FILL of its supply.
    demand = Counter()
    for size, m in zip(raw, model_draw, strict=True):
        demand[models[int(m)]] += int(size)
    gpus = np.empty(N_CONTRACTS, dtype=np.int64)
    for i, (size, m) in enumerate(zip(raw, model_draw, strict=True)):
        model = models[int(m)]
        scale = TARGET_FILL * supply[model] * GPUS_PER_NODE / demand[model]
        gpus[i] = max(8, round(size * scale / 8) * 8)
    placement_draw = rng.random(N_CONTRACTS)
    start0 = datetime(2026, 1, 1, tzinfo=UTC)
    contracts = []
    for i in range(N_CONTRACTS):
        model = models[int(model_draw[i])]
        accepts = {model}
        if model in FLEXIBLE and rng.random() < 0.2:
            accepts = set(FLEXIBLE)
        placement = (
            Placement.SAME_FABRIC
            if placement_draw[i] < 0.6
            else Placement.SAME_SITE
            if placement_draw[i] < 0.85
            else Placement.ANY
        )
        in_nodes = rng.random() < 0.3
        start = start0 + timedelta(days=int(rng.integers(0, 90)))
        end = start + timedelta(days=365 * int(rng.integers(1, 4)))
        quantity, unit = (
            (int(gpus[i]) // GPUS_PER_NODE, CapacityUnit.NODES)
            if in_nodes
            else (int(gpus[i]), CapacityUnit.GPUS)
        )
        contracts.append(Contract(f"c{i:04d}", quantity, unit, frozenset(accepts), placement, start, end))
    return contracts


def lower_bound_fabrics(nodes: list[Node], plan: AllocationPlan, spares: int) -> tuple[int, int]:
    """Two lower bounds on the fabrics any allocation of the same GPUs needs.

    Models are grouped when some contract accepts more than one of them (H100 and H800 here).
    Per group, the GPUs allocated need at least as many fabrics as it takes the group's largest
    fabrics (in usable GPUs: in service, less spares) to hold them: the tight bound. The simple bound
    divides by the largest fabric only: ceil(allocated / largest usable fabric).
    """
    node_by_id = {n.id: n for n in nodes}
    usable: Counter[tuple[str, str, str]] = Counter()
    for n in nodes:
        if n.state is NodeState.IN_SERVICE:
            usable[(n.model, n.site, n.fabric)] += n.gpus
    group = {m: ("nvidia-h100-sxm+h800" if m in FLEXIBLE else m) for m in MODELS}
    capacities: dict[str, list[int]] = {}
    for (model, _, _), g in usable.items():
        capacities.setdefault(group[model], []).append(max(0, g - spares * GPUS_PER_NODE))
    allocated: Counter[str] = Counter()
    for a in plan.assignments:
        node = node_by_id[a.node_id]
        allocated[group[node.model]] += node.gpus
    tight = simple = 0
    for g, gpus in allocated.items():
        caps = sorted(capacities[g], reverse=True)
        simple += math.ceil(gpus / caps[0])
        total = 0
        for k, cap in enumerate(caps, start=1):
            total += cap
            if total >= gpus:
                tight += k
                break
    return tight, simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    nodes = build_fleet(rng)
    contracts = build_contracts(rng, nodes)
    policy = AllocationPolicy(cleaning_gap=timedelta(hours=4), spares=SparePolicy(count=SPARES_PER_FABRIC))
    fleet_gpus = sum(n.gpus for n in nodes)
    demand_gpus = sum(c.quantity * (GPUS_PER_NODE if c.unit is CapacityUnit.NODES else 1) for c in contracts)

    times, cpu_times = [], []
    plan = None
    for _ in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        plan = allocate(nodes, contracts, policy=policy)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    assert plan is not None

    node_by_id = {n.id: n for n in nodes}
    fabrics_used = len({(node_by_id[a.node_id].site, node_by_id[a.node_id].fabric) for a in plan.assignments})
    allocated_gpus = sum(node_by_id[a.node_id].gpus for a in plan.assignments)
    reasons = Counter(s.reason.value for s in plan.shortfalls)
    share = demand_gpus / fleet_gpus
    median = statistics.median(times)
    tight, simple = lower_bound_fabrics(nodes, plan, SPARES_PER_FABRIC)
    print(f"fleet: {len(nodes):,} nodes, {fleet_gpus:,} GPUs, {N_FABRICS} fabrics, {len(SITES)} sites")
    print(f"contracts: {len(contracts):,}, demand {demand_gpus:,} GPUs ({share:.1%} of fleet)")
    print(f"runs: {args.runs}, median {median:.3f} s, min {min(times):.3f} s, max {max(times):.3f} s (wall)")
    # CPU time is less disturbed by other processes on a shared machine.
    print(f"cpu: median {statistics.median(cpu_times):.3f} s")
    print(f"allocated: {allocated_gpus:,} GPUs in {len(plan.assignments):,} assignments")
    print(
        f"fabrics used: {fabrics_used}, lower bound: {tight} (largest fabrics first), "
        f"{simple} (ceil per model)"
    )
    print(f"shortfalls: {len(plan.shortfalls)} {dict(sorted(reasons.items()))}")


if __name__ == "__main__":
    main()
