"""The allocation API, and what each role may see of it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from computelease.auth.core import SYSTEM
from computelease.fleet import service as fleet

DAY = {"start": "2026-02-01T00:00:00Z", "end": "2026-02-02T00:00:00Z"}


def test_plan_list_occupancy_and_scoping(client: TestClient, world, small) -> None:
    op, ca, lx = world.headers("operator"), world.headers("customer_a"), world.headers("lessor_x")
    body = {"as_of": "2026-01-01T00:00:00Z", "dry_run": True}
    assert client.post("/api/v1/allocations/plan", json=body, headers=ca).status_code == 403
    preview = client.post("/api/v1/allocations/plan", json=body, headers=op).json()
    assert len(preview["assignments"]) == 2 and preview["shortfalls"] == []
    assert client.get("/api/v1/allocations", headers=op).json()["total"] == 0
    done = client.post("/api/v1/allocations/plan", json={**body, "dry_run": False}, headers=op).json()
    assert all(a["id"] for a in done["assignments"])

    everything = client.get("/api/v1/allocations", headers=op).json()
    assert everything["total"] == 2
    a_node = next(a["node_id"] for a in everything["items"] if a["contract_id"] == small.contract_a.id)
    r = client.get("/api/v1/allocations", params={"active_at": "2027-01-05T00:00:00Z"}, headers=op)
    assert r.json()["total"] == 0

    mine = client.get("/api/v1/allocations", headers=ca)
    assert [a["contract_id"] for a in mine.json()["items"]] == [small.contract_a.id]
    assert "FOREIGN-TO-A" not in mine.text
    filtered = client.get("/api/v1/allocations", params={"contract_id": small.contract_b.id}, headers=ca)
    assert filtered.json()["total"] == 0
    assert client.get("/api/v1/allocations", headers=lx).json()["total"] == 0

    # Customers see the nodes serving them, and only those.
    nodes = client.get("/api/v1/nodes", headers=ca).json()["items"]
    assert [n["id"] for n in nodes] == [a_node]
    assert client.get("/api/v1/nodes", headers=lx).json()["total"] == 0

    staff = client.get("/api/v1/occupancy", params={**DAY, "group_by": "site"}, headers=op).json()
    qy = next(r for r in staff["rows"] if r["key"] == "qy-1")
    assert qy["occupancy_pct"] == 50.0 and len(qy["idle_nodes"]) == 2

    own = client.get("/api/v1/occupancy", params=DAY, headers=ca)
    assert own.status_code == 200 and own.json()["group_by"] == "contract"
    assert [r["key"] for r in own.json()["rows"]] == [str(small.contract_a.id)]
    assert all(r["idle_nodes"] == [] for r in own.json()["rows"])
    by_customer = client.get("/api/v1/occupancy", params={**DAY, "group_by": "customer"}, headers=ca)
    assert [r["label"] for r in by_customer.json()["rows"]] == ["Customer A own"]
    for group in ("site", "model", "fabric"):
        r = client.get("/api/v1/occupancy", params={**DAY, "group_by": group}, headers=ca)
        assert r.status_code == 403, group  # the fleet's idle capacity is not the customer's business
    assert client.get("/api/v1/occupancy", headers=lx).status_code == 403
    bad = client.get("/api/v1/occupancy", params={"start": DAY["end"], "end": DAY["start"]}, headers=op)
    assert bad.status_code == 422


def test_replacements_are_scoped(client: TestClient, db, world, small) -> None:
    op = world.headers("operator")
    client.post("/api/v1/allocations/plan", json={"as_of": "2026-01-01T00:00:00Z"}, headers=op)
    b_node = next(
        a["node_id"]
        for a in client.get("/api/v1/allocations", headers=op).json()["items"]
        if a["contract_id"] == small.contract_b.id
    )
    r = client.post(
        f"/api/v1/nodes/{b_node}/transitions",
        json={"to": "faulty", "at": "2026-03-01T00:00:00Z", "reason": "XID 79"},
        headers=op,
    )
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/replacements", headers=op).json()["total"] == 1
    assert client.get("/api/v1/replacements", headers=world.headers("customer_a")).json()["total"] == 0
    assert client.get("/api/v1/replacements", headers=world.headers("customer_b")).json()["total"] == 1
    with db.transaction("test") as s:
        assert fleet.get_node(s, SYSTEM, b_node).state.value == "faulty"
