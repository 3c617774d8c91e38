"""POST/GET /api/v1/nodes/{node_ref}/acceptance and GET /api/v1/acceptance/{run_id}: storing probe
reports on their node, the history, the state change a pass makes, scoping, and the probe's --post
against the real app."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from urllib.parse import quote

import pytest
import uvicorn

from computelease.fleet import service as fleet
from computelease.fleet.core import NodeState
from computelease.fleet.schemas import GpuIn, NodeIn, SiteIn
from computelease.probe import service
from computelease.probe.runner import run_probe
from computelease.probe.schemas import ProbeReport

URL = "/api/v1/nodes/{}/acceptance"


@pytest.fixture
def make_node(db) -> Callable[..., object]:
    """``make_node(serial, state)``: an 8-GPU H100 node whose GPUs carry the fake device's UUIDs."""
    sites: list[int] = []

    def make(serial: str = "HGX-01", state: NodeState = NodeState.delivered, uuids: bool = True) -> object:
        with db.transaction(actor="test") as s:
            if not sites:
                site = fleet.create_site(
                    s,
                    SiteIn(code="sh-1", name="Shanghai 1", kind="own_center", city="上海", pue="1.3",
                           power_price_per_kwh="0.6"),
                )  # fmt: skip
                sites.append(site.id)
            return fleet.create_node(
                s,
                NodeIn(
                    serial=serial,
                    sku_id="nvidia-hgx-h100-8gpu",
                    site_id=sites[0],
                    purchase_cost="2300000.00",
                    purchase_date="2025-01-01",
                    state=state,
                    gpus=[GpuIn(index=i, uuid=f"GPU-fake-{i}" if uuids else None) for i in range(8)],
                ),
            )

    return make


@pytest.fixture
def probe_report(node, catalog, thresholds, clock) -> Callable[..., dict]:
    """``probe_report(serial, bf16={index: tflops}, count=8)``: a report of the fake device, as JSON."""

    def make(serial: str | None = "HGX-01", bf16: dict[int, float] | None = None, count: int = 8) -> dict:
        backend = node(count)
        for index, tflops in (bf16 or {}).items():
            backend.fake_gpus[index].tflops["bf16"] = tflops
            backend.fake_gpus[index].reference_tflops = tflops
        report = run_probe(
            backend, mode="quick", catalog=catalog, thresholds=thresholds, node=serial, now=clock
        )
        return json.loads(report.model_dump_json())

    return make


def _post(client, world, serial: str, body: dict, who: str = "operator"):
    return client.post(URL.format(quote(serial, safe="")), json=body, headers=world.headers(who))


def test_a_pass_moves_a_delivered_node_to_accepted(client, world, make_node, probe_report) -> None:
    node = make_node()
    r = _post(client, world, "HGX-01", probe_report())
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["verdict"] == "pass" and run["transitioned"] is True and run["warnings"] == []
    assert (run["state_before"], run["state_after"]) == ("delivered", "accepted")
    assert run["driver"] == "580.65.06" and run["torch"] == "2.15.0+cu128" and run["cuda_runtime"] == "12.8"
    assert [g["uuid"] for g in run["gpus"]] == [f"GPU-fake-{i}" for i in range(8)]
    assert all(g["gpu_id"] is not None for g in run["gpus"])
    assert Decimal(run["gpus"][0]["bf16_tflops"]) == Decimal("789.00")
    assert Decimal(run["gpus"][0]["sla_share"]) == Decimal("1.0633")  # 789 / 742.05

    got = client.get(f"/api/v1/nodes/{node.id}", headers=world.headers("admin")).json()
    assert got["state"] == "accepted"
    events = client.get(f"/api/v1/nodes/{node.id}/events", headers=world.headers("admin")).json()
    assert events[-1]["to_state"] == "accepted"
    assert events[-1]["reason"] == f"acceptance run {run['id']} passed"

    full = client.get(f"/api/v1/acceptance/{run['id']}", headers=world.headers("operator")).json()
    assert ProbeReport.model_validate(full["report"]).verdict == "pass"


def test_history_is_kept_and_latest_shares_follow_the_newest_run(
    client, world, make_node, probe_report, db
) -> None:
    node = make_node()
    first = _post(client, world, "HGX-01", probe_report()).json()
    # GPU 1 now delivers 700 TFLOPS: under the 742.05 pass level, a warn; the node stays accepted.
    second = _post(client, world, "HGX-01", probe_report(bf16={1: 700.0})).json()
    assert second["verdict"] == "warn" and second["transitioned"] is False
    assert second["state_after"] == "accepted" and "stays accepted" in second["notes"][0]

    listed = client.get(URL.format("HGX-01"), headers=world.headers("operator")).json()
    assert listed["total"] == 2 and [r["id"] for r in listed["items"]] == [second["id"], first["id"]]
    by_id = client.get(URL.format(node.id), headers=world.headers("operator")).json()
    assert by_id["total"] == 2  # the numeric id names the node too

    with db.transaction(actor="test") as s:
        shares = service.latest_shares(s, [node.id])
    assert shares["GPU-fake-0"] == Decimal(1)  # 789 / 742.05 > 1 counts as a full share
    assert shares["GPU-fake-1"] == Decimal("0.9433")  # 700 / 742.05
    assert len(shares) == 8


def test_a_fail_never_changes_a_node_in_service(client, world, make_node, probe_report) -> None:
    make_node(state=NodeState.in_service)
    r = _post(client, world, "HGX-01", probe_report(bf16={3: 300.0}))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["verdict"] == "fail" and run["transitioned"] is False
    assert run["state_before"] == run["state_after"] == "in_service"
    assert "stays in_service" in run["notes"][0] and "transitions" in run["notes"][0]


def test_a_bad_report_is_a_422_naming_the_field(client, world, make_node, probe_report) -> None:
    make_node()
    body = probe_report()
    body["gpus"][0]["bf16_tflops"] = "fast"
    r = _post(client, world, "HGX-01", body)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "gpus.0.bf16_tflops" in r.json()["detail"]

    body = probe_report()
    body["gpus"][0]["overclocked"] = True  # a probe newer than the server
    r = _post(client, world, "HGX-01", body)
    assert r.status_code == 422 and "overclocked" in r.json()["detail"]

    r = _post(client, world, "HGX-01", probe_report(serial="HGX-02"))
    assert r.status_code == 422 and "HGX-02" in r.json()["detail"]
    assert client.get(URL.format("HGX-01"), headers=world.headers("operator")).json()["total"] == 0


def test_an_unknown_node_is_a_404(client, world, make_node, probe_report) -> None:
    make_node()
    r = _post(client, world, "NO-SUCH", probe_report(serial="NO-SUCH"))
    problem = r.json()
    assert r.status_code == 404 and "serial" in problem["detail"]
    assert problem["instance"].endswith("NO-SUCH/acceptance")
    assert client.get(URL.format("NO-SUCH"), headers=world.headers("admin")).status_code == 404
    assert client.get("/api/v1/acceptance/999999", headers=world.headers("admin")).status_code == 404


def test_gpus_the_node_does_not_hold_are_warnings(client, world, make_node, probe_report) -> None:
    make_node(uuids=False)
    r = _post(client, world, "HGX-01", probe_report(count=2))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["transitioned"] is True  # a warning is not a failure
    assert all(g["gpu_id"] is None for g in run["gpus"])
    assert any("GPU-fake-0" in w and "not recorded on node HGX-01" in w for w in run["warnings"])
    assert any("the report has 2 GPUs; node HGX-01 has 8" in w for w in run["warnings"])


def test_a_serial_with_a_slash_is_found(client, world, make_node, probe_report) -> None:
    make_node(serial="HGX 01/A")
    r = _post(client, world, "HGX 01/A", probe_report(serial="HGX 01/A"))
    assert r.status_code == 201, r.text


def test_tenants_never_store_or_see_runs(client, world, make_node, probe_report) -> None:
    node = make_node()
    run = _post(client, world, "HGX-01", probe_report()).json()
    for who in ("customer_a", "customer_b", "lessor_x", "lessor_y"):
        assert _post(client, world, "HGX-01", probe_report(), who=who).status_code == 403
        for path in (URL.format("HGX-01"), URL.format(node.id), f"/api/v1/acceptance/{run['id']}"):
            r = client.get(path, headers=world.headers(who))
            assert r.status_code == 404, (who, path, r.text)
            assert "GPU-fake" not in r.text
    assert client.get(URL.format("HGX-01")).status_code == 401
    assert client.post(URL.format("HGX-01"), json=probe_report()).status_code == 401
    assert client.get(URL.format("HGX-01"), headers=world.headers("operator")).json()["total"] == 1


# ------------------------------------------------------------------------------ probe --post, end to end


@pytest.fixture
def live_server(client) -> Iterator[str]:
    """The test client's app, already started, also under uvicorn on a free port: the probe posts with
    urllib, which cannot reach an ASGI app in-process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_probe_post_stores_the_run(
    probe_cli, node, live_server, client, world, make_node, monkeypatch
) -> None:
    target = make_node(serial="HGX 01/A")
    monkeypatch.setenv("COMPUTELEASE_TOKEN", world.tokens["operator"])
    code, _out, err = probe_cli("--quick", "--post", live_server + "/", "--node", "HGX 01/A", backend=node(8))
    assert code == 0, err
    assert "report stored for node HGX 01/A" in err
    listed = client.get(URL.format(target.id), headers=world.headers("admin")).json()
    assert listed["total"] == 1 and listed["items"][0]["state_after"] == "accepted"

    monkeypatch.setenv("COMPUTELEASE_TOKEN", world.tokens["customer_a"])
    code, _out, err = probe_cli("--quick", "--post", live_server, "--node", "HGX 01/A", backend=node(8))
    assert code == 3 and "HTTP 403" in err
