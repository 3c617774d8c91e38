"""The node lifecycle, pure: the transition table, event times, and state intervals."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computelease.errors import AppError
from computelease.fleet.core import (
    TRANSITIONS,
    Event,
    HistoryInvalid,
    IllegalTransition,
    NodeState,
    StateInterval,
    allowed_next,
    check_event_time,
    check_transition,
    durations,
    intervals,
    replay,
    state_at,
)

S = NodeState
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class TestTransitions:
    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (S.ordered, S.delivered),
            (S.delivered, S.accepted),
            (S.accepted, S.in_service),
            (S.in_service, S.faulty),
            (S.faulty, S.in_service),
            (S.faulty, S.repair),
            (S.repair, S.in_service),
            (S.in_service, S.maintenance),
            (S.maintenance, S.in_service),
            (S.repair, S.retired),
            (S.faulty, S.sold),
            (S.retired, S.sold),
        ],
    )
    def test_the_lifecycle_allows(self, start: NodeState, end: NodeState) -> None:
        check_transition(start, end)

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (S.ordered, S.in_service),  # no skipping delivery and acceptance
            (S.delivered, S.in_service),  # no service without acceptance
            (S.in_service, S.ordered),
            (S.in_service, S.in_service),
            (S.sold, S.in_service),
            (S.retired, S.in_service),
            (S.maintenance, S.sold),
        ],
    )
    def test_the_lifecycle_refuses(self, start: NodeState, end: NodeState) -> None:
        with pytest.raises(IllegalTransition):
            check_transition(start, end)

    def test_every_state_is_in_the_table_and_only_sold_is_final(self) -> None:
        assert set(TRANSITIONS) == set(NodeState)
        assert [s for s in NodeState if not TRANSITIONS[s]] == [S.sold]
        assert all(s not in TRANSITIONS[s] for s in NodeState)

    def test_every_state_is_reachable_from_ordered(self) -> None:
        seen, todo = {S.ordered}, [S.ordered]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen == set(NodeState)

    def test_the_error_names_current_requested_and_allowed(self) -> None:
        with pytest.raises(IllegalTransition) as info:
            check_transition("in_service", "ordered", node="node QY-1")
        err = info.value
        assert isinstance(err, AppError) and err.status == 409
        assert "node QY-1 is in_service" in err.detail and "ordered" in err.detail
        assert "faulty, repair, maintenance, retired, sold" in err.detail
        assert err.problem()["current"] == "in_service"
        assert err.problem()["requested"] == "ordered"
        assert err.problem()["allowed"] == ["faulty", "repair", "maintenance", "retired", "sold"]

    def test_the_final_state_says_so(self) -> None:
        with pytest.raises(IllegalTransition, match="none \\(it is final\\)"):
            check_transition(S.sold, S.retired)

    def test_allowed_next_is_in_lifecycle_order(self) -> None:
        assert allowed_next(S.repair) == (S.accepted, S.in_service, S.faulty, S.retired, S.sold)


class TestEventTime:
    def test_not_before_the_latest_change(self) -> None:
        with pytest.raises(HistoryInvalid, match="cannot be dated earlier"):
            check_event_time(h(1), last=h(2), now=h(5))
        check_event_time(h(2), last=h(2), now=h(5))  # the same instant is allowed

    def test_not_in_the_future(self) -> None:
        with pytest.raises(HistoryInvalid, match="future"):
            check_event_time(h(6), last=h(2), now=h(5))

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(HistoryInvalid, match="time zone"):
            check_event_time(datetime(2025, 1, 1), last=None, now=h(5))


LIFE = [
    Event(h(0), S.ordered),
    Event(h(10), S.delivered, S.ordered),
    Event(h(20), S.accepted, S.delivered),
    Event(h(30), S.in_service, S.accepted),
    Event(h(50), S.faulty, S.in_service),
    Event(h(55), S.in_service, S.faulty),
]


class TestReplay:
    def test_a_legal_history_ends_where_it_says(self) -> None:
        assert replay(LIFE) == S.in_service

    def test_a_broken_chain_is_refused(self) -> None:
        bad = [*LIFE[:3], Event(h(30), S.in_service, S.delivered)]
        with pytest.raises(HistoryInvalid, match="starts from delivered but the node was accepted"):
            replay(bad)

    def test_an_illegal_step_is_refused(self) -> None:
        with pytest.raises(IllegalTransition):
            replay([Event(h(0), S.ordered), Event(h(1), S.in_service, S.ordered)])

    def test_time_going_backwards_is_refused(self) -> None:
        with pytest.raises(HistoryInvalid, match="earlier"):
            replay([Event(h(5), S.ordered), Event(h(1), S.delivered, S.ordered)])


class TestIntervals:
    def test_whole_history_ends_open(self) -> None:
        found = intervals(7, LIFE)
        assert [(i.state, i.start, i.end) for i in found] == [
            (S.ordered, h(0), h(10)),
            (S.delivered, h(10), h(20)),
            (S.accepted, h(20), h(30)),
            (S.in_service, h(30), h(50)),
            (S.faulty, h(50), h(55)),
            (S.in_service, h(55), None),
        ]
        assert all(i.node_id == 7 for i in found)

    def test_a_period_clips_both_ends(self) -> None:
        found = intervals(1, LIFE, h(40), h(60))
        assert [(i.state, i.start, i.end) for i in found] == [
            (S.in_service, h(40), h(50)),
            (S.faulty, h(50), h(55)),
            (S.in_service, h(55), h(60)),
        ]

    def test_before_the_first_event_there_is_no_state(self) -> None:
        found = intervals(1, LIFE[4:], h(0), h(60))
        assert found[0].start == h(50)
        assert state_at(LIFE, h(-1)) is None and state_at(LIFE, h(52)) is S.faulty

    def test_a_period_after_the_last_event(self) -> None:
        assert intervals(1, LIFE, h(100), h(101)) == [StateInterval(1, S.in_service, h(100), h(101))]

    def test_zero_length_states_are_left_out(self) -> None:
        same = [Event(h(0), S.ordered), Event(h(0), S.delivered, S.ordered)]
        assert [i.state for i in intervals(1, same, h(0), h(1))] == [S.delivered]

    def test_a_period_ending_before_it_starts(self) -> None:
        with pytest.raises(HistoryInvalid, match="before it starts"):
            intervals(1, LIFE, h(5), h(1))

    def test_durations(self) -> None:
        spent = durations(intervals(1, LIFE, h(0), h(60)))
        assert spent[S.in_service] == timedelta(hours=25) and spent[S.faulty] == timedelta(hours=5)
        with pytest.raises(HistoryInvalid, match="open"):
            durations(intervals(1, LIFE))
        assert durations(intervals(1, LIFE), until=h(60)) == spent


def _histories() -> st.SearchStrategy[list[Event]]:
    """Random legal histories: a walk over the transition table with random gaps (some zero)."""

    @st.composite
    def build(draw: st.DrawFn) -> list[Event]:
        state, t = S.ordered, h(draw(st.integers(0, 100)))
        events = [Event(t, state)]
        for _ in range(draw(st.integers(0, 12))):
            options = allowed_next(state)
            if not options:
                break
            nxt = draw(st.sampled_from(options))
            t += timedelta(minutes=draw(st.integers(0, 3000)))
            events.append(Event(t, nxt, state))
            state = nxt
        return events

    return build()


@settings(max_examples=150, deadline=None)
@given(_histories(), st.integers(-50, 400), st.integers(0, 400))
def test_intervals_partition_the_period_after_the_first_event(events, start_h, length_h) -> None:
    """Capacity-time conservation for one node: inside the period, from its first event on, every
    instant is in exactly one interval, in the state the history says."""
    replay(events)
    start, end = h(start_h), h(start_h + length_h)
    found = intervals(1, events, start, end)
    covered_from = max(start, events[0].at)
    total = sum((i.end - i.start for i in found), timedelta(0))
    assert total == max(timedelta(0), end - covered_from)
    for a, b in itertools.pairwise(found):
        assert a.end == b.start  # contiguous, no overlap
    for i in found:
        assert start <= i.start < i.end <= end
        assert state_at(events, i.start) is i.state
