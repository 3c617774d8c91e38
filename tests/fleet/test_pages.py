"""Fleet pages: what operators see and change, and that others see none of it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from computelease.auth import service as auth
from computelease.auth.core import Role

PASSWORD = "demo-password-123"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch) -> None:
    """Argon2 at its real cost is most of a page test's time; what is tested here is the fleet."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("computelease.auth.core._hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


def login(client: TestClient, username: str) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303


@pytest.fixture
def op(client: TestClient, db, world, fleet) -> TestClient:
    with db.transaction("test") as s:
        auth.create_user(s, username="op", password=PASSWORD, role=Role.operator)
    login(client, "op")
    return client


class TestOperator:
    def test_pages(self, op: TestClient, fleet) -> None:
        html = op.get("/fleet").text
        assert all(f">{s}</a>" in html for s in ("N1", "N2", "N3", "S1"))
        assert 'data-state="faulty">1<' in html and 'href="/fleet/nodes.csv"' in html
        html = op.get("/fleet?state=faulty").text
        assert ">N2</a>" in html and ">N1</a>" not in html
        assert 'href="/fleet/nodes.csv?state=faulty"' in html
        assert "¥2,300,000.00" in html
        csv = op.get("/fleet/nodes.csv?state=faulty")
        assert csv.headers["content-type"].startswith("text/csv") and csv.content.count(b"\r\n") == 2

        self.node_page_shows_lifecycle_gpus_and_labelled_placeholders(op, fleet)
        self.sites(op, fleet)

    def node_page_shows_lifecycle_gpus_and_labelled_placeholders(self, op: TestClient, fleet) -> None:
        html = op.get(f"/fleet/nodes/{fleet.nodes['N1']}").text
        assert "GPU-n1-7" in html and 'id="timeline"' in html and "Plotly.newPlot" in html
        assert "entered the fleet" in html  # each event shows its reason
        for section in ("acceptance", "allocations", "financing"):
            assert f'data-placeholder="{section}"' in html
        assert html.count("Empty:") == 3
        # Only the moves the lifecycle allows are offered.
        offered = re.findall(r'<option value="(\w+)">', html.split('name="to"')[1].split("</select>")[0])
        assert offered == ["faulty", "repair", "maintenance", "retired", "sold"]

    def test_forms(self, op: TestClient, fleet) -> None:
        self.state_change_form(op, fleet)
        self.add_a_node_form(op, fleet)

    def state_change_form(self, op: TestClient, fleet) -> None:
        url = f"/fleet/nodes/{fleet.nodes['N1']}"
        token = csrf_of(op.get(url).text)
        assert op.post(f"{url}/transition", data={"to": "maintenance"}).status_code == 403  # no CSRF token
        r = op.post(
            f"{url}/transition",
            data={"to": "maintenance", "reason": "firmware", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == url
        assert 'data-state="maintenance"' in op.get(url).text
        r = op.post(f"{url}/transition", data={"to": "sold", "csrf_token": token})
        assert r.status_code == 409 and "it cannot move to sold" in r.text and "in_service" in r.text
        assert 'data-state="maintenance"' in r.text

    def add_a_node_form(self, op: TestClient, fleet) -> None:
        token = csrf_of(op.get("/fleet/nodes/new").text)
        form = {
            "serial": "WEB-1",
            "sku_id": "nvidia-hgx-h800-8gpu",
            "site_id": str(fleet.own),
            "rack_id": str(fleet.racks["A02"]),
            "fabric": "ib-c",
            "purchase_cost": "2,200,000.00",
            "currency": "CNY",
            "purchase_date": "2025-04-01",
            "state": "delivered",
            "state_since": "2025-04-20T10:00",
            "csrf_token": token,
        }
        r = op.post("/fleet/nodes/new", data=form, follow_redirects=False)
        assert r.status_code == 303, r.text
        html = op.get(r.headers["location"]).text
        assert "WEB-1" in html and "¥2,200,000.00" in html and "2025-04-20 10:00" in html  # site time
        r = op.post("/fleet/nodes/new", data=form | {"purchase_cost": ""})
        assert r.status_code == 422 and "purchase_cost" in r.text and 'value="WEB-1"' in r.text
        r = op.post("/fleet/nodes/new", data=form)
        assert r.status_code == 409 and "already has the serial" in r.text

    def sites(self, op: TestClient, fleet) -> None:
        html = op.get("/sites").text
        assert "庆阳智算中心 qy-1" in html and "上海临港IDC" in html and "¥9,000.00" in html
        assert 'href="/sites.csv"' in html
        csv = op.get("/sites.csv").content.decode("utf-8-sig")
        row = "qy-1,庆阳智算中心 qy-1,own_center,庆阳,1.200,0.3512,0.00,CNY,Asia/Shanghai,2,3,1"
        assert f"\r\n{row}\r\n" in csv
        html = op.get(f"/sites/{fleet.own}").text
        assert "A01" in html and "12.4" in html  # two 8×H100 nodes at the catalog's typical 6.2 kW


@pytest.fixture
def customer(client: TestClient, db, world, fleet) -> TestClient:
    with db.transaction("test") as s:
        auth.create_user(
            s, username="cust", password=PASSWORD, role=Role.customer, customer_id=world.customer_a.id
        )
    login(client, "cust")
    return client


def test_a_customer_sees_no_fleet(customer: TestClient, fleet) -> None:
    html = customer.get("/fleet").text
    assert "No nodes to show." in html and "N1" not in html
    assert customer.get("/fleet/nodes.csv").content.count(b"\r\n") == 1
    assert customer.get(f"/fleet/nodes/{fleet.nodes['N1']}").status_code == 404
    assert customer.get(f"/sites/{fleet.own}").status_code == 404
    assert "qy-1" not in customer.get("/sites").text
    assert customer.get("/fleet/nodes/new").status_code == 403
