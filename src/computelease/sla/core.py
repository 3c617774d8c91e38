"""SLA from delivered compute: a pure function of a contract, a month and plain interval records.

Capacity-time is measured in GPU-hours over the **service window** of the period: the calendar month in
the contract's time zone, cut to the contract's own start and end (and to ``as_of`` for a month still
running). With ``C`` the contracted GPUs and ``T`` the service window's length in hours::

    contracted  = C · T
    w_g(t)      = min(1, share_g(t))   while GPU g serves the contract (healthy, allocated, degraded)
                = 0                    while it is unhealthy, down or in maintenance
    n(t)        = number of GPUs allocated to the contract at t, whatever their state
    delivered   = ∫ min(C, Σ_g w_g(t)) dt
    unavailable = contracted − delivered = excluded + counted
    excluded    = the unavailable part that falls inside announced maintenance within the allowance
    availability % = 100 · delivered / (contracted − excluded)      (100 when the denominator is 0)

Each instant's unavailable rate ``U = C − min(C, Σ w)`` is laid on its causes: the loss ``1 − w_g`` of
each allocated GPU and the shortfall ``max(0, C − n)`` when fewer GPUs are allocated than contracted.
A cause is excluded when an excluded maintenance span covers its node (the shortfall: a span that
covers every node). With ``Lc`` and ``Le`` the counted and excluded losses (``U ≤ Lc + Le``, with
equality whenever ``n ≤ C``)::

    counted rate  = min(U, Lc)        excluded rate = U − counted rate

so spare GPUs (a replacement overlapping the node it replaces) cover maintenance losses before
failures: maintenance never hides a failure. Each cause gets its loss's pro-rata part of its group's
rate. The evidence lists the causes as intervals with the GPU-hours each one cost; they sum to the
unavailable time. Availability never rises when a GPU's allocated time gets worse.

The credit::

    period fee = monthly fee · (contract time in the month / length of the month), to the fen
    credit %   = the largest tier credit among tiers with availability < tier.below_pct (0 when none)
    credit     = min(round(period fee · credit % / 100), round(period fee · cap % / 100))

Maintenance: a window is announced when ``start − notice_given_at ≥ notice_hours``; announced windows
use up ``maintenance_allowance_hours`` of wall-clock time per month, earliest first, and what lies beyond
it counts like late-notice maintenance. The allowance is not prorated for a partial month.

Tiers are compared with the exact availability; ``availability_pct`` is reported truncated to four
decimals, which agrees with the comparison for any threshold that has at most four decimals.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from computelease.errors import Unprocessable
from computelease.money import CONTEXT, to_fen

DEFAULT_TZ = "Asia/Shanghai"

ALLOCATED = "allocated"
HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
DOWN = "down"
MAINTENANCE = "maintenance"
SHORTFALL = "shortfall"
SERVING_STATES = frozenset({ALLOCATED, HEALTHY, DEGRADED})
STATES = SERVING_STATES | {UNHEALTHY, DOWN, MAINTENANCE}

MAINT_EXCLUDED = "excluded"
MAINT_OVER_ALLOWANCE = "over_allowance"
MAINT_LATE_NOTICE = "late_notice"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_HOUR = 3_600_000_000
_HOURS_Q = Decimal("0.000001")
_ZERO_HOURS = Decimal("0.000000")
_PCT_Q = Decimal("0.0001")
_PERIOD = re.compile(r"(\d{4})-(\d{2})")
# Among overlapping reports of the same GPU the least delivery wins; this orders equal deliveries so
# that the evidence names the most serious cause, whatever order the records came in.
_SEVERITY = {DOWN: 0, UNHEALTHY: 1, MAINTENANCE: 2, DEGRADED: 3, HEALTHY: 4, ALLOCATED: 5}
_SHORTFALL_REASON = "fewer GPUs allocated than contracted"
_MAINT_RANK = {MAINT_EXCLUDED: 0, MAINT_OVER_ALLOWANCE: 1, MAINT_LATE_NOTICE: 2}


class SlaInputError(Unprocessable):
    title = "Invalid SLA input"


# ---------------------------------------------------------------------------------------------- inputs


def _decimal(value: object, what: str) -> Decimal:
    # Shares and percentages are measurements, not money: a float is taken at its shortest repr.
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation as exc:
        raise SlaInputError(f"{what} must be a number, got {value!r}") from exc
    if not result.is_finite():
        raise SlaInputError(f"{what} must be finite, got {value!r}")
    return result


def _nonneg(value: object, what: str) -> Decimal:
    result = _decimal(value, what)
    if result < 0:
        raise SlaInputError(f"{what} must not be negative, got {value!r}")
    return result


def _us(value: object, what: str) -> int:
    if not isinstance(value, datetime):
        raise SlaInputError(f"{what} must be a datetime, got {value!r}")
    if value.utcoffset() is None:
        raise SlaInputError(f"{what} must be timezone-aware; convert stored times with kit.time.as_utc")
    return (value - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class CreditTier:
    """Availability strictly below ``below_pct`` earns ``credit_pct`` of the period's fee."""

    below_pct: Decimal
    credit_pct: Decimal

    def __post_init__(self) -> None:
        below = _nonneg(self.below_pct, "tier below_pct")
        if below > 100:
            raise SlaInputError(f"tier below_pct must be at most 100, got {self.below_pct!r}")
        object.__setattr__(self, "below_pct", below)
        object.__setattr__(self, "credit_pct", _nonneg(self.credit_pct, "tier credit_pct"))


def _tier(value: object) -> CreditTier:
    if isinstance(value, CreditTier):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return CreditTier(value[0], value[1])
    raise SlaInputError(f"a credit tier is CreditTier(below_pct, credit_pct) or a pair, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPolicy:
    """The SLA terms: data, so that each contract can carry its own tiers."""

    target_pct: Decimal = Decimal("99.9")
    tiers: tuple[CreditTier, ...] = ()
    cap_pct: Decimal = Decimal("100")
    maintenance_allowance_hours: Decimal = Decimal("0")
    notice_hours: Decimal = Decimal("72")

    def __post_init__(self) -> None:
        target = _nonneg(self.target_pct, "target_pct")
        if target > 100:
            raise SlaInputError(f"target_pct must be at most 100, got {self.target_pct!r}")
        tiers = tuple(sorted((_tier(t) for t in self.tiers), key=lambda t: (t.below_pct, t.credit_pct)))
        if len({t.below_pct for t in tiers}) != len(tiers):
            raise SlaInputError("two credit tiers share a below_pct threshold; keep one")
        object.__setattr__(self, "target_pct", target)
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "cap_pct", _nonneg(self.cap_pct, "cap_pct"))
        object.__setattr__(
            self,
            "maintenance_allowance_hours",
            _nonneg(self.maintenance_allowance_hours, "maintenance_allowance_hours"),
        )
        object.__setattr__(self, "notice_hours", _nonneg(self.notice_hours, "notice_hours"))


# AWS EC2's published tiers (DOMAIN.md, operations facts), as data a policy can reuse.
EC2_LIKE_TIERS = (
    CreditTier(Decimal("99.99"), Decimal("10")),
    CreditTier(Decimal("99.0"), Decimal("30")),
    CreditTier(Decimal("95.0"), Decimal("100")),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractWindow:
    """What the contract promises: ``contracted_gpus`` from ``start`` until ``end`` (open when None)."""

    start: datetime
    end: datetime | None
    contracted_gpus: int
    monthly_fee: Decimal
    tz: str = DEFAULT_TZ
    currency: str = "CNY"
    contract_id: str | None = None

    def __post_init__(self) -> None:
        start = _us(self.start, "contract start")
        if self.end is not None and _us(self.end, "contract end") < start:
            raise SlaInputError("contract end is before its start")
        if isinstance(self.contracted_gpus, bool) or not isinstance(self.contracted_gpus, int):
            raise SlaInputError(f"contracted_gpus must be an integer, got {self.contracted_gpus!r}")
        if self.contracted_gpus < 0:
            raise SlaInputError("contracted_gpus must not be negative")
        if isinstance(self.monthly_fee, float):
            raise SlaInputError("monthly_fee must not be a float; pass a Decimal or a str")
        object.__setattr__(self, "monthly_fee", _nonneg(self.monthly_fee, "monthly_fee"))
        zone(self.tz)


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInterval:
    """One GPU's state over ``[start, end)`` while it belongs to the contract.

    ``allocated`` records say when the GPU serves the contract; the health states (healthy, degraded,
    unhealthy, down, maintenance) say how well. For a GPU that has at least one ``allocated`` record, only
    its allocated time counts and health records outside it are ignored; for a GPU with none, its
    records are taken as already cut to its allocation. Where records of one GPU overlap, the one that
    delivers least wins. ``delivered_share`` is measured throughput over the SKU's calibrated rating
    (None: not measured, counts as 1; above 1 counts as 1).
    """

    gpu_id: str
    node_id: str
    start: datetime
    end: datetime
    state: str = HEALTHY
    delivered_share: Decimal | None = None
    reason: str = ""
    incident_id: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise SlaInputError(f"unknown GPU state {self.state!r}; use one of {', '.join(sorted(STATES))}")
        if _us(self.end, "interval end") < _us(self.start, "interval start"):
            raise SlaInputError(f"interval for GPU {self.gpu_id} ends before it starts")
        if self.delivered_share is not None:
            object.__setattr__(self, "delivered_share", _nonneg(self.delivered_share, "delivered_share"))


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceWindow:
    """Planned work over ``[start, end)`` on ``node_ids`` (None: every node of the contract)."""

    start: datetime
    end: datetime
    notice_given_at: datetime | None
    node_ids: frozenset[str] | None = None
    maintenance_id: str | None = None

    def __post_init__(self) -> None:
        if _us(self.end, "maintenance end") < _us(self.start, "maintenance start"):
            raise SlaInputError("maintenance window ends before it starts")
        if self.notice_given_at is not None:
            _us(self.notice_given_at, "notice_given_at")
        if isinstance(self.node_ids, str):
            raise SlaInputError("node_ids must be a set of node ids, not one string")
        if self.node_ids is not None:
            object.__setattr__(self, "node_ids", frozenset(self.node_ids))


# --------------------------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Evidence:
    """One cause of unavailable time: a GPU (or the shortfall of allocated GPUs) over an interval."""

    gpu_id: str | None
    node_id: str | None
    start: datetime
    end: datetime
    state: str
    reason: str
    incident_id: str | None
    delivered_share: Decimal
    gpu_hours: Decimal
    excluded: bool
    maintenance: str | None
    maintenance_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu_id": self.gpu_id,
            "node_id": self.node_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "state": self.state,
            "reason": self.reason,
            "incident_id": self.incident_id,
            "delivered_share": str(self.delivered_share),
            "gpu_hours": str(self.gpu_hours),
            "excluded": self.excluded,
            "maintenance": self.maintenance,
            "maintenance_id": self.maintenance_id,
        }


@dataclass(frozen=True, slots=True)
class IncidentCost:
    incident_id: str
    start: datetime
    end: datetime
    gpu_ids: tuple[str, ...]
    counted_gpu_hours: Decimal
    excluded_gpu_hours: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "gpu_ids": list(self.gpu_ids),
            "counted_gpu_hours": str(self.counted_gpu_hours),
            "excluded_gpu_hours": str(self.excluded_gpu_hours),
        }


@dataclass(frozen=True, slots=True)
class Credit:
    credit_pct: Decimal
    amount: Decimal
    cap: Decimal
    capped: bool


@dataclass(frozen=True, slots=True)
class SlaResult:
    """Every figure of one contract-month. GPU-hours are rounded to 10⁻⁶ and
    ``contracted = delivered + excluded + counted`` holds exactly in the rounded figures."""

    contract_id: str | None
    period: str
    tz: str
    period_start: datetime
    period_end: datetime
    service_start: datetime | None
    service_end: datetime | None
    contracted_gpus: int
    contracted_gpu_hours: Decimal
    delivered_gpu_hours: Decimal
    unavailable_gpu_hours: Decimal
    excluded_gpu_hours: Decimal
    counted_gpu_hours: Decimal
    availability_pct: Decimal
    target_pct: Decimal
    met_target: bool
    credit_pct: Decimal
    period_fee: Decimal
    credit_cap: Decimal
    credit: Decimal
    capped: bool
    currency: str
    maintenance_allowance_used_hours: Decimal
    evidence: tuple[Evidence, ...]
    incidents: tuple[IncidentCost, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, times as ISO 8601 in UTC."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif name in ("evidence", "incidents"):
                value = [item.to_dict() for item in value]
            out[name] = value
        return out


# ---------------------------------------------------------------------------------------------- periods


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise SlaInputError(f"unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai") from exc


def parse_period(period: str) -> tuple[int, int]:
    match = _PERIOD.fullmatch(period.strip()) if isinstance(period, str) else None
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise SlaInputError(f"period {period!r} must be a month written YYYY-MM, such as 2026-10")
    return int(match[1]), int(match[2])


def month_bounds(period: str, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """UTC instants of local midnight on the 1st of the month and of the next month, in ``tz``."""
    year, month = parse_period(period)
    where = zone(tz)
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    try:
        start = datetime(year, month, 1, tzinfo=where).astimezone(UTC)
        end = datetime(next_year, next_month, 1, tzinfo=where).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise SlaInputError(f"period {period!r} is out of range") from exc
    return start, end


def period_of(moment: datetime, tz: str = DEFAULT_TZ) -> str:
    """The ``YYYY-MM`` month that contains ``moment`` in ``tz``."""
    _us(moment, "moment")
    local = moment.astimezone(zone(tz))
    return f"{local.year:04d}-{local.month:02d}"


# ----------------------------------------------------------------------------------------------- credit


def credit_for(policy: SlaPolicy, availability_pct: Decimal | Fraction | int, fee: Decimal) -> Credit:
    """The tier earned by ``availability_pct`` and its amount on ``fee``, capped at ``cap_pct`` of it."""
    if isinstance(fee, float):
        raise SlaInputError("fee must not be a float; pass a Decimal or a str")
    fee = _nonneg(fee, "fee")
    availability = Fraction(availability_pct)
    earned = (t.credit_pct for t in policy.tiers if availability < Fraction(t.below_pct))
    pct = max(earned, default=Decimal(0))
    with localcontext(CONTEXT):
        raw = to_fen(fee * pct / 100)
        cap = to_fen(fee * policy.cap_pct / 100)
    return Credit(credit_pct=pct, amount=min(raw, cap), cap=cap, capped=raw > cap)


# ----------------------------------------------------------------------------------------------- merging


@dataclass(frozen=True, slots=True)
class _Rec:
    """A GPU's state with everything the evidence shows; equal records coalesce."""

    weight: Fraction
    state: str
    reason: str
    incident_id: str | None
    node_id: str
    share: Decimal

    def rank(self) -> tuple[Fraction, int, str, str, str]:
        return (self.weight, _SEVERITY[self.state], self.reason, self.incident_id or "", self.node_id)


def _rec(interval: GpuInterval) -> _Rec:
    if interval.state in SERVING_STATES:
        share = Decimal(1) if interval.delivered_share is None else min(Decimal(1), interval.delivered_share)
    else:
        share = Decimal(0)
    return _Rec(
        Fraction(share), interval.state, interval.reason, interval.incident_id, interval.node_id, share
    )


def _union(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _gpu_pieces(
    items: list[tuple[int, int, GpuInterval]], has_allocated: bool
) -> list[tuple[int, int, _Rec]]:
    """One GPU's records, overlaps resolved, cut to its allocated time: disjoint, sorted, coalesced."""
    mask = _union((s, e) for s, e, iv in items if not has_allocated or iv.state == ALLOCATED)
    recs = [(s, e, _rec(iv)) for s, e, iv in items]
    points = sorted({p for s, e, _ in recs for p in (s, e)} | {p for span in mask for p in span})
    by_start = sorted(range(len(recs)), key=lambda i: recs[i][0])
    heap: list[tuple[tuple[Fraction, int, str, str, str], int, int]] = []
    pieces: list[tuple[int, int, _Rec]] = []
    cursor = mask_index = 0
    for a, b in pairwise(points):
        while cursor < len(by_start) and recs[by_start[cursor]][0] <= a:
            i = by_start[cursor]
            heapq.heappush(heap, (recs[i][2].rank(), i, recs[i][1]))
            cursor += 1
        while heap and heap[0][2] <= a:
            heapq.heappop(heap)
        while mask_index < len(mask) and mask[mask_index][1] <= a:
            mask_index += 1
        if not heap or mask_index == len(mask) or mask[mask_index][0] > a:
            continue
        rec = recs[heap[0][1]][2]
        if pieces and pieces[-1][1] == a and pieces[-1][2] == rec:
            pieces[-1] = (pieces[-1][0], b, rec)
        else:
            pieces.append((a, b, rec))
    return pieces


@dataclass(frozen=True, slots=True)
class _MaintSpan:
    start: int
    end: int
    status: str
    window: MaintenanceWindow

    def covers(self, node_id: str | None) -> bool:
        nodes = self.window.node_ids
        return nodes is None or (node_id is not None and node_id in nodes)

    def rank(self) -> tuple[int, str, int, int]:
        return (_MAINT_RANK[self.status], self.window.maintenance_id or "", self.start, self.end)


def _maintenance_spans(
    windows: Iterable[MaintenanceWindow], lo: int, hi: int, policy: SlaPolicy
) -> tuple[list[_MaintSpan], int]:
    """Split windows into excluded, over-allowance and late-notice spans; also the allowance used (µs).

    A window is announced when ``start − notice_given_at ≥ notice_hours``. Announced windows use up the
    allowance in time order, by wall-clock time (overlapping windows use it once).
    """
    notice = Fraction(policy.notice_hours) * _US_PER_HOUR
    allowance = int(Fraction(policy.maintenance_allowance_hours) * _US_PER_HOUR)
    announced: list[tuple[int, int, MaintenanceWindow]] = []
    spans: list[_MaintSpan] = []
    for window in windows:
        if not isinstance(window, MaintenanceWindow):
            raise SlaInputError(f"expected a MaintenanceWindow, got {window!r}")
        w_start = _us(window.start, "maintenance start")
        start, end = max(lo, w_start), min(hi, _us(window.end, "maintenance end"))
        if end <= start:
            continue
        given = window.notice_given_at
        if given is not None and w_start - _us(given, "notice_given_at") >= notice:
            announced.append((start, end, window))
        else:
            spans.append(_MaintSpan(start, end, MAINT_LATE_NOTICE, window))
    within: list[tuple[int, int]] = []
    left = allowance
    for start, end in _union((s, e) for s, e, _ in announced):
        if left <= 0:
            break
        take = min(end - start, left)
        within.append((start, start + take))
        left -= take
    for start, end, window in announced:
        cursor = start
        for a, b in within:
            a, b = max(a, start), min(b, end)
            if b <= a:
                continue
            if a > cursor:
                spans.append(_MaintSpan(cursor, a, MAINT_OVER_ALLOWANCE, window))
            spans.append(_MaintSpan(a, b, MAINT_EXCLUDED, window))
            cursor = b
        if cursor < end:
            spans.append(_MaintSpan(cursor, end, MAINT_OVER_ALLOWANCE, window))
    return spans, allowance - left


# ----------------------------------------------------------------------------------------------- the sla


def _to_decimal(value: Fraction) -> Decimal:
    with localcontext(CONTEXT):
        return Decimal(value.numerator) / Decimal(value.denominator)


def _hours(gpu_us: Fraction) -> Decimal:
    return _to_decimal(gpu_us / _US_PER_HOUR).quantize(_HOURS_Q, rounding=ROUND_HALF_UP)


def _split(total: Fraction, parts: list[Fraction]) -> tuple[Decimal, list[Decimal]]:
    """Round a total and its parts so that the rounded parts still sum to the rounded total."""
    rounded_total = _hours(total)
    rounded = [_hours(p) for p in parts]
    gap = rounded_total - sum(rounded, Decimal(0))
    if gap:
        biggest = max(range(len(parts)), key=lambda i: (parts[i], -i))
        rounded[biggest] = max(Decimal(0), rounded[biggest] + gap)
    return rounded_total, rounded


def _is_excluded(span: _MaintSpan | None) -> bool:
    return span is not None and span.status == MAINT_EXCLUDED


def _default_reason(rec: _Rec) -> str:
    if rec.reason:
        return rec.reason
    if rec.state in SERVING_STATES:
        return f"delivered share {rec.share}"
    return rec.state


_Key = tuple[Any, ...]


def _cover(here: list[_MaintSpan], node_id: str | None) -> _MaintSpan | None:
    return min((s for s in here if s.covers(node_id)), key=_MaintSpan.rank, default=None)


def _cause_key(gpu_id: str | None, rec: _Rec | None, span: _MaintSpan | None) -> _Key:
    return (gpu_id, rec, span.status if span else None, span.window.maintenance_id if span else None)


def _sweep(
    gpus: int,
    points: list[int],
    starts: dict[int, list[tuple[str, _Rec]]],
    ends: dict[int, list[str]],
    spans: list[_MaintSpan],
) -> tuple[Fraction, Fraction, Fraction, list[tuple[_Key, int, int, Fraction]]]:
    """Walk the elementary segments between ``points``; return delivered, excluded, counted (GPU-µs)
    and the evidence as (key, start, end, GPU-µs).

    A GPU cause's share of its group's rate is ``loss · rate_g / L_g``; ``S_g = ∫ rate_g / L_g dt`` is
    kept per group so that a cause's cost is ``loss · ΔS_g`` over the time it stays unchanged. Only the
    causes that change at a point are touched there, so a month of a large fleet whose every GPU delivers
    slightly under its rating costs time in proportion to the changes, not to GPUs × segments.
    """
    span_points = {p for span in spans for p in (span.start, span.end)}
    active: dict[str, _Rec] = {}
    lossy: dict[str, _Rec] = {}
    cover_of: dict[str, _MaintSpan | None] = {}
    weight_sum = Fraction(0)
    gpu_loss = {False: Fraction(0), True: Fraction(0)}  # by "excluded?"
    integral = {False: Fraction(0), True: Fraction(0)}
    positive = {False: False, True: False}
    opened: dict[str, tuple[_Key, int, Fraction, Fraction, bool]] = {}
    delivered = excluded = counted = Fraction(0)
    here: list[_MaintSpan] = []
    shortfall_cover: _MaintSpan | None = None
    coalescing: dict[_Key, list[Any]] = {}
    done: list[tuple[_Key, int, int, Fraction]] = []

    def emit(key: _Key, a: int, b: int, amount: Fraction) -> None:
        current = coalescing.get(key)
        if current is not None and current[1] == a:
            current[1] = b
            current[2] += amount
            return
        if current is not None:
            done.append((key, current[0], current[1], current[2]))
        coalescing[key] = [a, b, amount]

    def settle(gpu_id: str, at: int) -> None:
        rec = lossy.get(gpu_id)
        want: tuple[_Key, bool] | None = None
        if rec is not None:
            span = cover_of[gpu_id]
            if positive[_is_excluded(span)]:
                want = (_cause_key(gpu_id, rec, span), _is_excluded(span))
        current = opened.get(gpu_id)
        if current is not None and want is not None and current[0] == want[0]:
            return
        if current is not None:
            key, since, snapshot, loss, group = current
            amount = loss * (integral[group] - snapshot)
            if amount:
                emit(key, since, at, amount)
            del opened[gpu_id]
        if want is not None and rec is not None:
            opened[gpu_id] = (want[0], at, integral[want[1]], 1 - rec.weight, want[1])

    for a, b in pairwise(points):
        changed: set[str] = set()
        for gpu_id in ends.get(a, ()):
            rec = active.pop(gpu_id)
            weight_sum -= rec.weight
            if lossy.pop(gpu_id, None) is not None:
                gpu_loss[_is_excluded(cover_of.pop(gpu_id))] -= 1 - rec.weight
            changed.add(gpu_id)
        if a in span_points:
            here = [span for span in spans if span.start <= a < span.end]
            shortfall_cover = _cover(here, None)
            for gpu_id, rec in lossy.items():
                new = _cover(here, rec.node_id)
                old = cover_of[gpu_id]
                if new is not old:
                    gpu_loss[_is_excluded(old)] -= 1 - rec.weight
                    gpu_loss[_is_excluded(new)] += 1 - rec.weight
                    cover_of[gpu_id] = new
                    changed.add(gpu_id)
        for gpu_id, rec in starts.get(a, ()):
            active[gpu_id] = rec
            weight_sum += rec.weight
            if rec.weight < 1:
                lossy[gpu_id] = rec
                cover_of[gpu_id] = span = _cover(here, rec.node_id)
                gpu_loss[_is_excluded(span)] += 1 - rec.weight
            changed.add(gpu_id)

        shortfall = max(0, gpus - len(active))
        shortfall_excluded = _is_excluded(shortfall_cover)
        loss = dict(gpu_loss)
        loss[shortfall_excluded] += shortfall
        unavailable = gpus - min(Fraction(gpus), weight_sum)
        rate = {False: min(unavailable, loss[False])}
        rate[True] = unavailable - rate[False]
        flipped = {g for g in (False, True) if (rate[g] > 0) != positive[g]}
        positive = {g: rate[g] > 0 for g in (False, True)}
        if flipped:
            changed.update(g for g, cur in opened.items() if cur[4] in flipped)
            changed.update(g for g in lossy if _is_excluded(cover_of[g]) in flipped)
        for gpu_id in changed:
            settle(gpu_id, a)

        dt = b - a
        if shortfall and rate[shortfall_excluded]:
            amount = shortfall * rate[shortfall_excluded] / loss[shortfall_excluded] * dt
            emit(_cause_key(None, None, shortfall_cover), a, b, amount)
        for group in (False, True):
            if rate[group]:
                integral[group] += rate[group] / loss[group] * dt
        delivered += (gpus - unavailable) * dt
        counted += rate[False] * dt
        excluded += rate[True] * dt

    positive = {False: False, True: False}
    for gpu_id in list(opened):
        settle(gpu_id, points[-1])
    done.extend((key, v[0], v[1], v[2]) for key, v in coalescing.items())
    return delivered, excluded, counted, done


def compute_sla(
    policy: SlaPolicy,
    contract: ContractWindow,
    period: str,
    intervals: Iterable[GpuInterval],
    maintenance: Iterable[MaintenanceWindow] = (),
    *,
    as_of: datetime | None = None,
    period_fee: Decimal | None = None,
) -> SlaResult:
    """The SLA of ``contract`` for ``period`` (``YYYY-MM`` in ``contract.tz``); see the module docstring.

    ``as_of`` cuts a month still running (the contracted time stops there too). ``period_fee`` overrides
    the prorated monthly fee when billing knows the amount actually invoiced.
    """
    year, month = parse_period(period)
    p_start, p_end = month_bounds(period, contract.tz)
    ps, pe = _us(p_start, "period start"), _us(p_end, "period end")
    cs = _us(contract.start, "contract start")
    ce = pe if contract.end is None else _us(contract.end, "contract end")
    lo, fee_hi = max(ps, cs), min(pe, ce)
    hi = fee_hi if as_of is None else min(fee_hi, _us(as_of, "as_of"))
    hi = max(hi, lo)
    gpus = contract.contracted_gpus

    if period_fee is None:
        with localcontext(CONTEXT):
            fee = to_fen(contract.monthly_fee * max(0, fee_hi - lo) / (pe - ps))
    else:
        if isinstance(period_fee, float):
            raise SlaInputError("period_fee must not be a float; pass a Decimal or a str")
        fee = to_fen(_nonneg(period_fee, "period_fee"))

    by_gpu: dict[str, list[tuple[int, int, GpuInterval]]] = {}
    has_allocated: dict[str, bool] = {}
    for interval in intervals:
        if not isinstance(interval, GpuInterval):
            raise SlaInputError(f"expected a GpuInterval, got {interval!r}")
        has_allocated[interval.gpu_id] = has_allocated.get(interval.gpu_id, False) or (
            interval.state == ALLOCATED
        )
        start = max(lo, _us(interval.start, "interval start"))
        end = min(hi, _us(interval.end, "interval end"))
        if end > start:
            by_gpu.setdefault(interval.gpu_id, []).append((start, end, interval))

    # Events at each instant: GPU pieces and maintenance spans that start and end there.
    starts: dict[int, list[tuple[str, _Rec]]] = {}
    ends: dict[int, list[str]] = {}
    for gpu_id, items in by_gpu.items():
        for start, end, rec in _gpu_pieces(items, has_allocated[gpu_id]):
            starts.setdefault(start, []).append((gpu_id, rec))
            ends.setdefault(end, []).append(gpu_id)
    spans, allowance_used = _maintenance_spans(maintenance, lo, hi, policy)
    points = sorted({lo, hi, *starts, *ends, *(s.start for s in spans), *(s.end for s in spans)})

    delivered, excluded, counted, raw_evidence = _sweep(gpus, points, starts, ends, spans)

    contracted = Fraction(gpus * (hi - lo))
    # Exact arithmetic makes this an identity; _split below only mends the rounding to 10⁻⁶ h.
    assert contracted == delivered + excluded + counted, "capacity-time not conserved"
    contracted_h, (delivered_h, excluded_h, counted_h) = _split(contracted, [delivered, excluded, counted])
    denominator = delivered + counted
    availability = Fraction(100) if denominator == 0 else 100 * delivered / denominator
    credit = credit_for(policy, availability, fee)

    evidence = sorted(
        (_evidence(key, a, b, amount) for key, a, b, amount in raw_evidence), key=_evidence_order
    )
    return SlaResult(
        contract_id=contract.contract_id,
        period=f"{year:04d}-{month:02d}",
        tz=contract.tz,
        period_start=p_start,
        period_end=p_end,
        service_start=_dt(lo) if hi > lo else None,
        service_end=_dt(hi) if hi > lo else None,
        contracted_gpus=gpus,
        contracted_gpu_hours=contracted_h,
        delivered_gpu_hours=delivered_h,
        unavailable_gpu_hours=excluded_h + counted_h,
        excluded_gpu_hours=excluded_h,
        counted_gpu_hours=counted_h,
        availability_pct=_to_decimal(availability).quantize(_PCT_Q, rounding=ROUND_FLOOR),
        target_pct=policy.target_pct,
        met_target=availability >= Fraction(policy.target_pct),
        credit_pct=credit.credit_pct,
        period_fee=fee,
        credit_cap=credit.cap,
        credit=credit.amount,
        capped=credit.capped,
        currency=contract.currency,
        maintenance_allowance_used_hours=_hours(Fraction(allowance_used)),
        evidence=tuple(evidence),
        incidents=_incidents(evidence),
    )


def _evidence(key: tuple[Any, ...], a: int, b: int, amount: Fraction) -> Evidence:
    gpu_id, rec, status, maintenance_id = key
    if rec is None:
        state, reason, incident, node, share = SHORTFALL, _SHORTFALL_REASON, None, None, Decimal(0)
    else:
        state, reason, incident, node, share = (
            rec.state,
            _default_reason(rec),
            rec.incident_id,
            rec.node_id,
            rec.share,
        )
    return Evidence(
        gpu_id=gpu_id,
        node_id=node,
        start=_dt(a),
        end=_dt(b),
        state=state,
        reason=reason,
        incident_id=incident,
        delivered_share=Decimal(share),
        gpu_hours=_hours(amount),
        excluded=status == MAINT_EXCLUDED,
        maintenance=status,
        maintenance_id=maintenance_id,
    )


def _evidence_order(e: Evidence) -> tuple[Any, ...]:
    return (
        e.start,
        e.end,
        e.gpu_id or "",
        e.node_id or "",
        e.state,
        e.reason,
        e.incident_id or "",
        e.maintenance or "",
        e.maintenance_id or "",
    )


def _incidents(evidence: list[Evidence]) -> tuple[IncidentCost, ...]:
    grouped: dict[str, list[Evidence]] = {}
    for item in evidence:
        if item.incident_id is not None:
            grouped.setdefault(item.incident_id, []).append(item)
    return tuple(
        IncidentCost(
            incident_id=incident_id,
            start=min(e.start for e in items),
            end=max(e.end for e in items),
            gpu_ids=tuple(sorted({e.gpu_id for e in items if e.gpu_id is not None})),
            counted_gpu_hours=sum((e.gpu_hours for e in items if not e.excluded), _ZERO_HOURS),
            excluded_gpu_hours=sum((e.gpu_hours for e in items if e.excluded), _ZERO_HOURS),
        )
        for incident_id, items in sorted(grouped.items(), key=lambda kv: (min(e.start for e in kv[1]), kv[0]))
    )
