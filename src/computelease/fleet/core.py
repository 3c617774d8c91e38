"""The node lifecycle, pure: which state changes are allowed, and what a node's history says about
any period.

A node's history is a list of events, each moving it into ``to_state`` at ``at``. The state holds
from that event to the next, so the history cuts time into intervals::

    event_k = (at_k, to_k)        interval_k = [at_k, at_{k+1})     (the last one is open)

Occupancy, SLA and the lessor's view are sums over these intervals; this module only derives them,
it never guesses: before a node's first event it has no state at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from computelease.errors import Conflict, Unprocessable

__all__ = [
    "ACTIVE_STATES",
    "TRANSITIONS",
    "Event",
    "HistoryInvalid",
    "IllegalTransition",
    "NodeState",
    "StateInterval",
    "allowed_next",
    "check_event_time",
    "check_transition",
    "durations",
    "intervals",
    "replay",
    "state_at",
]


class NodeState(StrEnum):
    ordered = "ordered"
    delivered = "delivered"
    accepted = "accepted"  # passed the acceptance test; may be handed to a tenant
    in_service = "in_service"
    faulty = "faulty"
    repair = "repair"
    maintenance = "maintenance"
    retired = "retired"
    sold = "sold"


_S = NodeState
# The allowed moves. A node that fails its acceptance test goes faulty (dead on arrival) and, once
# repaired, back through acceptance; a node in service can be taken out (maintenance), break (faulty),
# be sent for repair, or leave the fleet (retired, sold). Sold is the end.
TRANSITIONS: Mapping[NodeState, frozenset[NodeState]] = MappingProxyType(
    {
        _S.ordered: frozenset({_S.delivered}),
        _S.delivered: frozenset({_S.accepted, _S.faulty}),
        _S.accepted: frozenset({_S.in_service, _S.faulty}),
        _S.in_service: frozenset({_S.faulty, _S.repair, _S.maintenance, _S.retired, _S.sold}),
        _S.faulty: frozenset({_S.in_service, _S.repair, _S.retired, _S.sold}),
        _S.repair: frozenset({_S.accepted, _S.in_service, _S.faulty, _S.retired, _S.sold}),
        _S.maintenance: frozenset({_S.in_service, _S.faulty, _S.repair}),
        _S.retired: frozenset({_S.sold}),
        _S.sold: frozenset(),
    }
)

# Nodes the operator still holds and runs (or will): everything before retirement or sale.
ACTIVE_STATES = frozenset(set(NodeState) - {_S.retired, _S.sold})


def allowed_next(state: NodeState | str) -> tuple[NodeState, ...]:
    """The states ``state`` may move to, in lifecycle order."""
    targets = TRANSITIONS[NodeState(state)]
    return tuple(s for s in NodeState if s in targets)


class IllegalTransition(Conflict):
    """A state change the lifecycle does not allow; says the current, requested and allowed states."""

    def __init__(self, node: str, current: NodeState, requested: NodeState) -> None:
        allowed = allowed_next(current)
        choices = ", ".join(allowed) if allowed else "none (it is final)"
        super().__init__(
            f"{node} is {current.value}; it cannot move to {requested.value}. "
            f"From {current.value} it may move to: {choices}",
            current=current.value,
            requested=requested.value,
            allowed=[s.value for s in allowed],
        )


class HistoryInvalid(Unprocessable):
    pass


def check_transition(current: NodeState | str, requested: NodeState | str, *, node: str = "the node") -> None:
    current, requested = NodeState(current), NodeState(requested)
    if requested not in TRANSITIONS[current]:
        raise IllegalTransition(node, current, requested)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise HistoryInvalid(f"{what} must carry a time zone (UTC), got {value.isoformat()}")
    return value


def check_event_time(at: datetime, *, last: datetime | None, now: datetime, node: str = "the node") -> None:
    """A new event may not predate the node's latest one (history is appended, never rewritten, so the
    intervals others computed stay true) nor lie in the future (a state is a fact, not a plan)."""
    _aware(at, "the time of a state change")
    if last is not None and at < last:
        raise HistoryInvalid(
            f"{node} changed state last at {last.isoformat()}; a new change cannot be dated earlier "
            f"({at.isoformat()})"
        )
    if at > now:
        raise HistoryInvalid(
            f"a state change cannot be dated in the future ({at.isoformat()}); record it when it happens"
        )


@dataclass(frozen=True, slots=True)
class Event:
    """The node entered ``to_state`` at ``at`` (from ``from_state``; ``None`` for its first event)."""

    at: datetime
    to_state: NodeState
    from_state: NodeState | None = None


def replay(events: Sequence[Event], *, node: str = "the node") -> NodeState:
    """Checks a whole history (chained, allowed, in time order) and returns the state it ends in."""
    if not events:
        raise HistoryInvalid(f"{node} has no history")
    current: NodeState | None = None
    last: datetime | None = None
    for i, event in enumerate(events):
        at = _aware(event.at, f"event {i} of {node}")
        to = NodeState(event.to_state)
        start = None if event.from_state is None else NodeState(event.from_state)
        if start != current:
            was = current.value if current else "nothing"
            raise HistoryInvalid(f"event {i} of {node} starts from {start} but {node} was {was}")
        if current is not None:
            check_transition(current, to, node=node)
        if last is not None and at < last:
            raise HistoryInvalid(f"event {i} of {node} ({at.isoformat()}) is earlier than the one before")
        current, last = to, at
    assert current is not None
    return current


@dataclass(frozen=True, slots=True)
class StateInterval:
    """Node ``node_id`` was in ``state`` over ``[start, end)``; ``end`` is ``None`` while it still is.

    The field names match :class:`computelease.allocation.occupancy.StateInterval`, whose node ids
    are strings: ``occupancy.StateInterval(str(i.node_id), i.state, i.start, i.end)``."""

    node_id: int
    state: NodeState
    start: datetime
    end: datetime | None

    @property
    def duration(self) -> timedelta | None:
        return None if self.end is None else self.end - self.start


def intervals(
    node_id: int,
    events: Iterable[Event],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StateInterval]:
    """The node's states over ``[start, end)`` (either bound ``None``: unbounded), clipped to it.

    ``events`` must be in time order (ties keep their order: the later-listed one wins the instant).
    With ``end`` given every interval is closed; without it the current state's interval is open.
    Time before the first event is in no interval. Zero-length intervals are left out.
    """
    ordered = list(events)
    if start is not None:
        _aware(start, "the period start")
    if end is not None:
        _aware(end, "the period end")
        if start is not None and end < start:
            raise HistoryInvalid(
                f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
    out: list[StateInterval] = []
    for i, event in enumerate(ordered):
        s = _aware(event.at, f"event {i} of node {node_id}")
        e = ordered[i + 1].at if i + 1 < len(ordered) else None
        if start is not None and s < start:
            s = start
        if end is not None and (e is None or e > end):
            e = end
        if e is not None and e <= s:
            continue
        out.append(StateInterval(node_id, NodeState(event.to_state), s, e))
    return out


def state_at(events: Sequence[Event], at: datetime) -> NodeState | None:
    """The state at instant ``at`` (``None`` before the first event)."""
    state = None
    for event in events:
        if event.at > at:
            break
        state = NodeState(event.to_state)
    return state


def durations(found: Iterable[StateInterval], *, until: datetime | None = None) -> dict[NodeState, timedelta]:
    """Time spent per state; open intervals count up to ``until`` (required when any is open)."""
    totals: dict[NodeState, timedelta] = {}
    for interval in found:
        end = interval.end if interval.end is not None else until
        if end is None:
            raise HistoryInvalid("an interval is still open; say until when to count it")
        if end > interval.start:
            totals[interval.state] = totals.get(interval.state, timedelta(0)) + (end - interval.start)
    return totals
