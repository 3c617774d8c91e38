"""The heartbeat wire format: what a node agent POSTs to ``/api/v1/telemetry/heartbeats``, and the answer.

A request body is one **batch** from one node::

    {
      "node": "QYA-H100-0001",                      # the node's serial, as the fleet knows it
      "agent": {"version": "0.1.0", "backend": "nvml", "host": "gpu-node-17"},
      "heartbeats": [                               # 1..MAX_BATCH, seq strictly increasing
        {
          "seq": 1042,                              # per node, ≥ 1, strictly increasing, never reused
          "at": "2026-10-01T08:00:30Z",             # aware; normalised to UTC; not before 2000
          "interval_s": 30,                         # the agent's heartbeat interval
          "gpus": [                                 # 0..MAX_GPUS (a node whose GPUs are all lost sends [])
            {
              "index": 0, "uuid": "GPU-…", "serial": "1650…", "name": "NVIDIA H100 80GB HBM3",
              "memory_total_mb": 81559, "memory_used_mb": 1024,          # MiB
              "utilization_pct": 97, "power_w": 612.5, "temperature_c": 61, "sm_clock_mhz": 1980,
              "ecc_sbe_volatile": 0, "ecc_dbe_volatile": 0, "ecc_sbe_aggregate": 3, "ecc_dbe_aggregate": 0,
              "remap_pending": false, "remap_failed": false,
              "pcie_gen": 5, "pcie_width": 16,
              "throttle_reasons": ["sw_power_cap"],
              "xids": [79],                         # distinct XIDs since the previous heartbeat
              "lost": false,                        # the driver says the GPU fell off the bus
              "errors": []                          # readings that failed for another reason
            }
          ],
          "unsupported": ["serial"]                 # GPU fields the node's cards do not support
        }
      ]
    }

Rules:

- Every reading is optional: ``null`` (or absent) means unknown or unsupported, and never counts against
  a GPU. A field that the cards do not support is also named in the heartbeat's ``unsupported`` list, so
  the server can tell "this card has no ECC" from "this reading failed" (``errors`` says why). A GPU is
  identified by ``uuid``, else ``serial``, else its ``index`` in the node. A lost GPU is still listed
  (``lost: true``, identity only) so its XIDs reach the server; :meth:`GpuSample.to_reading` turns it
  into "missing from the node" for :mod:`computelease.telemetry.health`.
- Readings are bounded (pct 0..100, temperature −50..150 °C, power 0..5,000 W, clocks 0..10,000 MHz,
  counters 0..2⁶³−1, PCIe generation 1..8 and width 1..32, XIDs 0..65,535); integers must be JSON
  integers (``true`` or ``"3"`` are refused), unknown fields are refused everywhere.
- ``seq`` is per node, ≥ 1, and strictly increasing within a batch and across the node's life (the agent
  persists its counter with its spool, and a new spool starts at the Unix time in microseconds, about
  1.8·10¹⁵ today: within a JSON double's exact integers), so ``(node, seq)`` identifies a heartbeat.
  Across batches the server must accept late and out-of-order heartbeats and place them by ``at``.

The server answers ``200`` with an :class:`IngestResult` when the batch's envelope is valid, even when some
heartbeats in it are refused: ``{"accepted": n, "duplicates": n, "rejected": [{"seq", "index",
"reason"}]}``. A heartbeat whose ``(node, seq)`` is already stored counts as a duplicate (this makes
resending safe: an agent that crashed between the server's commit and reading the answer sends the same
heartbeats again). Every heartbeat of an answered batch is final: the agent never resends it.

Whole-batch answers, as RFC 9457 problems: 401/403 for a bad token and 404 for a node the fleet does not
know (the agent keeps its heartbeats until that is fixed); 422 for a malformed envelope and 413 for a body
too large (the agent splits the batch, and drops a heartbeat refused alone); 5xx, 408 and 429 (with
``Retry-After``) when the server cannot take it now (the agent retries later). See
:mod:`computelease.agent.sender`.

:func:`parse_batch` is the server's half: it validates the envelope, then each heartbeat on its own, so
that one malformed heartbeat is rejected with its field named and does not spoil the rest of the batch.

**Relay batches.** A site collector that forwards many nodes' heartbeats may post them in one request::

    {"batches": [{"node": "QYA-H100-0001", "agent": {...}, "heartbeats": [...]}, ...]}

(1..MAX_RELAY_NODES node batches, MAX_RELAY_HEARTBEATS heartbeats in all, each node at most once). Each
node batch is judged as if posted alone, except that a node batch the server refuses (a malformed
envelope, a node the caller cannot see) is reported in its own entry of the answer and does not spoil
the others: ``{"accepted": n, "duplicates": n, "results": [{"index", "node", "accepted", "duplicates",
"rejected", "error"}]}`` with ``error`` an RFC 9457 problem (``status``, ``title``, ``detail``) or null.
The relay keeps a node batch whose entry has a 404 (or 401/403) error, as an agent would, and drops one
with a 422. Too many nodes or heartbeats for one request is a 413 for the whole request.
:func:`parse_relay` validates the envelope and returns each node batch parsed, or the problem it has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import pairwise
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from computelease.telemetry.health import GpuReading

MAX_BATCH: Final = 500  # ≈ 4 h of a 30 s agent; ≈ 2.5 MB of JSON for 8-GPU nodes
MAX_RELAY_NODES: Final = 1000  # node batches in one relay request
MAX_RELAY_HEARTBEATS: Final = 5000  # heartbeats in one relay request, all nodes together (≈ 25 MB)
MAX_GPUS: Final = 64
MAX_XIDS: Final = 64  # distinct XIDs per GPU per heartbeat; a storm of one XID is one entry
MAX_COUNTER: Final = 2**63 - 1  # fits a signed BIGINT column
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)

# Readings a card may not support: the names allowed in ``unsupported``.
GpuReadingName = Literal[
    "serial",
    "name",
    "memory_total_mb",
    "memory_used_mb",
    "utilization_pct",
    "power_w",
    "temperature_c",
    "sm_clock_mhz",
    "ecc_sbe_volatile",
    "ecc_dbe_volatile",
    "ecc_sbe_aggregate",
    "ecc_dbe_aggregate",
    "remap_pending",
    "remap_failed",
    "pcie_gen",
    "pcie_width",
    "throttle_reasons",
    "xids",
]
GPU_READINGS: Final[tuple[str, ...]] = get_args(GpuReadingName)

# Strict numbers: a JSON bool or a numeric string is a bug in the sender, not a reading.
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNTER)]
Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# Printable, no control characters: serials and UUIDs end up in logs and web pages.
Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
Token = Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=r"^[a-z][a-z0-9_]*$")]


def _utc(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    if value < EARLIEST:
        # A host whose RTC was reset reports 1970; such a heartbeat cannot be placed in time.
        raise ValueError(f"{value.isoformat()} is before 2000-01-01: the node's clock is wrong")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("values must not repeat")
    return values


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentInfo(_Wire):
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    backend: Token = Field(description="where the readings come from: nvml, simulated, …")
    host: Annotated[str, StringConstraints(min_length=1, max_length=255)]


class GpuSample(_Wire):
    """One GPU in one heartbeat. Every reading is optional; None is unknown or unsupported."""

    index: Annotated[int, Field(strict=True, ge=0, lt=MAX_GPUS)]
    uuid: Identifier | None = None
    serial: Identifier | None = None
    name: Text | None = None
    memory_total_mb: Annotated[int, Field(strict=True, ge=0, le=16 * 1024 * 1024)] | None = None
    memory_used_mb: Annotated[int, Field(strict=True, ge=0, le=16 * 1024 * 1024)] | None = None
    utilization_pct: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    power_w: Annotated[float, Field(strict=True, ge=0, le=5000)] | None = None
    temperature_c: Annotated[float, Field(strict=True, ge=-50, le=150)] | None = None
    sm_clock_mhz: Annotated[int, Field(strict=True, ge=0, le=10_000)] | None = None
    ecc_sbe_volatile: Count | None = None
    ecc_dbe_volatile: Count | None = None
    ecc_sbe_aggregate: Count | None = None
    ecc_dbe_aggregate: Count | None = None
    remap_pending: Flag | None = None
    remap_failed: Flag | None = None
    pcie_gen: Annotated[int, Field(strict=True, ge=1, le=8)] | None = None
    pcie_width: Annotated[int, Field(strict=True, ge=1, le=32)] | None = None
    # default_factory, not a [] default: pydantic deep-copies a mutable default for every sample.
    throttle_reasons: Annotated[list[Token], Field(max_length=32), AfterValidator(_distinct)] = Field(
        default_factory=list
    )
    xids: Annotated[
        list[Annotated[int, Field(strict=True, ge=0, le=65_535)]],
        Field(max_length=MAX_XIDS),
        AfterValidator(_distinct),
    ] = Field(default_factory=list)
    # The driver reports the GPU lost (fell off the bus): its readings are gone until a reset or repair.
    lost: Flag | None = None
    errors: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=200)]], Field(max_length=32)
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _memory_fits(self) -> GpuSample:
        total, used = self.memory_total_mb, self.memory_used_mb
        if total is not None and used is not None and used > total:
            raise ValueError(f"memory_used_mb {used} exceeds memory_total_mb {total}")
        return self

    @property
    def gpu_id(self) -> str:
        """The GPU's identity as telemetry.health expects it: UUID, else serial, else ``#index``."""
        return self.uuid or self.serial or f"#{self.index}"

    def to_reading(self) -> GpuReading | None:
        """The part of this sample that :func:`computelease.telemetry.health.classify_gpu` judges.

        A lost GPU without new XIDs is None, i.e. missing from the node (unhealthy); while it still
        carries the XIDs of its fall (79), those are judged, so that the drain flag is raised.
        """
        if self.lost and not self.xids:
            return None
        return GpuReading(
            gpu_id=self.gpu_id,
            xids=tuple(self.xids),
            ecc_dbe_volatile=self.ecc_dbe_volatile,
            ecc_dbe_aggregate=self.ecc_dbe_aggregate,
            remap_pending=self.remap_pending,
            remap_failed=self.remap_failed,
        )


class HeartbeatBody(_Wire):
    """A heartbeat before the spool numbers it."""

    at: UtcDatetime
    interval_s: Annotated[int, Field(strict=True, ge=1, le=86_400)]
    gpus: Annotated[list[GpuSample], Field(max_length=MAX_GPUS)] = Field(default_factory=list)
    unsupported: Annotated[list[GpuReadingName], AfterValidator(_distinct)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _gpus_distinct(self) -> HeartbeatBody:
        indexes = [g.index for g in self.gpus]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"a GPU index repeats in gpus: {sorted(indexes)}")
        uuids = [g.uuid for g in self.gpus if g.uuid is not None]
        if len(set(uuids)) != len(uuids):
            raise ValueError("a GPU uuid repeats in gpus")
        return self


class Heartbeat(HeartbeatBody):
    seq: Annotated[int, Field(strict=True, ge=1, le=MAX_COUNTER)]


class HeartbeatBatch(_Wire):
    """What the agent sends: one node, heartbeats in strictly increasing ``seq``."""

    node: Identifier
    agent: AgentInfo
    heartbeats: Annotated[list[Heartbeat], Field(min_length=1, max_length=MAX_BATCH)]

    @model_validator(mode="after")
    def _seq_increasing(self) -> HeartbeatBatch:
        seqs = [h.seq for h in self.heartbeats]
        if any(b <= a for a, b in pairwise(seqs)):
            raise ValueError("heartbeats must be in strictly increasing seq")
        return self


class BatchEnvelope(_Wire):
    """A batch whose heartbeats are not validated yet: the server checks each on its own."""

    node: Identifier
    agent: AgentInfo
    heartbeats: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_BATCH)]


class RejectedHeartbeat(_Wire):
    seq: int | None = Field(description="the heartbeat's seq, when it had a readable one")
    index: int = Field(ge=0, description="its position in the batch, 0-based")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class IngestResult(_Wire):
    """The answer to a batch. accepted + duplicates + len(rejected) = the batch's heartbeats."""

    accepted: int = Field(ge=0, description="heartbeats stored now")
    duplicates: int = Field(ge=0, description="heartbeats whose (node, seq) was already stored")
    rejected: list[RejectedHeartbeat] = []


class NodeProblem(_Wire):
    """Why one node batch of a relay request was refused as a whole (RFC 9457 fields)."""

    status: int
    title: str
    detail: str


class NodeResult(_Wire):
    """The answer for one node batch of a relay request, in request order."""

    index: int = Field(ge=0, description="the node batch's position in ``batches``, 0-based")
    node: str | None = Field(description="the node's serial, when it had a readable one")
    accepted: int = Field(default=0, ge=0)
    duplicates: int = Field(default=0, ge=0)
    rejected: list[RejectedHeartbeat] = []
    error: NodeProblem | None = Field(default=None, description="the whole node batch was refused")


class RelayResult(_Wire):
    """The answer to a relay request: totals over every node batch, and one result per node batch."""

    accepted: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    results: list[NodeResult]


class ParsedBatch(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    node: str
    agent: AgentInfo
    heartbeats: list[Heartbeat]
    rejected: list[RejectedHeartbeat]


def describe(exc: ValidationError, *, limit: int = 5) -> str:
    """One line naming each bad field: ``gpus.0.temperature_c: Input should be ≥ -50 (got 200)``."""
    parts = []
    for error in exc.errors(include_url=False)[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "heartbeat"
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r:.40})"
        parts.append(f"{where}: {error['msg']}{shown}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_batch(payload: Mapping[str, Any]) -> ParsedBatch:
    """Validate a request body for ingest. Raises ``ValidationError`` only for a bad envelope.

    Each heartbeat is validated on its own: a malformed one, or one repeating a ``seq`` already in
    the batch, lands in ``rejected`` with the bad field named; the rest are returned in batch order.
    """
    envelope = BatchEnvelope.model_validate(payload)
    good: list[Heartbeat] = []
    rejected: list[RejectedHeartbeat] = []
    seen: set[int] = set()
    for index, raw in enumerate(envelope.heartbeats):
        seq = raw.get("seq")
        readable_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        try:
            heartbeat = Heartbeat.model_validate(raw)
        except ValidationError as exc:
            rejected.append(RejectedHeartbeat(seq=readable_seq, index=index, reason=describe(exc)))
            continue
        if heartbeat.seq in seen:
            rejected.append(
                RejectedHeartbeat(seq=heartbeat.seq, index=index, reason=f"seq {heartbeat.seq} repeats")
            )
            continue
        seen.add(heartbeat.seq)
        good.append(heartbeat)
    return ParsedBatch(node=envelope.node, agent=envelope.agent, heartbeats=good, rejected=rejected)


class RelayEnvelope(_Wire):
    """A relay request whose node batches are not validated yet."""

    batches: Annotated[list[Any], Field(min_length=1)]


class RelayBatch(_Wire):
    """A relay request that is valid throughout: the server's fast path (see :func:`parse_body`)."""

    batches: Annotated[list[HeartbeatBatch], Field(min_length=1, max_length=MAX_RELAY_NODES)]


class RelayTooLarge(ValueError):
    """More node batches or heartbeats than one relay request may carry."""


def _node_of(raw: Any) -> str | None:
    node = raw.get("node") if isinstance(raw, Mapping) else None
    return node.strip() if isinstance(node, str) and node.strip() else None


def parse_relay(payload: Mapping[str, Any]) -> list[ParsedBatch | NodeResult]:
    """Validate a relay request. Raises ``ValidationError`` for a bad envelope and
    :class:`RelayTooLarge` past the limits; otherwise returns, in request order, each node batch parsed
    by :func:`parse_batch` or, when that node batch is refused as a whole, its :class:`NodeResult`."""
    envelope = RelayEnvelope.model_validate(payload)
    if len(envelope.batches) > MAX_RELAY_NODES:
        raise RelayTooLarge(f"{len(envelope.batches)} node batches; at most {MAX_RELAY_NODES} per request")
    total = sum(
        len(b["heartbeats"])
        for b in envelope.batches
        if isinstance(b, Mapping) and isinstance(b.get("heartbeats"), list)
    )
    if total > MAX_RELAY_HEARTBEATS:
        raise RelayTooLarge(f"{total} heartbeats; at most {MAX_RELAY_HEARTBEATS} per request")
    out: list[ParsedBatch | NodeResult] = []
    seen: set[str] = set()
    for index, raw in enumerate(envelope.batches):
        node = _node_of(raw)
        problem: str | None = None
        if not isinstance(raw, Mapping):
            problem = "a node batch must be an object with node, agent and heartbeats"
        elif node is not None and node in seen:
            problem = f"node {node!r} appears more than once in this request"
        if problem is None:
            try:
                parsed = parse_batch(raw)  # type: ignore[arg-type]
            except ValidationError as exc:
                problem = describe(exc)
            else:
                seen.add(parsed.node)
                out.append(parsed)
                continue
        error = NodeProblem(status=422, title="Invalid heartbeat batch", detail=problem)
        out.append(NodeResult(index=index, node=node, error=error))
    return out


_RELAY_START = re.compile(rb'\s*\{\s*"batches"\s*:')


def _whole(batch: HeartbeatBatch) -> ParsedBatch:
    return ParsedBatch.model_construct(
        node=batch.node, agent=batch.agent, heartbeats=list(batch.heartbeats), rejected=[]
    )


def parse_body(body: bytes) -> ParsedBatch | list[ParsedBatch | NodeResult]:
    """Parse a request body: a node batch gives its :class:`ParsedBatch`, a relay request the list of
    :func:`parse_relay`. Raises ``ValidationError`` for a bad envelope, :class:`RelayTooLarge`, and
    ``ValueError`` for a body that is not JSON.

    A body that is valid throughout (the usual case) is validated straight from its bytes in one pass;
    any other is parsed again heartbeat by heartbeat, which gives the same answer for valid input and
    names each bad heartbeat otherwise.
    """
    try:
        if _RELAY_START.match(body):
            relay = RelayBatch.model_validate_json(body)
            nodes = {b.node for b in relay.batches}
            total = sum(len(b.heartbeats) for b in relay.batches)
            if len(nodes) == len(relay.batches) and total <= MAX_RELAY_HEARTBEATS:
                return [_whole(b) for b in relay.batches]
        else:
            return _whole(HeartbeatBatch.model_validate_json(body))
    except ValidationError:
        pass
    payload = json.loads(body)
    if isinstance(payload, Mapping) and "batches" in payload:
        return parse_relay(payload)
    return parse_batch(payload)
