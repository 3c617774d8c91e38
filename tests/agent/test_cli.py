"""`computelease agent …` and `computelease simulate`, run in-process through computelease.cli.main.

Until ``agent`` is listed in ``registry.DOMAINS`` the commands are registered here the way
``cli._domain_commands`` registers a domain's ``commands``.
"""

from __future__ import annotations

import json
import sys

import pytest
from typer.models import TyperInfo

from computelease import cli as root
from computelease.agent import cli as agent_cli
from computelease.registry import DOMAINS
from computelease.telemetry.schemas import HeartbeatBody


@pytest.fixture
def run(monkeypatch, capsys):  # type: ignore[no-untyped-def]
    monkeypatch.delenv(agent_cli.TOKEN_ENV, raising=False)
    if "agent" not in DOMAINS:
        groups = [TyperInfo(group, name=name) for name, group in agent_cli.commands]
        monkeypatch.setattr(root.app, "registered_groups", [*root.app.registered_groups, *groups])

    def invoke(*args: str) -> tuple[int, str, str]:
        code = root.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_simulate_offline_prints_a_summary(run) -> None:
    code, out, err = run("simulate", "--nodes", "2", "--days", "0.05", "--seed", "4", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["nodes"] == 2 and summary["gpus"] == 16
    assert summary["heartbeats"] + summary["missed_heartbeats"] == 2 * 144
    assert summary["sent"] == summary["pending"] == 0 and isinstance(summary["incident_list"], list)
    assert "simulating 2 nodes" in err


def test_simulate_against_a_server(run, live_server) -> None:
    url, server = live_server
    code, out, err = run(
        "simulate", "--nodes", "3", "--days", "0.1", "--server", url, "--token", "secret", "--batch", "50",
        "--interval", "60", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["heartbeats"] == len(server.arrivals) == summary["accepted"] == 3 * 144
    assert summary["pending"] == 0
    for node in ("SIM-0001", "SIM-0002", "SIM-0003"):
        seqs = server.seqs(node)
        assert seqs == sorted(seqs) and len(seqs) == 144


def test_simulate_reports_undelivered_heartbeats(run, live_server) -> None:
    url, server = live_server
    server.status = 401
    code, _out, err = run("simulate", "--nodes", "1", "--days", "0.02", "--server", url, "--token", "bad")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error: 58 heartbeat(s) were not delivered (HTTP 401")


def test_simulate_needs_a_token_with_a_server(run) -> None:
    code, _out, err = run("simulate", "--server", "http://127.0.0.1:9")
    assert code == 1 and "needs a token" in err


def test_agent_run_once_delivers_and_keeps_when_down(run, live_server, tmp_path, monkeypatch) -> None:
    url, server = live_server
    spool = str(tmp_path / "spool.db")
    monkeypatch.setenv(agent_cli.TOKEN_ENV, "secret")
    args = (
        "agent",
        "run",
        "--server",
        url,
        "--node",
        "N-1",
        "--backend",
        "simulated",
        "--spool",
        spool,
        "--once",
        "--retries",
        "0",
    )
    code, out, err = run(*args)
    assert code == 0, err
    assert "(8 GPUs); sent 1, pending 0" in out and len(server.arrivals) == 1
    server.status = 503
    code, _out, err = run(*args)
    assert code == 1 and err.strip().splitlines()[-1].startswith(f"error: 1 heartbeat(s) kept in {spool}")
    server.status = None
    code, out, _ = run(*args)
    assert code == 0 and "sent 2, pending 0" in out
    assert server.seqs("N-1") == sorted(server.seqs("N-1")) and len(server.arrivals) == 3

    code, out, _ = run("agent", "spool", "--node", "N-1", "--spool", spool, "--json")
    assert code == 0 and json.loads(out)["pending"] == 0


def test_agent_nvml_without_the_extra_is_one_line(run, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    code, _out, err = run(
        "agent", "run", "--server", "https://x.test", "--token", "t", "--node", "N", "--spool",
        str(tmp_path / "s.db"), "--once",
    )  # fmt: skip
    assert code == 1
    assert err == "error: the nvml backend needs nvidia-ml-py: pip install 'computelease[agent]'\n"


def test_agent_sample_prints_a_valid_heartbeat(run) -> None:
    code, out, _ = run("agent", "sample", "--backend", "simulated", "--node", "X-1")
    assert code == 0
    body = HeartbeatBody.model_validate(json.loads(out))
    assert len(body.gpus) == 8 and body.gpus[0].name == "NVIDIA H100 80GB HBM3"


def test_simulate_from_a_fleet_export(run, tmp_path) -> None:
    csv = tmp_path / "nodes.csv"
    csv.write_text(
        "serial,sku,model,site,state,purchase_cost,purchase_date,gpu_uuids\n"
        "QYA-1,nvidia-hgx-h100-8gpu,H100,qy-1,in_service,2300000,2025-01-01,GPU-a;GPU-b\n"
        "QYA-2,nvidia-hgx-h100-8gpu,H100,qy-1,ordered,2300000,2025-01-01,\n",
        encoding="utf-8",
    )
    code, out, err = run("simulate", "--fleet-csv", str(csv), "--days", "0.01", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["nodes"] == 1 and summary["gpus"] == 2  # the ordered node runs no agent


def test_agent_run_heartbeats_until_sigterm(run, live_server, tmp_path, monkeypatch) -> None:
    import os
    import signal
    import threading
    import time

    url, server = live_server
    monkeypatch.setenv(agent_cli.TOKEN_ENV, "secret")

    def terminate_after_a_heartbeat() -> None:
        deadline = time.monotonic() + 15
        while not server.arrivals:
            if time.monotonic() > deadline:
                return  # the command failed early: its own assertion reports it
            time.sleep(0.02)
        # A heartbeat arrived, so the loop runs with its SIGTERM handler installed.
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=terminate_after_a_heartbeat, daemon=True).start()
    code, _out, err = run(
        "agent", "run", "--server", url, "--node", "N-9", "--backend", "simulated", "--interval", "1",
        "--spool", str(tmp_path / "s.db"),
    )  # fmt: skip
    assert code == 0, err
    assert len(server.seqs("N-9")) >= 1 and "stopped: sent" in err and "0 pending" in err
    assert signal.getsignal(signal.SIGTERM) == before  # the command restores what it replaced
