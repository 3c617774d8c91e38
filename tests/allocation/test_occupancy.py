"""Capacity-time and occupancy: categories, groupings, and conservation of GPU-hours."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computelease.allocation.core import (
    Allocation,
    AllocationInputError,
    AllocationPolicy,
    CapacityUnit,
    Contract,
    Node,
    NodeState,
    Placement,
    allocate,
)
from computelease.allocation.occupancy import (
    CATEGORIES,
    CapacityTime,
    Grouping,
    StateInterval,
    capacity_time,
    occupancy,
)

H100, H20 = "nvidia-h100-sxm", "nvidia-h20"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)


def node(nid, site="bj", fabric="f1", model=H100, gpus=8):
    return Node(nid, NodeState.IN_SERVICE, model, site, fabric, gpus)


def in_service(nid, start=T0, end=None):
    return StateInterval(nid, NodeState.IN_SERVICE, start, end)


def as_dict(ct: CapacityTime) -> dict[str, float]:
    return {cat: getattr(ct, cat) for cat in CATEGORIES}


class TestCategories:
    def test_allocated_and_idle(self):
        nodes = [node("n1")]
        allocs = [Allocation("n1", "c1", T0 + 2 * H, T0 + 8 * H)]
        (ct,) = capacity_time(nodes, [in_service("n1")], allocs, T0, T0 + 10 * H).values()
        assert as_dict(ct) == {
            "allocated": 48.0,
            "idle": 32.0,
            "down": 0.0,
            "maintenance": 0.0,
            "not_in_service": 0.0,
        }
        assert ct.in_service == 80.0 and ct.occupancy == pytest.approx(0.6)

    def test_every_state(self):
        states = [
            StateInterval("n1", NodeState.DELIVERED, T0, T0 + H),
            StateInterval("n1", NodeState.ACCEPTED, T0 + H, T0 + 2 * H),  # unused: not in service
            StateInterval("n1", NodeState.IN_SERVICE, T0 + 2 * H, T0 + 4 * H),
            StateInterval("n1", NodeState.FAULTY, T0 + 4 * H, T0 + 5 * H),
            StateInterval("n1", NodeState.REPAIR, T0 + 5 * H, T0 + 6 * H),
            StateInterval("n1", NodeState.MAINTENANCE, T0 + 6 * H, T0 + 7 * H),
            StateInterval("n1", NodeState.IN_SERVICE, T0 + 7 * H, T0 + 8 * H),
            StateInterval("n1", NodeState.RETIRED, T0 + 8 * H, None),
        ]
        # Allocated all day: only in-service (or accepted) hours count as allocated; a faulty or
        # repaired node is down even though its allocation runs on.
        allocs = [Allocation("n1", "c1", T0, T0 + 10 * H)]
        (ct,) = capacity_time([node("n1", gpus=1)], states, allocs, T0, T0 + 10 * H).values()
        assert as_dict(ct) == {
            "allocated": 4.0,
            "idle": 0.0,
            "down": 2.0,
            "maintenance": 1.0,
            "not_in_service": 3.0,
        }

    def test_accepted_node_in_use_counts_as_allocated(self):
        states = [StateInterval("n1", NodeState.ACCEPTED, T0)]
        allocs = [Allocation("n1", "c1", T0, T0 + H)]
        (ct,) = capacity_time([node("n1", gpus=1)], states, allocs, T0, T0 + 2 * H).values()
        assert (ct.allocated, ct.not_in_service) == (1.0, 1.0)

    def test_no_known_state_is_not_in_service(self):
        (ct,) = capacity_time([node("n1")], [], [], T0, T0 + H).values()
        assert ct.not_in_service == 8.0 and ct.occupancy is None

    def test_overlapping_states_the_later_start_wins(self):
        states = [
            in_service("n1", T0, T0 + 10 * H),
            StateInterval("n1", NodeState.FAULTY, T0 + 3 * H, T0 + 4 * H),
        ]
        (ct,) = capacity_time([node("n1", gpus=1)], states, [], T0, T0 + 10 * H).values()
        assert (ct.idle, ct.down) == (9.0, 1.0)

    def test_the_period_clips_everything(self):
        allocs = [Allocation("n1", "c1", T0 - 5 * H, T0 + 5 * H)]
        (ct,) = capacity_time(
            [node("n1", gpus=2)], [in_service("n1", T0 - 9 * H)], allocs, T0, T0 + 10 * H
        ).values()
        assert (ct.allocated, ct.idle) == (10.0, 10.0)

    def test_bad_period(self):
        with pytest.raises(AllocationInputError, match="before its start"):
            capacity_time([], [], [], T0, T0 - H)
        with pytest.raises(AllocationInputError, match="timezone-aware"):
            capacity_time([], [], [], datetime(2026, 1, 1), T0)


class TestGrouping:
    def setup_method(self):
        self.nodes = [
            node("a1", "bj", "f1", H100),
            node("a2", "bj", "f1", H100),
            node("b1", "sh", "f1", H20, gpus=4),
        ]
        self.states = [in_service(n.id) for n in self.nodes]
        self.allocs = [
            Allocation("a1", "c1", T0, T0 + 10 * H),
            Allocation("b1", "c2", T0, T0 + 5 * H),
        ]
        self.customers = {"c1": "moonshot", "c2": "moonshot"}

    def rows(self, group):
        result = occupancy(self.nodes, self.states, self.allocs, T0, T0 + 10 * H, group, self.customers)
        return {r.key: r for r in result}

    def test_whole_fleet(self):
        (row,) = occupancy(self.nodes, self.states, self.allocs, T0, T0 + 10 * H)
        assert row.key is None
        assert row.in_service_gpu_hours == 200.0
        assert row.allocated_gpu_hours == 100.0
        assert row.occupancy_pct == pytest.approx(50.0)
        assert row.idle_nodes == ("a2", "b1")

    def test_by_site_fabric_model(self):
        site = self.rows(Grouping.SITE)
        assert site["bj"].occupancy_pct == pytest.approx(50.0) and site["sh"].occupancy_pct == pytest.approx(
            50.0
        )
        assert site["bj"].idle_nodes == ("a2",)
        # fabric names repeat across sites, so the key carries the site
        assert set(self.rows(Grouping.FABRIC)) == {"bj/f1", "sh/f1"}
        assert self.rows(Grouping.MODEL)[H20].allocated_gpu_hours == 20.0

    def test_by_contract_and_customer(self):
        contract = self.rows(Grouping.CONTRACT)
        assert contract["c1"].allocated_gpu_hours == 80.0
        assert contract["c2"].allocated_gpu_hours == 20.0
        assert contract[None].capacity.idle == 100.0 and contract[None].allocated_gpu_hours == 0.0
        customer = self.rows(Grouping.CUSTOMER)
        assert customer["moonshot"].allocated_gpu_hours == 100.0

    def test_contract_rows_show_the_downtime_of_their_nodes(self):
        states = [*self.states, StateInterval("a1", NodeState.FAULTY, T0 + 8 * H, T0 + 9 * H)]
        result = occupancy(self.nodes, states, self.allocs, T0, T0 + 10 * H, Grouping.CONTRACT)
        c1 = next(r for r in result if r.key == "c1")
        assert (c1.capacity.allocated, c1.capacity.down) == (72.0, 8.0)

    def test_customer_grouping_needs_the_map(self):
        with pytest.raises(AllocationInputError, match="customer"):
            occupancy(self.nodes, self.states, self.allocs, T0, T0 + H, Grouping.CUSTOMER)
        with pytest.raises(AllocationInputError, match="no customer given for contract c2"):
            occupancy(self.nodes, self.states, self.allocs, T0, T0 + H, "customer", {"c1": "x"})

    def test_rows_are_sorted_with_none_first(self):
        keys = [r.key for r in occupancy(self.nodes, self.states, self.allocs, T0, T0 + 10 * H, "contract")]
        assert keys == [None, "c1", "c2"]


class TestWithTheAllocator:
    def test_allocated_hours_match_the_plan(self):
        nodes = [node(f"n{i}") for i in range(4)]
        contract = Contract(
            "c1", 3, CapacityUnit.NODES, frozenset({H100}), Placement.SAME_FABRIC, T0, T0 + 24 * H
        )
        plan = allocate(nodes, [contract], policy=AllocationPolicy(cleaning_gap=timedelta(0)))
        (row,) = occupancy(nodes, [in_service(n.id) for n in nodes], plan.assignments, T0, T0 + 24 * H)
        assert row.allocated_gpu_hours == 3 * 8 * 24
        assert row.occupancy_pct == pytest.approx(75.0)
        assert row.idle_nodes == ("n3",)


# --------------------------------------------------------------------------------------------------
# conservation

NODE_IDS = ("n0", "n1", "n2", "n3")
minutes = st.integers(-120, 24 * 60 + 120)


@st.composite
def histories(draw):
    nodes = [
        Node(
            nid,
            NodeState.IN_SERVICE,
            draw(st.sampled_from((H100, H20))),
            draw(st.sampled_from(("bj", "sh"))),
            draw(st.sampled_from(("f1", "f2"))),
            draw(st.sampled_from((1, 4, 8))),
        )
        for nid in NODE_IDS
    ]
    states = []
    for _ in range(draw(st.integers(0, 10))):
        a, b = sorted(draw(st.tuples(minutes, minutes)))
        end = None if draw(st.booleans()) and b > 24 * 60 else T0 + timedelta(minutes=b)
        states.append(
            StateInterval(
                draw(st.sampled_from(NODE_IDS)),
                draw(st.sampled_from(list(NodeState))),
                T0 + timedelta(minutes=a),
                end,
            )
        )
    allocs = []
    for _ in range(draw(st.integers(0, 8))):
        a, b = sorted(draw(st.tuples(minutes, minutes)))
        allocs.append(
            Allocation(
                draw(st.sampled_from(NODE_IDS)),
                draw(st.sampled_from(("c1", "c2", "c3"))),
                T0 + timedelta(minutes=a),
                T0 + timedelta(minutes=b),
            )
        )
    start_min, end_min = sorted(draw(st.tuples(st.integers(0, 24 * 60), st.integers(0, 24 * 60))))
    return nodes, states, allocs, T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


class TestConservation:
    @settings(max_examples=100, deadline=None)
    @given(histories())
    def test_every_gpu_hour_is_in_exactly_one_category(self, history):
        nodes, states, allocs, start, end = history
        hours = (end - start) / timedelta(hours=1)
        per_node = capacity_time(nodes, states, allocs, start, end)
        assert set(per_node) == set(NODE_IDS)
        for n in nodes:
            ct = per_node[n.id]
            assert all(getattr(ct, cat) >= 0 for cat in CATEGORIES)
            assert close(ct.total, n.gpus * hours)

    @settings(max_examples=60, deadline=None)
    @given(histories(), st.sampled_from([None, *Grouping]))
    def test_groups_add_up_to_the_fleet(self, history, group):
        nodes, states, allocs, start, end = history
        customers = {"c1": "x", "c2": "y", "c3": "x"}
        (fleet,) = occupancy(nodes, states, allocs, start, end)
        rows = occupancy(nodes, states, allocs, start, end, group, customers)
        for cat in CATEGORIES:
            assert close(sum(getattr(r.capacity, cat) for r in rows), getattr(fleet.capacity, cat))
        assert close(fleet.capacity.total, sum(n.gpus for n in nodes) * (end - start) / timedelta(hours=1))
        idle_anywhere = {i for r in rows for i in r.idle_nodes}
        assert idle_anywhere == set(fleet.idle_nodes)
        for r in rows:
            assert close(r.in_service_gpu_hours, r.capacity.allocated + r.capacity.idle)
            if r.occupancy_pct is not None:
                assert 0.0 <= r.occupancy_pct <= 100.0 + 1e-9
