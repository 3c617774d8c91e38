"""The occupancy page and the allocation sections of the contract and node pages."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from computelease.allocation import service
from computelease.auth import service as auth
from computelease.auth.core import SYSTEM, Role

PASSWORD = "demo-password-123"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


def login(client: TestClient, db, username: str, role: Role, **scope) -> None:
    with db.transaction("test") as s:
        auth.create_user(s, username=username, password=PASSWORD, role=role, **scope)
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_operator_previews_then_records_a_plan(client: TestClient, db, world, small) -> None:
    login(client, db, "op", Role.operator)
    html = client.get("/occupancy").text
    assert 'id="trend"' in html and "Plotly.newPlot" in html and "qy-1" in html
    assert "nvidia-h100-sxm" in html  # the by-model table
    token = csrf_of(html)
    assert client.post("/occupancy/plan", data={}).status_code == 403  # no CSRF token
    preview = client.post("/occupancy/plan", data={"csrf_token": token})
    # The contracts run through 2026, so planning from now allocates both of them.
    assert preview.status_code == 200 and 'data-preview="assignments"' in preview.text
    assert 'name="confirm" value="1"' in preview.text
    assert client.get("/api/v1/allocations", headers=world.headers("admin")).json()["total"] == 0
    done = client.post("/occupancy/plan", data={"csrf_token": token, "confirm": "1"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/occupancy?planned=2"
    assert client.get("/api/v1/allocations", headers=world.headers("admin")).json()["total"] == 2

    page = client.get(f"/contracts/{small.contract_a.id}").text
    assert 'data-placeholder="nodes"' in page and "/fleet/nodes/" in page
    node_id = next(
        a["node_id"]
        for a in client.get("/api/v1/allocations", headers=world.headers("admin")).json()["items"]
        if a["contract_id"] == small.contract_a.id
    )
    page = client.get(f"/fleet/nodes/{node_id}").text
    assert f'href="/contracts/{small.contract_a.id}"' in page and "Contract A own" in page


def test_customer_sees_its_serving_nodes_but_no_occupancy_page(client: TestClient, db, world, small) -> None:
    with db.transaction("test") as s:
        from datetime import UTC, datetime

        service.plan(s, SYSTEM, as_of=datetime(2026, 1, 1, tzinfo=UTC))
    login(client, db, "ca", Role.customer, customer_id=world.customer_a.id)
    assert client.get("/occupancy").status_code == 403
    page = client.get(f"/contracts/{small.contract_a.id}").text
    assert "/fleet/nodes/" in page and "FOREIGN-TO-A" not in page
    assert client.get(f"/contracts/{small.contract_b.id}").status_code == 404


def test_an_empty_fleet_has_an_occupancy_page_not_an_error(client: TestClient, db) -> None:
    # Day one of a new install: no node yet. The trend has no figure for any day, and says so.
    login(client, db, "op", Role.operator)
    r = client.get("/occupancy")
    assert r.status_code == 200 and 'id="trend"' in r.text
    with db.transaction("test") as s:
        days = service.daily_occupancy(s, SYSTEM, 3)
    assert [v for _, v in days] == [None, None, None]
