"""The fleet API: scoped reads, staff-only writes, the illegal-transition problem, CSV in and out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

NODE = {
    "serial": "API-1",
    "sku_id": "nvidia-hgx-h100-8gpu",
    "fabric": "ib-a",
    "purchase_cost": "2300000.00",
    "purchase_date": "2025-02-01",
    "supplier": "浪潮信息",
}


def is_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


class TestWrite:
    def test_operator_creates_a_site_and_a_node_with_its_gpus(self, client: TestClient, world) -> None:
        """Also: a bad site names its field, and an unknown SKU is a 422 (input to fix), not a 404."""
        op = world.headers("operator")
        site = {
            "code": "qy-9",
            "name": "庆阳三期",
            "kind": "own_center",
            "city": "庆阳",
            "pue": "1.25",
            "power_price_per_kwh": "0.3812",
            "racks": [{"name": "A01", "power_kw": "25"}],
        }
        r = client.post("/api/v1/sites", json=site, headers=op)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["power_price_per_kwh"] == "0.3812" and created["racks"][0]["name"] == "A01"
        body = NODE | {"site_id": created["id"], "rack_id": created["racks"][0]["id"]}
        body["gpus"] = [{"index": 0, "uuid": "GPU-0001"}]
        r = client.post("/api/v1/nodes", json=body, headers=op)
        assert r.status_code == 201, r.text
        node = r.json()
        assert (
            node["state"] == "ordered" and node["model"] == "nvidia-h100-sxm" and node["site_code"] == "qy-9"
        )
        assert node["purchase_cost"] == "2300000.00" and len(node["gpus"]) == 8
        assert node["gpus"][0]["uuid"] == "GPU-0001" and node["gpus"][1]["uuid"] is None

        # Bad input names the field, or what to fix, and is never a 500.
        site = {"code": "x", "name": "x", "kind": "colocation", "city": "上海", "pue": "1.5"}
        site["power_price_per_kwh"] = "0.8"
        for change, field in (
            ({"pue": "0.9"}, "pue"),
            ({"time_zone": "Mars/Olympus"}, "time_zone"),
            ({"kind": "hyperscale"}, "kind"),
            ({"power_price_per_kwh": "0.12345"}, "power_price_per_kwh"),
        ):
            r = client.post("/api/v1/sites", json=site | change, headers=world.headers("admin"))
            assert is_problem(r, 422)["errors"][0]["field"] == field
        body = NODE | {"site_id": created["id"], "sku_id": "nvidia-hgx-h999"}
        problem = is_problem(client.post("/api/v1/nodes", json=body, headers=world.headers("operator")), 422)
        assert "no server SKU 'nvidia-hgx-h999'" in problem["detail"]


class TestTransitions:
    def test_an_illegal_transition_names_current_requested_and_allowed(self, client, world, fleet) -> None:
        url = f"/api/v1/nodes/{fleet.nodes['N3']}/transitions"
        r = client.post(
            url, json={"to": "in_service", "reason": "skip acceptance"}, headers=world.headers("operator")
        )
        problem = is_problem(r, 409)
        assert problem["current"] == "ordered" and problem["requested"] == "in_service"
        assert problem["allowed"] == ["delivered"]
        assert "is ordered; it cannot move to in_service" in problem["detail"]
        assert "may move to: delivered" in problem["detail"]
        events = client.get(
            f"/api/v1/nodes/{fleet.nodes['N3']}/events", headers=world.headers("operator")
        ).json()
        assert len(events) == 1

    def test_a_legal_transition_is_recorded_and_bad_times_are_422(self, client, world, fleet) -> None:
        op = world.headers("operator")
        node_id = fleet.nodes["N2"]
        at = datetime.now(UTC) - timedelta(hours=2)
        r = client.post(
            f"/api/v1/nodes/{node_id}/transitions", json={"to": "repair", "at": at.isoformat()}, headers=op
        )
        assert r.status_code == 201, r.text
        assert r.json()["from_state"] == "faulty" and r.json()["actor"].startswith("token:")
        assert client.get(f"/api/v1/nodes/{node_id}", headers=op).json()["state"] == "repair"
        intervals = client.get(f"/api/v1/nodes/{node_id}/intervals", headers=op).json()
        assert [i["state"] for i in intervals] == ["faulty", "repair"]
        assert intervals[-1]["end"] is not None  # the default period ends now
        for at, message in (
            ("2025-03-01T00:00:00", "timezone"),
            ("2999-01-01T00:00:00Z", "future"),
            ("2025-01-01T00:00:00Z", "earlier"),
        ):
            r = client.post(
                f"/api/v1/nodes/{fleet.nodes['N2']}/transitions",
                json={"to": "in_service", "at": at},
                headers=world.headers("operator"),
            )
            assert message in is_problem(r, 422)["detail"]


class TestScope:
    @pytest.mark.parametrize("who", ["customer_a", "lessor_x"])
    def test_customers_and_lessors_get_nothing_of_the_fleet(
        self, client: TestClient, world, fleet, who
    ) -> None:
        h = world.headers(who)
        node = fleet.nodes["N1"]
        assert client.get("/api/v1/nodes", headers=h).json()["total"] == 0
        assert client.get("/api/v1/sites", headers=h).json()["total"] == 0
        assert all(c["nodes"] == 0 for c in client.get("/api/v1/nodes/summary", headers=h).json())
        for path in (
            f"/nodes/{node}",
            f"/nodes/{node}/events",
            f"/nodes/{node}/intervals",
            f"/sites/{fleet.own}",
        ):
            is_problem(client.get(f"/api/v1{path}", headers=h), 404)
        export = client.get("/api/v1/nodes/export", headers=h)
        assert export.status_code == 200 and export.content.count(b"\r\n") == 1
        for method, path, body in (
            ("POST", "/nodes", NODE | {"site_id": fleet.own}),
            ("POST", f"/nodes/{node}/transitions", {"to": "maintenance"}),
            ("PATCH", f"/nodes/{node}", {"fabric": "x"}),
            ("DELETE", f"/nodes/{fleet.nodes['N3']}", None),
            ("POST", f"/sites/{fleet.own}/racks", {"name": "Z"}),
        ):
            assert (
                "operator"
                in is_problem(client.request(method, f"/api/v1{path}", json=body, headers=h), 403)["detail"]
            )
        r = client.post("/api/v1/nodes/import", files={"file": ("n.csv", b"x")}, headers=h)
        is_problem(r, 403)

    def test_staff_filter_the_fleet(self, client: TestClient, world, fleet) -> None:
        h = world.headers("operator")

        def serials(query: str) -> list[str]:
            return [n["serial"] for n in client.get(f"/api/v1/nodes?{query}", headers=h).json()["items"]]

        # Other tests' fixtures may add nodes elsewhere; these look at the fixture's two sites.
        assert serials(f"site_id={fleet.own}") == ["N1", "N2", "N3"]
        assert serials(f"site_id={fleet.own}&state=faulty&state=ordered") == ["N2", "N3"]
        assert serials("model=nvidia-h20") == ["S1"]
        assert serials(f"site_id={fleet.own}&fabric=ib-a") == ["N1"]
        is_problem(client.get("/api/v1/nodes?state=broken", headers=h), 422)
        metrics = client.get("/metrics").text
        assert (
            'computelease_fleet_nodes{model="nvidia-h100-sxm",site="qy-1",state="in_service"} 1.0' in metrics
        )
        assert 'computelease_fleet_gpus{model="nvidia-h100-sxm",site="qy-1",state="faulty"} 8.0' in metrics


class TestCsv:
    def test_download_upload_and_bad_rows(self, client: TestClient, world, fleet, db) -> None:
        from sqlalchemy import delete

        from computelease.fleet.models import Gpu, Node, NodeEvent

        h = world.headers("operator")
        r = client.get("/api/v1/nodes/export?site_id=" + str(fleet.own), headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert 'filename="nodes.csv"' in r.headers["content-disposition"]
        data = r.content
        assert data.count(b"\r\n") == 4 and b"S1" not in data
        with db.engine.begin() as conn:
            for table in (NodeEvent, Gpu, Node):
                conn.execute(delete(table))
        dry = client.post(
            "/api/v1/nodes/import?dry_run=true", files={"file": ("n.csv", data, "text/csv")}, headers=h
        )
        assert dry.status_code == 200 and dry.json()["created"] == 0
        r = client.post("/api/v1/nodes/import", files={"file": ("n.csv", data, "text/csv")}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["created"] == 3 and r.json()["racks_created"] == []
        assert client.get("/api/v1/nodes/export?site_id=" + str(fleet.own), headers=h).content == data

        # A file with bad rows lists every one and writes nothing.
        text = (
            "serial,sku,site,state,purchase_cost,purchase_date\r\n"
            "U1,nvidia-hgx-h100-8gpu,qy-1,in_service,100,2025-01-01\r\n"
            "U2,nvidia-hgx-h100-8gpu,qy-1,flying,100,2025-01-01\r\n"
            "U3,nvidia-hgx-h100-8gpu,mars,ordered,100,2025-01-01\r\n"
        )
        r = client.post(
            "/api/v1/nodes/import",
            files={"file": ("n.csv", text.encode())},
            headers=world.headers("operator"),
        )
        problem = is_problem(r, 422)
        assert [e["line"] for e in problem["errors"]] == [3, 4]
        assert "line 3: state 'flying'" in problem["detail"] and "line 4: site 'mars'" in problem["detail"]
        serials = [
            n["serial"]
            for n in client.get("/api/v1/nodes", headers=world.headers("operator")).json()["items"]
        ]
        assert "U1" not in serials
