"""GPU and node health from heartbeat readings: pure rules, no I/O.

Rules, most serious first (a GPU takes the worst state that applies and keeps every reason found):

- **down**: the node missed at least ``policy.down_after_missed`` heartbeat intervals, where
  ``missed = ⌈elapsed / interval⌉ − 1`` counts heartbeats whose due time has passed;
- **unhealthy**: the GPU is missing from the node's heartbeat; or an XID outside ``policy.ignored_xids``
  (13, 31, 43, 45, 68 are application errors, as in NVIDIA's k8s device plugin); or any new uncorrected
  (DBE) ECC error since the previous reading; or a row remap pending or failed;
- **degraded**: measured throughput share (acceptance runs) ``< policy.degraded_below_share``;
- **healthy** otherwise.

A counter that a card does not support is ``None`` and never counts against it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from computelease.errors import Unprocessable

IGNORED_XIDS = frozenset({13, 31, 43, 45, 68})
# The XIDs that NVIDIA's device plugin treats as "drain" (DOMAIN.md), flagged so that allocation can move
# work off the node rather than wait for a reset.
DRAIN_XIDS = frozenset({48, 63, 74, 79, 94, 95})


class HealthInputError(Unprocessable):
    title = "Invalid health input"


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    DOWN = "down"


_ORDER = {Health.HEALTHY: 0, Health.DEGRADED: 1, Health.UNHEALTHY: 2, Health.DOWN: 3}


def worst(states: Iterable[Health]) -> Health:
    return max(states, key=_ORDER.__getitem__, default=Health.HEALTHY)


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuReading:
    """One GPU in one heartbeat. ``xids`` are the XID events seen since the previous heartbeat."""

    gpu_id: str
    xids: tuple[int, ...] = ()
    ecc_dbe_volatile: int | None = None
    ecc_dbe_aggregate: int | None = None
    remap_pending: bool | None = None
    remap_failed: bool | None = None

    def __post_init__(self) -> None:
        xids = tuple(self.xids)
        if any(isinstance(x, bool) or not isinstance(x, int) for x in xids):
            raise HealthInputError(f"GPU {self.gpu_id}: XIDs must be integers, got {xids!r}")
        object.__setattr__(self, "xids", xids)
        for name in ("ecc_dbe_volatile", "ecc_dbe_aggregate"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise HealthInputError(
                    f"GPU {self.gpu_id}: {name} must be a count ≥ 0 or None, got {value!r}"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPolicy:
    ignored_xids: frozenset[int] = IGNORED_XIDS
    down_after_missed: int = 3
    # The contract's threshold on delivered throughput share; None turns the degraded rule off.
    degraded_below_share: Decimal | None = None

    def __post_init__(self) -> None:
        if self.down_after_missed < 1:
            raise HealthInputError("down_after_missed must be at least 1")
        object.__setattr__(self, "ignored_xids", frozenset(self.ignored_xids))
        if self.degraded_below_share is not None:
            object.__setattr__(self, "degraded_below_share", _share(self.degraded_below_share))


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class GpuHealth:
    gpu_id: str
    state: Health
    reasons: tuple[Reason, ...] = ()
    drain: bool = False

    @property
    def summary(self) -> str:
        return "; ".join(r.detail for r in self.reasons) or self.state.value


@dataclass(frozen=True, slots=True)
class NodeHealth:
    state: Health
    gpus: tuple[GpuHealth, ...] = field(default=())
    missed: int = 0

    @property
    def drain(self) -> bool:
        return any(g.drain for g in self.gpus)


def _share(value: object) -> Decimal:
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation as exc:
        raise HealthInputError(f"a throughput share must be a number, got {value!r}") from exc
    if not result.is_finite() or result < 0:
        raise HealthInputError(f"a throughput share must be a finite number ≥ 0, got {value!r}")
    return result


def missed_intervals(last_seen: datetime, now: datetime, interval: timedelta | float) -> int:
    """Heartbeats due since ``last_seen`` whose due time has passed: ``⌈elapsed / interval⌉ − 1``, ≥ 0."""
    step = interval if isinstance(interval, timedelta) else timedelta(seconds=interval)
    if step <= timedelta(0):
        raise HealthInputError("the heartbeat interval must be positive")
    elapsed = now - last_seen
    if elapsed <= timedelta(0):
        return 0
    # Whole microseconds keep the boundary exact: at exactly one interval the next beat is due, not late.
    return (elapsed // timedelta(microseconds=1) - 1) // (step // timedelta(microseconds=1))


def _new_uncorrected(current: GpuReading, previous: GpuReading | None) -> int:
    """New DBE errors since ``previous``; a counter that went down was reset, so all of it is new."""
    if previous is None:
        return 0
    new = 0
    for name in ("ecc_dbe_aggregate", "ecc_dbe_volatile"):
        now, before = getattr(current, name), getattr(previous, name)
        if now is None or before is None:
            continue
        new = max(new, now - before if now >= before else now)
    return new


def classify_gpu(
    gpu_id: str,
    reading: GpuReading | None,
    previous: GpuReading | None = None,
    *,
    missed: int = 0,
    measured_share: Decimal | float | None = None,
    policy: HealthPolicy | None = None,
) -> GpuHealth:
    """Classify one GPU. ``reading`` None means the node reported but this GPU was absent from it."""
    policy = policy or HealthPolicy()
    if missed >= policy.down_after_missed:
        return GpuHealth(
            gpu_id, Health.DOWN, (Reason("no_heartbeat", f"no heartbeat for {missed} intervals"),)
        )
    if reading is None:
        return GpuHealth(gpu_id, Health.UNHEALTHY, (Reason("missing", "GPU missing from the node"),))
    if reading.gpu_id != gpu_id:
        raise HealthInputError(f"reading for GPU {reading.gpu_id} passed as GPU {gpu_id}")
    reasons: list[Reason] = []
    critical = sorted({x for x in reading.xids if x not in policy.ignored_xids})
    reasons.extend(Reason("xid", f"XID {x}") for x in critical)
    new_dbe = _new_uncorrected(reading, previous)
    if new_dbe:
        reasons.append(Reason("ecc_dbe", f"{new_dbe} new uncorrected (DBE) ECC error(s)"))
    if reading.remap_pending:
        reasons.append(Reason("remap_pending", "row remap pending: reset the GPU"))
    if reading.remap_failed:
        reasons.append(Reason("remap_failed", "row remap failed"))
    state = Health.UNHEALTHY if reasons else Health.HEALTHY
    threshold = policy.degraded_below_share
    if threshold is not None and measured_share is not None:
        share = _share(measured_share)
        if share < threshold:
            reasons.append(Reason("throughput", f"throughput share {share} below {threshold}"))
            state = worst((state, Health.DEGRADED))
    return GpuHealth(gpu_id, state, tuple(reasons), drain=any(x in DRAIN_XIDS for x in critical))


def classify_node(
    expected_gpu_ids: Iterable[str],
    readings: Iterable[GpuReading],
    previous: Mapping[str, GpuReading] | None = None,
    *,
    missed: int = 0,
    shares: Mapping[str, Decimal | float] | None = None,
    policy: HealthPolicy | None = None,
) -> NodeHealth:
    """Classify every GPU of a node from one heartbeat; the node takes its worst GPU's state.

    GPUs the fleet expects but the heartbeat lacks are missing; GPUs the heartbeat reports but the fleet
    does not know are classified too, so that a swapped card shows up.
    """
    policy = policy or HealthPolicy()
    previous = previous or {}
    shares = shares or {}
    by_id: dict[str, GpuReading] = {}
    for reading in readings:
        if reading.gpu_id in by_id:
            raise HealthInputError(f"GPU {reading.gpu_id} appears twice in one heartbeat")
        by_id[reading.gpu_id] = reading
    down = missed >= policy.down_after_missed
    # A late heartbeat's readings are stale; a down node reports only the GPUs the fleet expects.
    gpu_ids = set(expected_gpu_ids) if down else set(expected_gpu_ids) | set(by_id)
    gpus = tuple(
        classify_gpu(
            gpu_id,
            by_id.get(gpu_id),
            previous.get(gpu_id),
            missed=missed,
            measured_share=shares.get(gpu_id),
            policy=policy,
        )
        for gpu_id in sorted(gpu_ids)
    )
    return NodeHealth(Health.DOWN if down else worst(g.state for g in gpus), gpus, missed)


def all_healthy(
    expected: Collection[int],
    samples: Iterable[Any],
    previous: Mapping[int, tuple[int | None, int | None]],
    *,
    policy: HealthPolicy,
) -> bool:
    """Whether :func:`classify_node` would find every GPU of a heartbeat healthy, decided without building
    readings: ingest's fast path for the steady state. GPUs are slot numbers here; ``samples`` have the
    wire sample's attributes (``index``, ``lost``, ``xids``, ``remap_pending``, ``remap_failed``,
    ``ecc_dbe_volatile``, ``ecc_dbe_aggregate``) and ``previous`` maps a slot to its previous
    ``(ecc_dbe_volatile, ecc_dbe_aggregate)``. Answers False at any doubt (a lost GPU, say), never True
    where a rule above applies; no throughput shares are given, so the degraded rule does not apply.
    """
    seen = set()
    ignored = policy.ignored_xids
    for g in samples:
        if g.lost or g.remap_pending or g.remap_failed:
            return False
        if any(x not in ignored for x in g.xids):
            return False
        before = previous.get(g.index)
        if before is not None:
            # _new_uncorrected: new errors when a counter rose, or was reset and counts again.
            for now, then in ((g.ecc_dbe_volatile, before[0]), (g.ecc_dbe_aggregate, before[1])):
                if now is not None and then is not None and now != then and now > 0:
                    return False
        seen.add(g.index)
    return seen.issuperset(expected)
