"""The scenario pages and the exposure page: pick an example, upload (with CSRF), run, see the charts and
download Excel; customers and lessors never see scenarios; a lessor sees only its own lease's exposure."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from computelease.auth import core as auth_core
from computelease.auth import service as auth
from computelease.auth.core import Role

PASSWORD = "economics-password-1"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


@pytest.fixture
def login(db, world, monkeypatch):
    monkeypatch.setattr(auth_core, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    scopes = {
        "op": {"role": Role.operator},
        "les": {"role": Role.lessor, "lessor_id": world.lessor_x.id},
        "cust": {"role": Role.customer, "customer_id": world.customer_a.id},
    }

    def as_(client: TestClient, username: str) -> None:
        with db.transaction("test") as s:
            auth.create_user(s, username=username, password=PASSWORD, **scopes[username])
        token = csrf_of(client.get("/login").text)
        r = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
            follow_redirects=False,
        )
        assert r.status_code == 303

    return as_


def test_pick_run_and_download(client: TestClient, login) -> None:
    login(client, "op")
    page = client.get("/scenarios")
    assert page.status_code == 200 and 'data-example="lianhua_zixing"' in page.text
    token = csrf_of(page.text)
    assert client.post("/scenarios", data={"example": "qingyun_sale_leaseback"}).status_code == 403  # no CSRF
    r = client.post(
        "/scenarios", data={"example": "qingyun_sale_leaseback", "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    url = r.headers["location"]
    sid = int(url.rsplit("/", 1)[1])
    html = client.get(url).text
    assert "青云-like" in html and 'id="run"' in html and "chart-cash" not in html
    r = client.post(
        f"/scenarios/{sid}/runs",
        data={"paths": "1000", "seed": "3", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    html = client.get(r.headers["location"]).text
    for marker in (
        'id="chart-cash"',
        'id="routes"',
        'data-route="sale_leaseback"',
        'id="chart-npv"',
        'id="pnl"',
    ):
        assert marker in html, marker
    assert "¥" in html and "/static/vendor/plotly.min.js" in html
    m = re.search(r'href="(/scenarios/\d+/runs/\d+/workbook\.xlsx)"', html)
    assert m
    xlsx = client.get(m.group(1))
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    yaml_file = client.get(f"/scenarios/{sid}/scenario.yaml")
    assert yaml_file.status_code == 200 and "sale_leaseback" in yaml_file.text


def test_upload_shows_every_problem(client: TestClient, login) -> None:
    login(client, "op")
    token = csrf_of(client.get("/scenarios").text)
    r = client.post(
        "/scenarios",
        data={"csrf_token": token},
        files={"file": ("bad.yaml", b"name: x\nstart: 2025-01-02\nhorizon_months: 0\n", "application/yaml")},
    )
    assert r.status_code == 422
    assert "horizon_months: must be at least 1" in r.text and "fleet: is required" in r.text


def test_customers_and_lessors_see_no_scenarios(client: TestClient, login) -> None:
    for who in ("cust", "les"):
        login(client, who)
        assert client.get("/scenarios").status_code == 403


def test_exposure_page(client: TestClient, login, leased, no_billing) -> None:
    login(client, "les")
    html = client.get(f"/leases/{leased.lease_x}/exposure?as_of=2026-03-31").text
    assert "LX-1" in html and 'data-basis="contracted"' in html and "chart-ltv" in html
    assert 'data-node="' in html and "N1" in html and "N3" not in html
    assert client.get(f"/leases/{leased.lease_y}/exposure").status_code == 404
    login(client, "cust")
    assert client.get(f"/leases/{leased.lease_x}/exposure").status_code == 403


def test_early_warning_lists_only_the_lessors_own_leases(client: TestClient, world, login, leased) -> None:
    api = client.get(
        "/api/v1/lease-exposures", params={"as_of": "2026-03-31"}, headers=world.headers("lessor_x")
    )
    assert [x["lease_id"] for x in api.json()] == [leased.lease_x]
    everyone = client.get("/api/v1/lease-exposures", headers=world.headers("operator")).json()
    assert {x["lease_id"] for x in everyone} == {leased.lease_x, leased.lease_y}
    assert client.get("/api/v1/lease-exposures", headers=world.headers("customer_a")).status_code == 403
    login(client, "les")
    html = client.get("/lease-exposures?as_of=2026-03-31").text
    assert f'data-lease="{leased.lease_x}"' in html and f'data-lease="{leased.lease_y}"' not in html
