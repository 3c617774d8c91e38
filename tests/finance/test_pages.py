"""The finance web pages: a lessor's login sees only its own leases and credit lines; the quote form;
the lease page with instalment status; CSV exports; CSRF on every form."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from computelease.auth import core as auth_core
from computelease.auth import service as auth
from computelease.auth.core import Role

PASSWORD = "finance-password-1"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


@pytest.fixture
def login(db, world, monkeypatch):
    """Logs the client in as a new user of the role. Argon2 runs with light parameters here: these tests
    are about finance pages, and the real cost is the auth tests' business."""
    monkeypatch.setattr(auth_core, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    scopes = {
        "op": {"role": Role.operator},
        "les": {"role": Role.lessor, "lessor_id": world.lessor_x.id},
        "cust": {"role": Role.customer, "customer_id": world.customer_a.id},
    }

    def as_(api: TestClient, username: str) -> None:
        with db.transaction("test") as s:
            auth.create_user(s, username=username, password=PASSWORD, **scopes[username])
        token = csrf_of(api.get("/login").text)
        r = api.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
            follow_redirects=False,
        )
        assert r.status_code == 303

    return as_


def test_a_lessor_sees_only_its_own_and_a_customer_none(api: TestClient, world, books, login) -> None:
    login(api, "les")
    html = api.get("/leases").text
    assert "LX-1" in html and "Lessee X own" in html and "FOREIGN" not in html
    assert f'href="/leases/{books.lease_x}"' in html and f'href="/leases/{books.lease_y}"' not in html
    assert api.get(f"/leases/{books.lease_y}").status_code == 404
    assert api.get(f"/leases/{books.lease_y}/instalments.csv").status_code == 404
    csv_text = api.get("/leases.csv").text
    assert "LX-1" in csv_text and "LY-1" not in csv_text
    html = api.get("/credit-lines").text
    assert "Line X own" in html and "FOREIGN" not in html
    assert "FOREIGN" not in api.get("/credit-lines.csv").text
    # A lessor watches; it does not record payments.
    page = api.get(f"/leases/{books.lease_x}").text
    assert "Record a payment" not in page
    r = api.post(
        f"/leases/{books.lease_x}/payments",
        data={"csrf_token": csrf_of(page), "paid_on": "2025-02-15", "amount": "1"},
    )
    assert r.status_code == 403

    # A customer's login: no lease, no credit line, no quote.
    login(api, "cust")
    html = api.get("/leases").text
    assert "LX-1" not in html and "LY-1" not in html and "No leases to show." in html
    assert api.get(f"/leases/{books.lease_x}").status_code == 404
    assert "Line X own" not in api.get("/credit-lines").text
    assert api.get("/leases/quote").status_code == 403


def test_lease_page_shows_status_and_records_a_payment(api: TestClient, world, books, login) -> None:
    login(api, "op")
    html = api.get(f"/leases/{books.lease_x}?as_of=2025-03-20").text
    rows = dict(re.findall(r'data-period="(\d+)" data-status="(\w+)"', html))
    assert (rows["1"], rows["2"], rows["3"]) == ("overdue", "overdue", "due") and len(rows) == 12
    assert "¥1,200,000.00" in html and "H1" in html and 'href="/fleet/nodes/' in html
    assert "33" in html  # days overdue of rent 1 (2025-02-15 to 2025-03-20)
    # Payment through the form, with its CSRF token; a form without it is refused.
    r = api.post(f"/leases/{books.lease_x}/payments", data={"paid_on": "2025-02-15", "amount": "103279.72"})
    assert r.status_code == 403
    r = api.post(
        f"/leases/{books.lease_x}/payments",
        data={
            "csrf_token": csrf_of(html),
            "paid_on": "2025-02-15",
            "amount": "103279.72",
            "reference": "BANK-1",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    html = api.get(f"/leases/{books.lease_x}?as_of=2025-02-16").text
    assert 'data-period="1" data-status="paid"' in html and "BANK-1" in html
    r = api.post(
        f"/leases/{books.lease_x}/payments",
        data={"csrf_token": csrf_of(html), "paid_on": "2025-02-10", "amount": "5"},
    )
    assert r.status_code == 422 and "date order" in r.text
    csv_text = api.get(f"/leases/{books.lease_x}/instalments.csv?as_of=2025-02-16").text
    assert (
        csv_text.startswith("\ufeffperiod,due_date")
        and "\n1,2025-02-15," in csv_text
        and ",paid," in csv_text
    )
    assert "BANK-1" in api.get(f"/leases/{books.lease_x}/payments.csv").text


def test_quote_form_table_chart_and_bad_terms(api: TestClient, world, login) -> None:
    login(api, "les")
    form = api.get("/leases/quote").text
    token = csrf_of(form)
    names = "principal annual_rate months start frequency method timing grace_months balloon purchase_option"
    for name in (*names.split(), "fee_rate", "deposit_rate", "deposit_use", "kind", "day_count"):
        assert f'name="{name}"' in form, name
    data = {
        "csrf_token": token,
        "principal": "1000000",
        "annual_rate": "0.06",
        "months": "36",
        "start": "2025-01-15",
    }
    html = api.post("/leases/quote", data=data).text
    assert html.count('<tr><td class="num">') == 36 and "¥30,421.94" in html
    assert '<script src="/static/vendor/plotly.min.js">' in html and 'Plotly.newPlot("schedule-chart"' in html
    r = api.post("/leases/quote", data=data | {"balloon": "2000000"})
    assert r.status_code == 422 and "balloon: " in r.text and 'class="bad"' in r.text
    assert api.post("/leases/quote", data=data | {"csrf_token": "forged"}).status_code == 403
    r = api.post("/leases/quote.csv", data=data)
    assert (
        r.headers["content-type"].startswith("text/csv") and "\n1,2025-02-15,1000000.00,30421.94," in r.text
    )


def test_a_node_page_names_the_lease_it_secures(api: TestClient, world, books, login) -> None:
    login(api, "op")
    html = api.get(f"/fleet/nodes/{books.nodes['H1']}").text
    assert (
        'data-table="financing"' in html
        and f'href="/leases/{books.lease_x}"' in html
        and "Direct lease" in html
    )
    assert "LY-1" not in html  # H2's lease, not H1's
    bare = api.get(f"/fleet/nodes/{books.nodes['H3']}").text
    assert 'data-placeholder="financing"' in bare and "no lease is secured by this node" in bare

    lessor = TestClient(api.app)
    login(lessor, "les")
    assert f'href="/leases/{books.lease_x}"' in lessor.get(f"/fleet/nodes/{books.nodes['H1']}").text
    assert lessor.get(f"/fleet/nodes/{books.nodes['H2']}").status_code == 404  # lessor Y's collateral
