"""Acceptance runs: storing a probe report on its node, the history, and the shares the SLA reads.

Every read starts from :func:`readable_runs`, which follows the fleet's scope (a run is visible to
whoever may see its node). Only staff store runs; the endpoint enforces that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal
from computelease.errors import NotFound, Unprocessable
from computelease.fleet import service as fleet
from computelease.fleet.core import NodeState
from computelease.fleet.models import Gpu, Node
from computelease.kit.time import utcnow
from computelease.probe.models import AcceptanceGpu, AcceptanceRun
from computelease.probe.schemas import ProbeReport, Verdict

GpuKey = str | tuple[int, int]


def readable_runs(principal: Principal) -> Select[tuple[AcceptanceRun]]:
    visible = fleet.readable_nodes(principal).with_only_columns(Node.id)
    return select(AcceptanceRun).where(AcceptanceRun.node_id.in_(visible))


def resolve_node(session: Session, principal: Principal, node_ref: str) -> Node:
    """The node a path names: its serial, or else its numeric id.

    The serial is tried first because it is what the probe sends; a serial made only of digits
    therefore shadows the node whose id it spells, which is the safer way round for a report.
    """
    node = session.scalar(fleet.readable_nodes(principal).where(Node.serial == node_ref))
    if node is None and node_ref.isdigit():
        node = session.scalar(fleet.readable_nodes(principal).where(Node.id == int(node_ref)))
    if node is None:
        raise NotFound("no node with that serial (or id) is visible to you")
    return node


def get_run(session: Session, principal: Principal, run_id: int) -> AcceptanceRun:
    run = session.scalar(readable_runs(principal).where(AcceptanceRun.id == run_id))
    if run is None:
        raise NotFound(f"acceptance run {run_id} does not exist or is not visible to you")
    return run


def runs_of_node(session: Session, principal: Principal, node_id: int) -> list[AcceptanceRun]:
    """The node's runs, newest first; empty when the node is not visible (pages show nothing)."""
    stmt = readable_runs(principal).where(AcceptanceRun.node_id == node_id)
    return list(session.scalars(stmt.order_by(AcceptanceRun.finished_at.desc(), AcceptanceRun.id.desc())))


def _decimal(value: float | None, places: int) -> Decimal | None:
    # Exact columns refuse floats and extra places; the report's figures are floats by design.
    if value is None:
        return None
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass
class Stored:
    run: AcceptanceRun
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    transitioned: bool = False


def _match_gpus(session: Session, node: Node, report: ProbeReport) -> tuple[dict[str, Gpu], list[str]]:
    """Fleet GPUs by UUID, and a warning for every report GPU the node does not hold.

    A mismatch is a warning, not a refusal: the fleet's UUIDs are often recorded late, and a card swapped
    during repair is exactly what the operator needs to see next to the figures.
    """
    uuids = [g.uuid for g in report.gpus if g.uuid]
    known = {g.uuid: g for g in session.scalars(select(Gpu).where(Gpu.uuid.in_(uuids)))} if uuids else {}
    warnings = []
    for g in report.gpus:
        if not g.uuid:
            warnings.append(f"GPU {g.index} of the report has no UUID; it is stored without a fleet GPU")
            continue
        gpu = known.get(g.uuid)
        if gpu is None:
            warnings.append(f"GPU {g.index} ({g.uuid}) is not recorded on node {node.serial}")
        elif gpu.node_id != node.id:
            warnings.append(
                f"GPU {g.index} ({g.uuid}) is recorded on node id {gpu.node_id}, not on {node.serial}"
            )
    if len(report.gpus) != len(node.gpus):
        warnings.append(f"the report has {len(report.gpus)} GPUs; node {node.serial} has {len(node.gpus)}")
    return {u: g for u, g in known.items() if g.node_id == node.id}, warnings


def store_report(
    session: Session,
    principal: Principal,
    node_ref: str,
    report: ProbeReport,
    *,
    now: datetime | None = None,
) -> Stored:
    """Stores the report as a new run of the node; a pass on a delivered node accepts it.

    Only that move is automatic. A warn or fail never changes a node's state: taking a node in service
    out of it affects a customer, so an operator decides (``POST /nodes/{id}/transitions``).
    """
    node = resolve_node(session, principal, node_ref)
    if report.node is not None and report.node != node.serial:
        raise Unprocessable(
            f"the report is for node {report.node!r} but was sent to node {node.serial!r}; "
            "post it to its own node",
            field="node",
        )
    now = now or utcnow()
    by_uuid, warnings = _match_gpus(session, node, report)
    env = report.environment
    actor = str(session.info.get("actor", "system"))
    run = AcceptanceRun(
        node_id=node.id,
        received_at=now,
        started_at=report.started_at,
        finished_at=report.finished_at,
        mode=report.mode,
        verdict=report.verdict,
        exit_code=report.exit_code,
        schema_version=report.schema_version,
        summary=report.summary,
        hostname=env.hostname[:255],
        driver=env.driver,
        cuda_driver=env.cuda_driver,
        cuda_runtime=env.cuda_runtime,
        torch=env.torch,
        computelease=env.computelease,
        state_before=node.state,
        state_after=node.state,
        warnings=warnings,
        report=report.model_dump(mode="json"),
        actor=actor,
        gpus=[
            AcceptanceGpu(
                index=g.index,
                uuid=g.uuid,
                gpu_id=by_uuid[g.uuid].id if g.uuid in by_uuid else None,
                name=g.name[:100],
                model=g.model,
                bf16_tflops=_decimal(g.bf16_tflops, 2),
                rating_tflops=_decimal(g.rating_tflops, 2),
                sla_share=_decimal(g.sla_share, 4),
                verdict=g.verdict,
            )
            for g in report.gpus
        ],
    )
    session.add(run)
    session.flush()
    stored = Stored(run, warnings)
    state = node.state
    if report.verdict is Verdict.PASS and state is NodeState.delivered:
        fleet.transition(
            session, principal, node.id, NodeState.accepted, reason=f"acceptance run {run.id} passed"
        )
        run.state_after = NodeState.accepted
        stored.transitioned = True
        stored.notes.append(f"node {node.serial} moved from delivered to accepted")
    elif report.verdict is Verdict.PASS:
        stored.notes.append(
            f"node {node.serial} is {state.value}; only a delivered node is accepted by a pass"
        )
    else:
        stored.notes.append(
            f"the run is a {report.verdict.value}; node {node.serial} stays {state.value}: only a pass "
            "changes a node's state; change it with POST /api/v1/nodes/{id}/transitions if needed"
        )
    session.flush()
    return stored


def share_history(
    session: Session, node_ids: Iterable[int]
) -> dict[GpuKey, list[tuple[datetime, Decimal | None]]]:
    """Each GPU's measured delivered share, ``min(1, sla_share)``, from every acceptance run in time
    order: ``(finished_at, share)``, a share of None where a run could not rate the card. A figure holds
    from its run until the next one measures the card again, so a month already billed keeps the shares
    it was billed on.

    Keyed by the GPU's UUID where the report gave one (what heartbeats and SLA intervals name GPUs by),
    else by ``(node_id, probe index)``. Every run counts, whatever its verdict: a failed run still says
    what the card delivers. No scoping: this is for jobs that compute the SLA of every contract.
    """
    ids = list(set(node_ids))
    if not ids:
        return {}
    history: dict[GpuKey, list[tuple[datetime, Decimal | None]]] = {}
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        stmt = (
            select(
                AcceptanceRun.node_id,
                AcceptanceRun.finished_at,
                AcceptanceGpu.uuid,
                AcceptanceGpu.index,
                AcceptanceGpu.sla_share,
            )
            .join(AcceptanceGpu, AcceptanceGpu.run_id == AcceptanceRun.id)
            .where(AcceptanceRun.node_id.in_(chunk))
            .order_by(AcceptanceRun.finished_at, AcceptanceRun.id)
        )
        for node_id, at, uuid, index, share in session.execute(stmt):
            key: GpuKey = uuid or (node_id, index)
            history.setdefault(key, []).append((at, None if share is None else min(Decimal(1), share)))
    return history


def latest_shares(session: Session, node_ids: Iterable[int]) -> dict[GpuKey, Decimal]:
    """Each GPU's latest measured share (:func:`share_history`'s last figure); unmeasured GPUs, and
    those whose latest run could not rate them, are absent: no measurement counts as a full share."""
    return {
        key: runs[-1][1] for key, runs in share_history(session, node_ids).items() if runs[-1][1] is not None
    }
