"""Stored scenarios and runs over /api/v1: upload (YAML, JSON, example), 422 with every problem, runs with
bounded paths, the Excel workbook; staff only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from computelease.economics.runs import API_MAX_PATHS

from .conftest import ONE_NODE

ROOT = Path(__file__).resolve().parents[2]
QINGYUN = (ROOT / "examples" / "qingyun_sale_leaseback.yaml").read_bytes()
YAML = {"content-type": "application/yaml"}


def _store(client: TestClient, world, body: bytes = QINGYUN) -> dict:
    r = client.post("/api/v1/scenarios", content=body, headers={**world.headers("operator"), **YAML})
    assert r.status_code == 201, r.text
    return r.json()


class TestStore:
    def test_yaml_upload_keeps_the_text(self, client: TestClient, world) -> None:
        stored = _store(client, world)
        assert stored["name"].startswith("青云-like") and stored["source"] == "upload"
        assert stored["yaml"] == QINGYUN.decode() and stored["runs"] == []
        assert stored["created_by"].startswith("token:")
        listing = client.get("/api/v1/scenarios", headers=world.headers("admin")).json()
        assert listing["total"] == 1 and listing["items"][0]["id"] == stored["id"]

    def test_json_document_example_and_name(self, client: TestClient, world) -> None:
        op = world.headers("operator")
        r = client.post("/api/v1/scenarios", json=ONE_NODE, headers=op)
        assert r.status_code == 201 and r.json()["name"] == "one node, twelve months"
        assert "kw_per_node: 8" in r.json()["yaml"]
        r = client.post("/api/v1/scenarios", json={"example": "idle_centre", "name": "stress"}, headers=op)
        assert r.status_code == 201 and r.json()["name"] == "stress" and r.json()["source"] == "example"
        r = client.post("/api/v1/scenarios", json={"example": "nope"}, headers=op)
        assert r.status_code == 404 and "lianhua_zixing" in r.json()["detail"]
        keys = [e["key"] for e in client.get("/api/v1/scenarios/examples", headers=op).json()]
        assert keys == ["idle_centre", "kingsoft_direct_lease", "lianhua_zixing", "qingyun_sale_leaseback"]

    def test_a_bad_file_is_a_422_listing_every_problem(self, client: TestClient, world) -> None:
        bad = QINGYUN.replace(b"horizon_months: 36", b"horizon_months: many").replace(b"pue: 1.", b"pue: 9.")
        r = client.post("/api/v1/scenarios", content=bad, headers={**world.headers("operator"), **YAML})
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        problems = r.json()["problems"]
        assert any(p.startswith("horizon_months:") for p in problems)
        assert any(p.startswith("sites[0].pue:") for p in problems)
        r = client.post(
            "/api/v1/scenarios", content=b"name: [unclosed", headers={**world.headers("operator"), **YAML}
        )
        assert r.status_code == 422 and "line 1" in r.json()["detail"]
        r = client.post(
            "/api/v1/scenarios",
            json={"yaml": "a: 1", "example": "idle_centre"},
            headers=world.headers("operator"),
        )
        assert r.status_code == 422
        assert client.get("/api/v1/scenarios", headers=world.headers("operator")).json()["total"] == 0

    @pytest.mark.parametrize("who", ["customer_a", "lessor_x"])
    def test_customers_and_lessors_are_refused(self, client: TestClient, world, who: str) -> None:
        stored = _store(client, world)
        h = world.headers(who)
        assert client.get("/api/v1/scenarios", headers=h).status_code == 403
        assert client.get(f"/api/v1/scenarios/{stored['id']}", headers=h).status_code == 403
        assert client.post("/api/v1/scenarios", content=QINGYUN, headers={**h, **YAML}).status_code == 403
        assert client.post(f"/api/v1/scenarios/{stored['id']}/runs", json={}, headers=h).status_code == 403
        assert client.post("/api/v1/scenarios/live", headers=h).status_code == 403
        assert client.delete(f"/api/v1/scenarios/{stored['id']}", headers=h).status_code == 403
        assert client.get("/api/v1/scenarios").status_code == 401


class TestRun:
    def test_run_compare_simulate_and_workbook(self, client: TestClient, world) -> None:
        sid = _store(client, world)["id"]
        op = world.headers("operator")
        r = client.post(f"/api/v1/scenarios/{sid}/runs", json={"paths": 2000, "seed": 7}, headers=op)
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["status"] == "done" and run["paths"] == 2000 and run["seed"] == 7
        assert run["routes"] == ["own", "bank", "direct_lease", "sale_leaseback"]
        result = run["summary"]
        assert [row["route"] for row in result["routes"]] == run["routes"]
        own = result["routes"][0]
        assert own["financing_cost"] == "0" and own["npv"] == own["project_npv"]
        assert result["financing"][0]["principal"] == "29000000.00"
        assert len(result["months"]) == 36 and len(result["lines"]["cash"]) == 36
        mc = result["monte_carlo"]
        assert mc["paths"] == 2000 and mc["npv"]["p5"] <= mc["npv"]["p50"] <= mc["npv"]["p95"]
        hist = result["distributions"]["npv"]
        assert sum(hist["counts"]) == 2000 and len(hist["edges"]) == len(hist["counts"]) + 1
        # Seeded: the same seed gives the same distribution.
        again = client.post(
            f"/api/v1/scenarios/{sid}/runs", json={"paths": 2000, "seed": 7}, headers=op
        ).json()
        assert again["summary"]["monte_carlo"] == mc
        fetched = client.get(f"/api/v1/scenarios/{sid}/runs/{run['id']}", headers=op).json()
        assert fetched["summary"] == result
        assert [x["id"] for x in client.get(f"/api/v1/scenarios/{sid}/runs", headers=op).json()] == [
            again["id"],
            run["id"],
        ]

        r = client.get(f"/api/v1/scenarios/{sid}/runs/{run['id']}/xlsx", headers=op)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxml")
        book = load_workbook(io.BytesIO(r.content))
        assert book.sheetnames == ["Summary", "Monthly", "Funding routes", "Financing", "Monte Carlo"]
        assert [c.value for c in book["Funding routes"]["A"]][1:] == run["routes"]
        assert book["Monthly"].max_row == 37

    def test_projection_only_routes_and_bounds(self, client: TestClient, world) -> None:
        sid = _store(client, world)["id"]
        op = world.headers("operator")
        r = client.post(
            f"/api/v1/scenarios/{sid}/runs", json={"paths": 0, "routes": ["own", "bank"]}, headers=op
        )
        assert r.status_code == 201
        assert r.json()["summary"]["monte_carlo"] is None and r.json()["routes"] == ["own", "bank"]
        too_many = {"paths": API_MAX_PATHS + 1}
        assert client.post(f"/api/v1/scenarios/{sid}/runs", json=too_many, headers=op).status_code == 422
        r = client.post(f"/api/v1/scenarios/{sid}/runs", json={"routes": ["barter"]}, headers=op)
        assert r.status_code == 422 and "barter" in r.json()["detail"]
        assert client.get(f"/api/v1/scenarios/{sid}/runs/999999", headers=op).status_code == 404
        assert client.get("/api/v1/scenarios/999999", headers=op).status_code == 404

    def test_a_missing_route_names_its_section(self, client: TestClient, world) -> None:
        r = client.post("/api/v1/scenarios", json=ONE_NODE, headers=world.headers("operator"))
        sid = r.json()["id"]
        r = client.post(
            f"/api/v1/scenarios/{sid}/runs",
            json={"paths": 0, "routes": ["direct_lease"]},
            headers=world.headers("operator"),
        )
        assert r.status_code == 422 and "funding.direct_lease" in r.json()["detail"]
        r = client.post(f"/api/v1/scenarios/{sid}/runs", json={"paths": 0}, headers=world.headers("operator"))
        assert r.json()["routes"] == ["own", "bank"]

    def test_delete_takes_the_runs_along(self, client: TestClient, world) -> None:
        sid = _store(client, world)["id"]
        op = world.headers("admin")
        client.post(f"/api/v1/scenarios/{sid}/runs", json={"paths": 0}, headers=op)
        assert client.delete(f"/api/v1/scenarios/{sid}", headers=op).status_code == 204
        assert client.get(f"/api/v1/scenarios/{sid}", headers=op).status_code == 404


def test_a_run_takes_its_monte_carlo_backend(client: TestClient, world) -> None:
    sid = _store(client, world)["id"]
    op = world.headers("operator")
    numpy_run = client.post(
        f"/api/v1/scenarios/{sid}/runs", json={"paths": 4000, "seed": 3}, headers=op
    ).json()
    jax_run = client.post(
        f"/api/v1/scenarios/{sid}/runs", json={"paths": 4000, "seed": 3, "backend": "jax"}, headers=op
    )
    assert jax_run.status_code == 201, jax_run.text
    assert jax_run.json()["summary"]["monte_carlo"]["backend"] == "jax"
    assert numpy_run["summary"]["monte_carlo"]["backend"] == "numpy"
    bad = client.post(f"/api/v1/scenarios/{sid}/runs", json={"paths": 10, "backend": "cupy"}, headers=op)
    assert bad.status_code == 422
