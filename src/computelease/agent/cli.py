"""`computelease agent …` (run the node agent) and `computelease simulate` (a simulated fleet of agents)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from computelease.agent.clock import SimClock, SystemClock
from computelease.agent.errors import AgentError
from computelease.kit.cli import echo_json, echo_table, err, out
from computelease.kit.time import as_utc, utcnow

agent_app = typer.Typer(
    help="The node agent: GPU telemetry, spooled and sent to the server.", no_args_is_help=True
)
simulate_app = typer.Typer(help="Drive a simulated fleet of node agents against a server.")

TOKEN_ENV = "COMPUTELEASE_AGENT_TOKEN"  # noqa: S105 (the variable's name, not a secret)
# Nodes that run no agent: not yet delivered, or gone.
IDLE_STATES = frozenset({"ordered", "retired", "sold"})


class BackendName(StrEnum):
    nvml = "nvml"
    simulated = "simulated"


def default_spool(node: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "computelease" / f"agent-{re.sub(r'[^A-Za-z0-9._-]', '_', node)}.db"


@contextmanager
def _logging(verbose: bool) -> Iterator[None]:
    # Bound to this command's stderr and removed afterwards: in-process runs (tests) swap stderr.
    logger = logging.getLogger("computelease.agent")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@contextmanager
def _errors() -> Iterator[None]:
    """An agent error as computelease.cli.main prints one, but as plain text: rich would take the
    ``[agent]`` of ``pip install 'computelease[agent]'`` for markup and drop it."""
    try:
        yield
    except AgentError as exc:
        err.print(f"error: {exc.detail}", markup=False)
        raise typer.Exit(1) from exc


@contextmanager
def _stop_on_signals() -> Iterator[list[bool]]:
    """SIGTERM (systemd stop) and SIGINT end the loop after the current heartbeat, not inside it."""
    flag = [False]

    def stop(signum: int, frame: object) -> None:
        flag[0] = True

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread: nothing to install
            saved[sig] = signal.signal(sig, stop)
    try:
        yield flag
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _open_backend(backend: BackendName, node: str, seed: int) -> Any:
    if backend is BackendName.nvml:
        from computelease.agent.backends import NvmlBackend

        return NvmlBackend()
    from computelease.agent.simulated import SimulatedFleet

    return SimulatedFleet.single(node=node, seed=seed, clock=SystemClock()).backend(0)


Server = Annotated[str, typer.Option(help="the computelease server, e.g. https://lease.example.com")]
Token = Annotated[
    str, typer.Option(envvar=TOKEN_ENV, help=f"API token (better: set {TOKEN_ENV}, kept out of `ps`)")
]
Node = Annotated[str, typer.Option(help="this node's serial, as the fleet knows it")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="log every retry and XID")]


@agent_app.command("run")
@_errors()
def agent_run(
    server: Server,
    token: Token,
    node: Node,
    interval: Annotated[int, typer.Option(min=1, max=86_400, help="seconds between heartbeats")] = 30,
    backend: Annotated[BackendName, typer.Option(help="nvml on a GPU node; simulated to try it")] = (
        BackendName.nvml
    ),
    spool: Annotated[
        Path | None, typer.Option(help="spool file (default ~/.local/state/computelease/agent-NODE.db)")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=500, help="heartbeats per request")] = 100,
    retries: Annotated[
        int, typer.Option(min=0, max=10, help="retries of a batch while the server is down")
    ] = 3,
    once: Annotated[bool, typer.Option("--once", help="one heartbeat, send what is spooled, exit")] = False,
    seed: Annotated[int, typer.Option(help="seed of the simulated backend")] = 0,
    verbose: Verbose = False,
) -> None:
    """Heartbeat every INTERVAL seconds; what the server cannot take now waits in the spool."""
    from computelease.agent.runner import Agent
    from computelease.agent.sender import Sender
    from computelease.agent.spool import Spool

    with _logging(verbose):
        # The backend first: a node without the driver or nvidia-ml-py fails before any file is made.
        source = _open_backend(backend, node, seed)
        try:
            with (
                Sender(server, token, retries=retries) as sender,
                Spool(spool or default_spool(node), node=node) as box,
            ):
                agent = Agent(
                    node=node, backend=source, spool=box, sender=sender, interval_s=interval, batch_size=batch
                )
                if once:
                    _once(agent)
                    return
                err.print(
                    f"agent for {node}: {source.name} every {interval} s to {sender.url}; spool {box.path}"
                )
                with _stop_on_signals() as stop:
                    total = agent.run(stop=lambda: stop[0])
                err.print(f"stopped: sent {total.sent}, {len(box)} pending in the spool")
        finally:
            source.close()


def _once(agent: Any) -> None:
    tick = agent.tick()
    flush = tick.flush
    seq = tick.heartbeat.seq if tick.heartbeat else None
    gpus = len(tick.heartbeat.gpus) if tick.heartbeat else 0
    out.print(f"heartbeat {seq} ({gpus} GPUs); sent {flush.sent}, pending {flush.pending}")
    if flush.stopped is not None:
        raise AgentError(f"{flush.pending} heartbeat(s) kept in {agent.spool.path}: {flush.stopped.detail}")


@agent_app.command("sample")
@_errors()
def agent_sample(
    backend: Annotated[BackendName, typer.Option()] = BackendName.nvml,
    node: Annotated[str, typer.Option(help="node serial (simulated backend)")] = "SIM-0001",
    seed: int = 0,
    interval: int = 30,
) -> None:
    """Print one heartbeat as it would be sent, without spooling or sending it."""
    from computelease.telemetry.schemas import HeartbeatBody

    source = _open_backend(backend, node, seed)
    try:
        sample = source.sample()
    finally:
        source.close()
    if sample is None:
        raise AgentError("the backend has no readings now")
    body = HeartbeatBody(at=utcnow(), interval_s=interval, gpus=sample.gpus, unsupported=sample.unsupported)
    echo_json(body.model_dump(mode="json"))


@agent_app.command("spool")
@_errors()
def agent_spool(
    node: Node,
    spool: Annotated[Path | None, typer.Option(help="spool file (default: the agent's)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show what waits in a node's spool (stop the agent first: one process per spool)."""
    from computelease.agent.spool import Spool

    path = spool or default_spool(node)
    if not path.exists():
        raise AgentError(f"no spool at {path}")
    with Spool(path, node=node) as box:
        stats = box.stats()
    if as_json:
        echo_json(stats)
    else:
        echo_table(("path", "pending", "next seq", "dropped (spool full)"), [tuple(stats.values())])


def _fleet_specs(path: Path) -> list[Any]:
    from computelease.agent.simulated import NodeSpec
    from computelease.fleet.csvio import parse_nodes

    try:
        rows, problems = parse_nodes(path.read_bytes())
    except OSError as exc:
        raise AgentError(f"cannot read {path}: {exc.strerror}") from exc
    if problems:
        raise AgentError(f"{path}: {len(problems)} problem(s), first: {problems[0]}")
    specs = [
        NodeSpec(r.serial, r.model or r.sku, tuple(r.gpu_uuids), tuple(r.gpu_serials))
        for r in rows
        if r.state.value not in IDLE_STATES
    ]
    if not specs:
        raise AgentError(f"{path} has no node that runs an agent")
    return specs


@simulate_app.callback(invoke_without_command=True)
@_errors()
def simulate(
    nodes: Annotated[int, typer.Option(min=1, max=10_000, help="simulated nodes")] = 10,
    days: Annotated[float, typer.Option(min=0.001, max=366, help="simulated days")] = 1.0,
    server: Annotated[str | None, typer.Option(help="send to this server (omit: simulate only)")] = None,
    token: Annotated[str | None, typer.Option(envvar=TOKEN_ENV, help=f"API token (or {TOKEN_ENV})")] = None,
    seed: Annotated[int, typer.Option(help="the same seed gives the same incidents")] = 0,
    speed: Annotated[
        float, typer.Option(min=0, help="simulated seconds per real second; 0 = as fast as possible")
    ] = 0.0,
    interval: Annotated[int, typer.Option(min=1, max=86_400, help="seconds between heartbeats")] = 30,
    gpus: Annotated[int, typer.Option(min=1, max=64, help="GPUs per node")] = 8,
    model: Annotated[str, typer.Option(help="GPU model: H100, H800, H200, H20, A100, A800")] = "H100",
    batch: Annotated[int, typer.Option(min=1, max=500, help="heartbeats per request")] = 100,
    start: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"], help="default: DAYS ago")
    ] = None,
    fleet_csv: Annotated[
        Path | None, typer.Option(help="nodes (serials, GPU UUIDs) from a `node export` CSV, not --nodes")
    ] = None,
    prefix: Annotated[str, typer.Option(help="serial prefix of generated nodes")] = "SIM",
    failure_scale: Annotated[
        float, typer.Option(min=0, max=10_000, help="multiply the Llama 3 failure rates (demos: 50–200)")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary and incidents as JSON")] = False,
    verbose: Verbose = False,
) -> None:
    """Simulate NODES nodes for DAYS days (Llama 3 failure rates) and send their heartbeats to SERVER."""
    from computelease.agent.runner import run_simulation
    from computelease.agent.sender import Sender
    from computelease.agent.simulated import FailureModel, SimulatedFleet

    if server and not token:
        raise AgentError(f"--server needs a token: pass --token or set {TOKEN_ENV}")
    if start is not None:
        begin = as_utc(start)
    else:
        # Ending now: a demo's history reaches the present, so its pages look current.
        now = utcnow().replace(microsecond=0)
        begin = now - timedelta(days=days)
    end = begin + timedelta(days=days)
    specs = _fleet_specs(fleet_csv) if fleet_csv else nodes
    fleet = SimulatedFleet(
        specs,
        seed=seed,
        clock=SimClock(begin),
        gpus_per_node=gpus,
        model=model,
        prefix=prefix,
        failures=FailureModel().scaled(failure_scale),
    )
    beats = len(fleet.nodes) * int(days * 86_400 / interval)
    err.print(f"simulating {len(fleet.nodes)} nodes for {days:g} days: about {beats:,} heartbeats")

    def progress(report: Any) -> None:
        day = round((fleet.clock.now() - begin) / timedelta(days=1))
        err.print(
            f"  day {day}: {report.heartbeats:,} heartbeats, {sum(report.incidents.values())} incidents, "
            f"{report.delivery.sent:,} sent"
        )

    with _logging(verbose):
        sender = Sender(server, token or "", retries=1, backoff_s=0.5) if server else None
        try:
            report = run_simulation(
                fleet,
                end=end,
                interval_s=interval,
                sender=sender,
                batch_size=batch,
                speed=speed,
                progress=progress,
            )
        finally:
            if sender is not None:
                sender.close()
    summary = report.as_dict()
    if as_json:
        summary["incident_list"] = [
            {
                "cause": i.cause.value,
                "node": i.node,
                "gpu_index": i.gpu_index,
                "xid": i.xid,
                "start": i.start.isoformat(),
                "end": i.end.isoformat() if i.end else None,
            }
            for i in fleet.incidents
        ]
        echo_json(summary)
    else:
        echo_table(("figure", "value"), [(k, v) for k, v in summary.items()])
    if server and report.pending:
        why = report.stopped or "their nodes were still cut off at the end"
        raise AgentError(f"{report.pending} heartbeat(s) were not delivered ({why})")


commands = [("agent", agent_app), ("simulate", simulate_app)]
