"""The pure allocator and healing: one class per behaviour, then hypothesis invariants."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computelease.allocation.core import (
    ALLOCATABLE_STATES,
    Allocation,
    AllocationInputError,
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
from computelease.errors import AppError

H100, H800, H20 = "nvidia-h100-sxm", "nvidia-h800-sxm", "nvidia-h20"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NO_GAP = AllocationPolicy(cleaning_gap=timedelta(0))


def nodes_in(site, fabric, count, model=H100, state=NodeState.IN_SERVICE, gpus=8, prefix=None):
    prefix = prefix or fabric
    return [Node(f"{prefix}-{k}", state, model, site, fabric, gpus) for k in range(1, count + 1)]


def want(
    cid,
    quantity,
    placement=Placement.SAME_FABRIC,
    models=(H100,),
    start=T0,
    end=T0 + 30 * DAY,
    unit=CapacityUnit.NODES,
):
    return Contract(cid, quantity, unit, frozenset(models), placement, start, end)


def node_ids(plan, contract_id=None):
    return sorted(a.node_id for a in plan.assignments if contract_id in (None, a.contract_id))


class TestInputs:
    def test_naive_datetimes_are_refused(self):
        with pytest.raises(AllocationInputError, match="timezone-aware"):
            Contract(
                "c", 1, CapacityUnit.NODES, frozenset({H100}), Placement.ANY, datetime(2026, 1, 1), T0 + DAY
            )

    def test_errors_are_app_errors_with_a_4xx(self):
        with pytest.raises(AppError) as info:
            want("c", 0)
        assert info.value.status == 422
        assert isinstance(info.value, ValueError)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"quantity": 0}, "at least 1"),
            ({"models": ()}, "no accelerator model"),
            ({"end": T0}, "end must be after start"),
        ],
    )
    def test_bad_contracts(self, kwargs, message):
        args = {"cid": "c", "quantity": 1, **kwargs}
        with pytest.raises(AllocationInputError, match=message):
            want(args.pop("cid"), args.pop("quantity"), **args)

    def test_plain_strings_become_enums_and_other_zones_become_utc(self):
        east8 = timezone(timedelta(hours=8))
        c = Contract("c", 1, "gpus", H100, "same_site", datetime(2026, 1, 1, 8, tzinfo=east8), T0 + DAY)
        assert c.unit is CapacityUnit.GPUS and c.placement is Placement.SAME_SITE
        assert c.models == frozenset({H100})
        assert c.start == T0 and c.start.tzinfo is UTC
        assert Node("n", "in_service", H100, "s", "f").state is NodeState.IN_SERVICE

    def test_unknown_enum_value_says_what_is_allowed(self):
        with pytest.raises(AllocationInputError, match="same_fabric, same_site, any"):
            want("c", 1, placement="one_rack")

    def test_duplicate_ids(self):
        with pytest.raises(AllocationInputError, match="node id f-1 appears twice"):
            allocate(nodes_in("s", "f", 1) * 2, [])
        with pytest.raises(AllocationInputError, match="contract id c appears twice"):
            allocate(nodes_in("s", "f", 1), [want("c", 1), want("c", 1)])

    def test_rebalance_needs_as_of(self):
        with pytest.raises(AllocationInputError, match="as_of"):
            allocate([], [], rebalance=True)

    def test_empty_fleet_is_a_shortfall_not_a_crash(self):
        plan = allocate([], [want("c", 1)])
        assert plan.assignments == ()
        assert plan.shortfalls[0].reason is ShortfallReason.NO_COMPATIBLE_MODEL


class TestCompatibility:
    def test_only_accepted_models(self):
        nodes = nodes_in("s", "a", 2, H20) + nodes_in("s", "b", 2, H800)
        plan = allocate(nodes, [want("c", 2, models=(H800,))], policy=NO_GAP)
        assert node_ids(plan) == ["b-1", "b-2"]

    @pytest.mark.parametrize("state", sorted(set(NodeState) - ALLOCATABLE_STATES))
    def test_nodes_outside_allocatable_states_are_never_used(self, state):
        nodes = nodes_in("s", "f", 2, state=state)
        plan = allocate(nodes, [want("c", 1)], policy=NO_GAP)
        assert plan.assignments == ()
        assert plan.shortfalls[0].reason is ShortfallReason.NO_COMPATIBLE_MODEL

    def test_accepted_nodes_are_used(self):
        plan = allocate(nodes_in("s", "f", 1, state=NodeState.ACCEPTED), [want("c", 1)], policy=NO_GAP)
        assert node_ids(plan) == ["f-1"]


class TestCapacityUnits:
    def test_gpus_round_up_to_whole_nodes(self):
        plan = allocate(nodes_in("s", "f", 3), [want("c", 12, unit=CapacityUnit.GPUS)], policy=NO_GAP)
        assert node_ids(plan) == ["f-1", "f-2"]

    def test_mixed_node_sizes_take_the_bigger_nodes_first(self):
        nodes = nodes_in("s", "f", 2, gpus=4, prefix="small") + nodes_in("s", "f", 1, gpus=8, prefix="big")
        plan = allocate(nodes, [want("c", 12, unit=CapacityUnit.GPUS)], policy=NO_GAP)
        assert node_ids(plan) == ["big-1", "small-1"]

    def test_mixed_node_sizes_shortfall_in_gpus(self):
        nodes = nodes_in("s", "f", 1, gpus=4, prefix="small") + nodes_in("s", "f", 1, gpus=8, prefix="big")
        plan = allocate(nodes, [want("c", 16, unit=CapacityUnit.GPUS)], policy=NO_GAP)
        (short,) = plan.shortfalls
        assert (short.missing, short.unit, short.reason) == (
            4,
            CapacityUnit.GPUS,
            ShortfallReason.INSUFFICIENT_CAPACITY,
        )


class TestPlacement:
    def test_same_fabric_never_spans_two_fabrics(self):
        nodes = nodes_in("s", "a", 2) + nodes_in("s", "b", 2)
        plan = allocate(nodes, [want("c", 3)], policy=NO_GAP)
        assert plan.assignments == ()
        (short,) = plan.shortfalls
        assert short.reason is ShortfallReason.PLACEMENT
        assert short.missing == 1
        assert "largest fabric has 2" in short.detail

    def test_same_site_never_spans_two_sites(self):
        nodes = nodes_in("bj", "a", 2) + nodes_in("sh", "b", 2)
        plan = allocate(nodes, [want("c", 3, Placement.SAME_SITE)], policy=NO_GAP)
        assert plan.shortfalls[0].reason is ShortfallReason.PLACEMENT

    def test_same_site_picks_the_tightest_site(self):
        nodes = nodes_in("bj", "a", 6) + nodes_in("sh", "b", 3)
        plan = allocate(nodes, [want("c", 3, Placement.SAME_SITE)], policy=NO_GAP)
        assert node_ids(plan) == ["b-1", "b-2", "b-3"]

    def test_a_contract_grows_only_inside_the_fabric_it_holds(self):
        nodes = nodes_in("s", "a", 2) + nodes_in("s", "b", 4)
        existing = [Allocation("a-1", "c", T0, T0 + 30 * DAY)]
        plan = allocate(nodes, [want("c", 3)], existing, policy=NO_GAP)
        (short,) = plan.shortfalls
        assert short.reason is ShortfallReason.PLACEMENT
        assert "already occupies" in short.detail
        assert plan.assignments == ()


class TestShortfalls:
    def test_no_compatible_model(self):
        plan = allocate(nodes_in("s", "f", 4, H20), [want("c", 1, models=(H100, H800))])
        (short,) = plan.shortfalls
        assert (short.contract_id, short.missing, short.reason) == (
            "c",
            1,
            ShortfallReason.NO_COMPATIBLE_MODEL,
        )
        assert "nvidia-h100-sxm, nvidia-h800-sxm" in short.detail

    def test_insufficient_capacity(self):
        plan = allocate(nodes_in("s", "f", 2), [want("c", 5, Placement.ANY)])
        (short,) = plan.shortfalls
        assert (short.missing, short.reason) == (3, ShortfallReason.INSUFFICIENT_CAPACITY)

    def test_overlapping_allocations(self):
        existing = [Allocation("f-1", "other", T0, T0 + 10 * DAY)]
        plan = allocate(nodes_in("s", "f", 2), [want("c", 2)], existing, policy=NO_GAP)
        (short,) = plan.shortfalls
        assert (short.missing, short.reason) == (1, ShortfallReason.OVERLAPPING_ALLOCATIONS)

    def test_spares_reserved_with_a_fraction(self):
        policy = AllocationPolicy(cleaning_gap=timedelta(0), spares=SparePolicy(fraction=0.25))
        plan = allocate(nodes_in("s", "f", 8), [want("c", 7)], policy=policy)
        (short,) = plan.shortfalls
        assert (short.missing, short.reason) == (1, ShortfallReason.SPARES_RESERVED)

    def test_allow_partial_takes_what_fits_and_reports_the_rest(self):
        existing = [Allocation("f-1", "other", T0, T0 + 10 * DAY)]
        plan = allocate(nodes_in("s", "f", 3), [want("c", 4)], existing, policy=NO_GAP, allow_partial=True)
        assert node_ids(plan, "c") == ["f-2", "f-3"]
        assert plan.shortfalls[0].missing == 2

    def test_a_short_contract_does_not_block_smaller_ones(self):
        plan = allocate(nodes_in("s", "f", 2), [want("big", 3), want("small", 2)], policy=NO_GAP)
        assert [s.contract_id for s in plan.shortfalls] == ["big"]
        assert node_ids(plan, "small") == ["f-1", "f-2"]


class TestSpares:
    def test_per_fabric_override_beats_the_default(self):
        policy = AllocationPolicy(
            cleaning_gap=timedelta(0), spares=SparePolicy(count=1, per_fabric={("s", "b"): 0})
        )
        nodes = nodes_in("s", "a", 2) + nodes_in("s", "b", 2)
        plan = allocate(nodes, [want("x", 2), want("y", 1)], policy=policy)
        assert node_ids(plan, "x") == ["b-1", "b-2"]
        assert node_ids(plan, "y") == ["a-1"]

    def test_fraction_rounds_up(self):
        assert SparePolicy(fraction=0.1).for_fabric("s", "f", 30) == 3
        assert SparePolicy(fraction=0.1).for_fabric("s", "f", 31) == 4
        assert SparePolicy(count=2, fraction=0.01).for_fabric("s", "f", 30) == 2

    def test_spares_count_nodes_of_every_model(self):
        # One H20 node free is enough to be the fabric's spare; the H100 node can be let.
        policy = AllocationPolicy(cleaning_gap=timedelta(0), spares=SparePolicy(count=1))
        nodes = nodes_in("s", "f", 1, H100, prefix="h100") + nodes_in("s", "f", 1, H20, prefix="h20")
        plan = allocate(nodes, [want("c", 1)], policy=policy)
        assert node_ids(plan) == ["h100-1"]

    def test_bad_policy(self):
        with pytest.raises(AllocationInputError):
            SparePolicy(fraction=1.5)
        with pytest.raises(AllocationInputError):
            AllocationPolicy(cleaning_gap=timedelta(hours=-1))


class TestCleaningGap:
    def test_gap_applies_before_a_booking_too(self):
        gap = AllocationPolicy(cleaning_gap=timedelta(hours=4))
        existing = [Allocation("f-1", "later", T0 + 10 * DAY, T0 + 20 * DAY)]
        ends_too_close = want("c", 1, end=T0 + 10 * DAY - timedelta(hours=1))
        assert allocate(nodes_in("s", "f", 1), [ends_too_close], existing, policy=gap).assignments == ()
        ends_in_time = want("c", 1, end=T0 + 10 * DAY - timedelta(hours=4))
        assert node_ids(allocate(nodes_in("s", "f", 1), [ends_in_time], existing, policy=gap)) == ["f-1"]

    def test_no_gap_within_one_contract(self):
        # The contract held f-1 until day 10; from day 10 it needs a node again and gets f-1 back
        # at once, as the same tenant needs no cleaning.
        gap = AllocationPolicy(cleaning_gap=timedelta(hours=4))
        existing = [Allocation("f-1", "c", T0, T0 + 10 * DAY)]
        plan = allocate(nodes_in("s", "f", 1), [want("c", 1)], existing, policy=gap)
        assert [(a.node_id, a.start) for a in plan.assignments] == [("f-1", T0 + 10 * DAY)]


class TestExistingAllocations:
    def test_a_fully_served_contract_is_left_alone(self):
        existing = [Allocation("f-2", "c", T0, T0 + 30 * DAY)]
        plan = allocate(nodes_in("s", "f", 2), [want("c", 1)], existing, policy=NO_GAP)
        assert plan == type(plan)((), (), ())

    def test_as_of_keeps_the_plan_out_of_the_past(self):
        as_of = T0 + 5 * DAY
        plan = allocate(nodes_in("s", "f", 1), [want("c", 1)], policy=NO_GAP, as_of=as_of)
        assert [(a.start, a.end) for a in plan.assignments] == [(as_of, T0 + 30 * DAY)]

    def test_an_ended_contract_is_skipped(self):
        plan = allocate(nodes_in("s", "f", 1), [want("c", 1)], as_of=T0 + 31 * DAY)
        assert plan.assignments == () and plan.shortfalls == ()

    def test_allocations_on_nodes_not_passed_are_kept_as_they_are(self):
        existing = [Allocation("elsewhere-1", "c", T0, T0 + 30 * DAY)]
        plan = allocate(nodes_in("s", "f", 1), [want("c", 1)], existing, policy=NO_GAP)
        # Capacity on unknown nodes cannot be counted, so the contract is served from f.
        assert node_ids(plan) == ["f-1"]

    def test_without_rebalance_nothing_is_released(self):
        existing = [Allocation("f-1", "c", T0, T0 + 30 * DAY)]
        plan = allocate(nodes_in("s", "f", 2), [want("c", 1)], existing, as_of=T0 + DAY)
        assert plan.released == ()

    def test_rebalance_drops_future_allocations(self):
        future = Allocation("f-1", "c", T0 + 10 * DAY, T0 + 30 * DAY)
        plan = allocate(nodes_in("s", "f", 2), [want("c", 1)], [future], as_of=T0 + DAY, rebalance=True)
        assert [(r.allocation, r.new_end) for r in plan.released] == [(future, future.start)]
        assert [(a.start, a.end) for a in plan.assignments] == [(T0 + DAY, T0 + 30 * DAY)]


class TestDeterminism:
    def test_input_order_does_not_matter(self):
        nodes = [
            *nodes_in("bj", "a", 5),
            *nodes_in("bj", "b", 5, H800),
            *nodes_in("sh", "c", 5),
            *nodes_in("sh", "d", 5, H800),
        ]
        contracts = [
            want(f"c{i}", 1 + i % 4, list(Placement)[i % 3], (H100, H800) if i % 2 else (H100,))
            for i in range(8)
        ]
        first = allocate(nodes, contracts)
        rng = random.Random(7)
        for _ in range(5):
            rng.shuffle(nodes)
            rng.shuffle(contracts)
            assert allocate(nodes, contracts) == first


class TestHeal:
    def setup_method(self):
        self.end = T0 + 30 * DAY
        self.at = T0 + 3 * DAY

    def test_same_site_prefers_the_same_fabric_then_the_same_site(self):
        nodes = nodes_in("bj", "a", 2) + nodes_in("bj", "b", 1) + nodes_in("sh", "c", 1)
        allocations = [Allocation("a-1", "c", T0, self.end)]
        contract = want("c", 1, Placement.SAME_SITE, end=self.end)
        assert heal(nodes, [contract], allocations, "a-1", self.at).replacements[0].new_node_id == "a-2"
        busy = [*allocations, Allocation("a-2", "other", T0, self.end)]
        assert heal(nodes, [contract], busy, "a-1", self.at).replacements[0].new_node_id == "b-1"

    def test_any_may_go_to_another_site(self):
        nodes = nodes_in("bj", "a", 1) + nodes_in("sh", "c", 1)
        allocations = [Allocation("a-1", "c", T0, self.end)]
        contract = want("c", 1, Placement.ANY, end=self.end)
        (r,) = heal(nodes, [contract], allocations, "a-1", self.at).replacements
        assert (r.old_node_id, r.new_node_id, r.start, r.end) == ("a-1", "c-1", self.at, self.end)

    def test_same_fabric_has_no_spare(self):
        nodes = nodes_in("bj", "a", 1) + nodes_in("bj", "b", 1)
        allocations = [Allocation("a-1", "c", T0, self.end)]
        result = heal(nodes, [want("c", 1, end=self.end)], allocations, "a-1", self.at)
        assert result.replacements == ()
        (short,) = result.shortfalls
        assert (short.contract_id, short.missing, short.reason) == ("c", 1, ShortfallReason.PLACEMENT)

    def test_no_compatible_spare(self):
        nodes = nodes_in("bj", "a", 1) + nodes_in("bj", "a", 1, H20, prefix="h20")
        allocations = [Allocation("a-1", "c", T0, self.end)]
        contract = want("c", 8, end=self.end, unit=CapacityUnit.GPUS)
        (short,) = heal(nodes, [contract], allocations, "a-1", self.at).shortfalls
        assert (short.missing, short.unit, short.reason) == (
            8,
            CapacityUnit.GPUS,
            ShortfallReason.NO_COMPATIBLE_MODEL,
        )

    def test_spare_still_cleaning_is_not_ready(self):
        nodes = nodes_in("bj", "a", 2)
        allocations = [
            Allocation("a-1", "c", T0, self.end),
            Allocation("a-2", "previous", T0, self.at - timedelta(hours=1)),
        ]
        policy = AllocationPolicy(cleaning_gap=timedelta(hours=4))
        result = heal(nodes, [want("c", 1, end=self.end)], allocations, "a-1", self.at, policy=policy)
        assert result.shortfalls[0].reason is ShortfallReason.OVERLAPPING_ALLOCATIONS
        later = heal(
            nodes,
            [want("c", 1, end=self.end)],
            allocations,
            "a-1",
            self.at + 3 * timedelta(hours=1),
            policy=policy,
        )
        assert later.replacements[0].new_node_id == "a-2"

    def test_smaller_nodes_do_not_replace_bigger_ones(self):
        nodes = nodes_in("bj", "a", 1) + nodes_in("bj", "a", 1, gpus=4, prefix="small")
        allocations = [Allocation("a-1", "c", T0, self.end)]
        result = heal(nodes, [want("c", 1, end=self.end)], allocations, "a-1", self.at)
        assert result.shortfalls[0].reason is ShortfallReason.NO_COMPATIBLE_MODEL

    def test_future_allocations_of_the_faulty_node_are_replaced_whole(self):
        nodes = nodes_in("bj", "a", 3)
        allocations = [
            Allocation("a-1", "c", T0, T0 + 10 * DAY),
            Allocation("a-1", "d", T0 + 11 * DAY, self.end),
            Allocation("a-1", "old", T0 - 10 * DAY, T0 - DAY),  # over: nothing to heal
        ]
        contracts = [
            want("c", 1, end=T0 + 10 * DAY),
            want("d", 1, start=T0 + 11 * DAY, end=self.end),
        ]
        result = heal(nodes, contracts, allocations, "a-1", self.at, policy=NO_GAP)
        assert [(r.contract_id, r.new_node_id, r.start, r.end) for r in result.replacements] == [
            ("c", "a-2", self.at, T0 + 10 * DAY),
            ("d", "a-2", T0 + 11 * DAY, self.end),
        ]

    def test_two_replacements_do_not_share_a_spare(self):
        nodes = nodes_in("bj", "a", 3)
        allocations = [Allocation("a-1", "c", T0, self.end), Allocation("a-1", "d", T0, self.end)]
        contracts = [want("c", 1, end=self.end), want("d", 1, end=self.end)]
        result = heal(nodes, contracts, allocations, "a-1", self.at, policy=NO_GAP)
        assert sorted(r.new_node_id for r in result.replacements) == ["a-2", "a-3"]

    def test_unknown_node_or_contract(self):
        with pytest.raises(AllocationInputError, match="unknown node"):
            heal([], [], [], "x", self.at)
        with pytest.raises(AllocationInputError, match="unknown contract"):
            heal(nodes_in("s", "f", 1), [], [Allocation("f-1", "c", T0, self.end)], "f-1", self.at)


# --------------------------------------------------------------------------------------------------
# invariants

SITES = ("bj", "sh")
FABRICS = ("f1", "f2")
MODELS = (H100, H800)
STATES = (NodeState.IN_SERVICE,) * 4 + (NodeState.ACCEPTED, NodeState.FAULTY, NodeState.MAINTENANCE)


@st.composite
def scenarios(draw):
    nodes = []
    for site in SITES:
        for fab in FABRICS:
            count = draw(st.integers(0, 5))
            model = draw(st.sampled_from(MODELS))
            for k in range(count):
                gpus = draw(st.sampled_from((8, 8, 8, 4)))
                nodes.append(Node(f"{site}-{fab}-{k}", draw(st.sampled_from(STATES)), model, site, fab, gpus))
    contracts = []
    for i in range(draw(st.integers(1, 7))):
        start = draw(st.integers(0, 8))
        length = draw(st.integers(1, 8))
        unit = draw(st.sampled_from(list(CapacityUnit)))
        quantity = draw(st.integers(1, 4)) * (
            1 if unit is CapacityUnit.NODES else draw(st.sampled_from((4, 8, 12)))
        )
        models = frozenset(draw(st.sets(st.sampled_from(MODELS), min_size=1)))
        placement = draw(st.sampled_from(list(Placement)))
        contracts.append(
            Contract(
                f"c{i}", quantity, unit, models, placement, T0 + start * DAY, T0 + (start + length) * DAY
            )
        )
    gap = timedelta(hours=draw(st.sampled_from((0, 12, 24))))
    spares = SparePolicy(count=draw(st.integers(0, 1)))
    prefix = draw(st.integers(0, len(contracts)))
    return nodes, contracts, AllocationPolicy(cleaning_gap=gap, spares=spares), prefix


def check_plan(nodes, contracts, policy, existing, plan, since=None):
    node = {n.id: n for n in nodes}
    contract = {c.id: c for c in contracts}
    everything = [*existing, *plan.assignments]

    # no node in two overlapping allocations; between two contracts, the cleaning gap
    per_node = defaultdict(list)
    for a in everything:
        per_node[a.node_id].append(a)
    for allocs in per_node.values():
        allocs.sort(key=lambda a: a.start)
        for x, y in pairwise(allocs):
            gap = timedelta(0) if x.contract_id == y.contract_id else policy.cleaning_gap
            assert x.end + gap <= y.start, (x, y)

    # models, states, placement
    for a in plan.assignments:
        n, c = node[a.node_id], contract[a.contract_id]
        assert n.model in c.models
        assert n.state in ALLOCATABLE_STATES
        assert c.start <= a.start < a.end <= c.end
    # placement holds at every moment (a rebalance may move a contract, all of it at once)
    for c in contracts:
        mine = [a for a in everything if a.contract_id == c.id]
        for t in {a.start for a in mine}:
            held = [node[a.node_id] for a in mine if a.start <= t < a.end]
            if c.placement is Placement.SAME_FABRIC:
                assert len({(n.site, n.fabric) for n in held}) <= 1, (c, t)
            elif c.placement is Placement.SAME_SITE:
                assert len({n.site for n in held}) <= 1, (c, t)

    # a contract without a shortfall is served in full at every moment of its term
    short = {s.contract_id for s in plan.shortfalls}
    for c in contracts:
        if c.id in short:
            continue
        mine = [a for a in everything if a.contract_id == c.id]
        cuts = sorted({c.start, c.end, *(a.start for a in mine), *(a.end for a in mine)})
        for t in cuts:
            if max(c.start, since or c.start) <= t < c.end:
                units = sum(
                    1 if c.unit is CapacityUnit.NODES else node[a.node_id].gpus
                    for a in mine
                    if a.start <= t < a.end
                )
                assert units >= c.quantity, (c, t)

    # spares: whenever a new assignment runs, its fabric keeps its spare pool unallocated
    allocatable = defaultdict(list)
    for n in nodes:
        if n.state in ALLOCATABLE_STATES:
            allocatable[(n.site, n.fabric)].append(n.id)
    for a in plan.assignments:
        key = (node[a.node_id].site, node[a.node_id].fabric)
        spare = policy.spares.for_fabric(*key, len(allocatable[key]))
        moments = {a.start} | {b.start for b in everything if a.start <= b.start < a.end}
        for t in moments:
            busy = {b.node_id for b in everything if b.start <= t < b.end}
            assert sum(1 for i in allocatable[key] if i not in busy) >= spare, (a, t)


class TestInvariants:
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_plans_are_sound(self, scenario):
        nodes, contracts, policy, prefix = scenario
        # Allocate part of the book first; what it placed is the existing state for the whole book.
        first = allocate(nodes, contracts[:prefix], policy=policy)
        check_plan(nodes, contracts[:prefix], policy, [], first)
        plan = allocate(nodes, contracts, first.assignments, policy=policy)
        check_plan(nodes, contracts, policy, first.assignments, plan)
        # Nothing existing is touched without rebalance.
        assert plan.released == ()

    @settings(max_examples=60, deadline=None)
    @given(scenarios())
    def test_rebalance_keeps_history_and_plans_soundly(self, scenario):
        nodes, contracts, policy, _ = scenario
        first = allocate(nodes, contracts, policy=policy)
        as_of = T0 + 4 * DAY
        plan = allocate(nodes, contracts, first.assignments, policy=policy, as_of=as_of, rebalance=True)
        kept = [a for a in first.assignments if a.end <= as_of]
        cut = [
            Allocation(r.allocation.node_id, r.allocation.contract_id, r.allocation.start, r.new_end)
            for r in plan.released
            if r.new_end > r.allocation.start
        ]
        assert all(r.allocation.end > as_of for r in plan.released)
        assert all(a.start >= as_of for a in plan.assignments)
        check_plan(nodes, contracts, policy, kept + cut, plan, since=as_of)

    @settings(max_examples=60, deadline=None)
    @given(scenarios(), st.data())
    def test_heal_stays_in_domain_and_books_nobody_twice(self, scenario, data):
        nodes, contracts, policy, _ = scenario
        plan = allocate(nodes, contracts, policy=policy)
        if not plan.assignments:
            return
        victim = data.draw(st.sampled_from(plan.assignments))
        at = victim.start + (victim.end - victim.start) / 2
        result = heal(nodes, contracts, plan.assignments, victim.node_id, at, policy=policy)
        node = {n.id: n for n in nodes}
        contract = {c.id: c for c in contracts}
        old = node[victim.node_id]
        after = [
            a
            if a.node_id != old.id or a.end <= at
            else Allocation(a.node_id, a.contract_id, a.start, max(a.start, at))
            for a in plan.assignments
        ]
        after = [a for a in after if a.end > a.start]
        for r in result.replacements:
            new, c = node[r.new_node_id], contract[r.contract_id]
            assert new.model in c.models and new.state in ALLOCATABLE_STATES and new.gpus >= old.gpus
            if c.placement is Placement.SAME_FABRIC:
                assert (new.site, new.fabric) == (old.site, old.fabric)
            elif c.placement is Placement.SAME_SITE:
                assert new.site == old.site
            after.append(Allocation(r.new_node_id, r.contract_id, r.start, r.end))
        per_node = defaultdict(list)
        for a in after:
            per_node[a.node_id].append(a)
        for allocs in per_node.values():
            allocs.sort(key=lambda a: a.start)
            for x, y in pairwise(allocs):
                gap = timedelta(0) if x.contract_id == y.contract_id else policy.cleaning_gap
                assert x.end + gap <= y.start
        assert len(result.replacements) + len(result.shortfalls) == sum(
            1 for a in plan.assignments if a.node_id == old.id and a.end > at
        )
