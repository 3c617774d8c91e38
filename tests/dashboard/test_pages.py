"""The dashboard page for each person: every figure links to the page it comes from."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from tests.sla.conftest import served_contract

from computelease.auth import service as auth
from computelease.auth.core import Role

PASSWORD = "demo-password-123"


def login(client: TestClient, db, username: str, role: Role, **scope) -> str:
    with db.transaction("test") as s:
        auth.create_user(s, username=username, password=PASSWORD, role=role, **scope)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 200
    return r.text


def test_the_operator_sees_fleet_contracts_revenue_and_incidents(client: TestClient, db, world) -> None:
    with db.transaction("test") as s:
        served = served_contract(s, world.customer_a.id)
    html = login(client, db, "op", Role.operator)
    assert 'data-figure="gpus_in_service"' in html and 'id="trend"' in html and "Plotly.newPlot" in html
    assert 'data-table="fleet"' in html and 'href="/fleet?state=in_service"' in html
    row = re.search(rf'<tr class="[^"]*" data-contract="{served.contract_id}" data-standing="(\w+)">', html)
    assert row and row.group(1) in {"ok", "at_risk", "below_target", "breached"}
    assert f'href="/contracts/{served.contract_id}/sla?period=' in html
    assert 'data-table="revenue"' in html and 'data-table="lease-dues"' not in html  # no lease yet
    assert "Customer A own" in html  # the customer column


def test_a_customer_sees_its_contracts_and_nothing_of_the_fleet(client: TestClient, db, world) -> None:
    with db.transaction("test") as s:
        served = served_contract(s, world.customer_a.id)
    html = login(client, db, "cust", Role.customer, customer_id=world.customer_a.id)
    assert "data-organisation>Customer A own<" in html
    assert f'data-contract="{served.contract_id}"' in html
    for staff_only in ('data-table="fleet"', 'id="trend"', 'data-table="revenue"', 'data-table="incidents"'):
        assert staff_only not in html


def test_a_lessor_sees_its_leases(client: TestClient, db, world, matrix_world) -> None:
    html = login(client, db, "les", Role.lessor, lessor_id=world.lessor_y.id)
    assert 'data-table="leases"' in html and "LEASE-Y-FOREIGN-TO-X" in html
    assert 'data-table="contracts"' not in html and 'data-table="fleet"' not in html
    other = TestClient(client.app)
    html_x = login(other, db, "les-x", Role.lessor, lessor_id=world.lessor_x.id)
    assert "LEASE-Y-FOREIGN-TO-X" not in html_x and "No open leases." in html_x


def test_the_contracts_table_exports_as_csv_to_its_owner_only(client: TestClient, db, world) -> None:
    with db.transaction("test") as s:
        served = served_contract(s, world.customer_a.id)
    login(client, db, "op", Role.operator)
    r = client.get("/dashboard/contracts.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    header, row = r.text.lstrip("\ufeff").splitlines()[:2]
    assert header.startswith("contract_id,contract,customer,period") and row.startswith(
        f"{served.contract_id},"
    )
    other = TestClient(client.app)
    login(other, db, "cust-b", Role.customer, customer_id=world.customer_b.id)
    assert other.get("/dashboard/contracts.csv").text.lstrip("\ufeff").splitlines()[1:] == []
