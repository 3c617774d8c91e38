"""Golden allocation cases: a small fleet, a few contracts, and the assignments written out in full."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from computelease.allocation.core import (
    Allocation,
    AllocationPolicy,
    CapacityUnit,
    Contract,
    Node,
    NodeState,
    Placement,
    ShortfallReason,
    SparePolicy,
    allocate,
    heal,
)

H100, H800 = "nvidia-h100-sxm", "nvidia-h800-sxm"
JAN, FEB, MAR, APR = (datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4))
NO_GAP = AllocationPolicy(cleaning_gap=timedelta(0))


def fabric(site: str, name: str, count: int, model: str = H100, prefix: str | None = None) -> list[Node]:
    prefix = prefix or name
    return [Node(f"{prefix}-{k}", NodeState.IN_SERVICE, model, site, name) for k in range(1, count + 1)]


def contract(cid, nodes, placement=Placement.SAME_FABRIC, models=(H100,), start=JAN, end=APR) -> Contract:
    return Contract(cid, nodes, CapacityUnit.NODES, frozenset(models), placement, start, end)


def rows(plan) -> list[tuple[str, str, datetime, datetime]]:
    return [(a.contract_id, a.node_id, a.start, a.end) for a in plan.assignments]


class TestBestFitDecreasing:
    def test_biggest_first_then_tightest_fabric_in_use(self):
        # f1 and f2 hold 8 nodes each. c5 opens f1 (equal sizes: the first key); c3 fits f1's last
        # three exactly, so f2 is opened only for c2.
        nodes = fabric("bj", "f1", 8) + fabric("bj", "f2", 8)
        plan = allocate(nodes, [contract("c2", 2), contract("c3", 3), contract("c5", 5)], policy=NO_GAP)
        assert plan.shortfalls == ()
        assert rows(plan) == [
            ("c2", "f2-1", JAN, APR),
            ("c2", "f2-2", JAN, APR),
            ("c3", "f1-6", JAN, APR),
            ("c3", "f1-7", JAN, APR),
            ("c3", "f1-8", JAN, APR),
            ("c5", "f1-1", JAN, APR),
            ("c5", "f1-2", JAN, APR),
            ("c5", "f1-3", JAN, APR),
            ("c5", "f1-4", JAN, APR),
            ("c5", "f1-5", JAN, APR),
        ]

    def test_a_new_fabric_is_opened_largest_first(self):
        # Nothing in use yet: c2 goes to the larger fabric, leaving the small one empty for healing
        # or a later contract, and c1 joins it rather than opening the small one.
        nodes = fabric("bj", "small", 2) + fabric("bj", "large", 4)
        plan = allocate(nodes, [contract("c1", 1), contract("c2", 2)], policy=NO_GAP)
        assert rows(plan) == [
            ("c1", "large-3", JAN, APR),
            ("c2", "large-1", JAN, APR),
            ("c2", "large-2", JAN, APR),
        ]


class TestPlacementGolden:
    def test_same_site_spans_fabrics_of_one_site_largest_first(self):
        nodes = fabric("bj", "a", 2) + fabric("bj", "b", 3) + fabric("sh", "c", 4)
        plan = allocate(nodes, [contract("c5", 5, Placement.SAME_SITE)], policy=NO_GAP)
        # Only bj has 5 nodes; within it no single fabric fits, so the larger fabric b is taken
        # whole and the rest comes from a.
        assert rows(plan) == [
            ("c5", "a-1", JAN, APR),
            ("c5", "a-2", JAN, APR),
            ("c5", "b-1", JAN, APR),
            ("c5", "b-2", JAN, APR),
            ("c5", "b-3", JAN, APR),
        ]

    def test_any_crosses_sites(self):
        nodes = fabric("bj", "a", 2) + fabric("sh", "c", 2)
        plan = allocate(nodes, [contract("c3", 3, Placement.ANY)], policy=NO_GAP)
        assert rows(plan) == [("c3", "a-1", JAN, APR), ("c3", "a-2", JAN, APR), ("c3", "c-1", JAN, APR)]


class TestModelsGolden:
    def test_a_flexible_contract_leaves_the_scarce_model_to_the_strict_one(self):
        # The H800 fabric is the tightest fit for the flexible contract, but the H800-only contract
        # needs it; the flexible one goes to H100.
        nodes = fabric("bj", "h100", 6, H100) + fabric("bj", "h800", 3, H800)
        contracts = [
            contract("flex", 3, models=(H100, H800)),
            contract("strict", 3, models=(H800,)),
        ]
        plan = allocate(nodes, contracts, policy=NO_GAP)
        assert plan.shortfalls == ()
        assert rows(plan) == [
            ("flex", "h100-1", JAN, APR),
            ("flex", "h100-2", JAN, APR),
            ("flex", "h100-3", JAN, APR),
            ("strict", "h800-1", JAN, APR),
            ("strict", "h800-2", JAN, APR),
            ("strict", "h800-3", JAN, APR),
        ]


class TestTimeGolden:
    def test_cleaning_gap_between_tenants(self):
        nodes = fabric("bj", "f", 1)
        gap4 = AllocationPolicy(cleaning_gap=timedelta(hours=4))
        a = contract("a", 1, start=JAN, end=FEB)
        too_soon = contract("b", 1, start=FEB + timedelta(hours=2), end=MAR)
        plan = allocate(nodes, [a, too_soon], policy=gap4)
        assert rows(plan) == [("a", "f-1", JAN, FEB)]
        assert [(s.contract_id, s.missing, s.reason) for s in plan.shortfalls] == [
            ("b", 1, ShortfallReason.OVERLAPPING_ALLOCATIONS)
        ]
        after_cleaning = contract("b", 1, start=FEB + timedelta(hours=4), end=MAR)
        plan = allocate(nodes, [a, after_cleaning], policy=gap4)
        assert rows(plan) == [("a", "f-1", JAN, FEB), ("b", "f-1", FEB + timedelta(hours=4), MAR)]

    def test_existing_allocation_stays_and_the_rest_is_added_from_when_it_is_short(self):
        nodes = fabric("bj", "f", 4)
        existing = [
            Allocation("f-3", "c", JAN, APR),
            Allocation("f-4", "c", JAN, FEB),  # ended early, e.g. the node was pulled
        ]
        plan = allocate(nodes, [contract("c", 2)], existing, policy=NO_GAP)
        assert rows(plan) == [("c", "f-1", FEB, APR)]

    def test_rebalance_releases_the_future_and_repacks(self):
        # Two contracts spread over two fabrics; rebalanced from FEB they fit in one.
        nodes = fabric("bj", "f1", 2) + fabric("bj", "f2", 2)
        existing = [Allocation("f1-1", "a", JAN, APR), Allocation("f2-1", "b", JAN, APR)]
        plan = allocate(
            nodes, [contract("a", 1), contract("b", 1)], existing, policy=NO_GAP, as_of=FEB, rebalance=True
        )
        assert [(r.allocation.node_id, r.new_end) for r in plan.released] == [("f1-1", FEB), ("f2-1", FEB)]
        # f1-1 is back with a; f1-2 is free for b straight away. f2 is left empty.
        assert rows(plan) == [("a", "f1-1", FEB, APR), ("b", "f1-2", FEB, APR)]


class TestSparesGolden:
    def test_one_spare_per_fabric(self):
        nodes = fabric("bj", "f", 4)
        spares = AllocationPolicy(cleaning_gap=timedelta(0), spares=SparePolicy(count=1))
        plan = allocate(nodes, [contract("c4", 4), contract("c3", 3)], policy=spares)
        # c4 is bigger, so it goes first, and fails on the spare; c3 then fits.
        assert rows(plan) == [("c3", "f-1", JAN, APR), ("c3", "f-2", JAN, APR), ("c3", "f-3", JAN, APR)]
        assert [(s.contract_id, s.missing, s.reason) for s in plan.shortfalls] == [
            ("c4", 1, ShortfallReason.SPARES_RESERVED)
        ]


class TestHealGolden:
    def test_faulty_node_replaced_by_the_spare_in_its_fabric(self):
        nodes = fabric("bj", "f1", 3) + fabric("bj", "f2", 2)
        allocations = [Allocation("f1-1", "c", JAN, APR), Allocation("f1-2", "c", JAN, APR)]
        result = heal(nodes, [contract("c", 2)], allocations, "f1-2", FEB, policy=NO_GAP)
        assert [
            (r.contract_id, r.old_node_id, r.new_node_id, r.start, r.end) for r in result.replacements
        ] == [("c", "f1-2", "f1-3", FEB, APR)]
        assert result.shortfalls == ()
