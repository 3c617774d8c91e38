"""The billing web pages: invoice list and detail (printable, with the fapiao data), the month close
form, ageing and payments; a customer's login sees only its own, a lessor's none; forms carry the CSRF
token and bad input is a message on the page with a 4xx, never a 500."""

from __future__ import annotations

import io
import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from tests.billing.conftest import NOV_2

from computelease.auth import core as auth_core
from computelease.auth import service as auth
from computelease.auth.core import SYSTEM, Role
from computelease.billing import pages, service

PASSWORD = "billing-password-1"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


@pytest.fixture
def login(db, world, monkeypatch):
    """Logs the client in as a new user of the role (Argon2 with light parameters: these tests are about
    billing pages)."""
    monkeypatch.setattr(auth_core, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    scopes = {
        "op": {"role": Role.operator},
        "cust_a": {"role": Role.customer, "customer_id": world.customer_a.id},
        "cust_b": {"role": Role.customer, "customer_id": world.customer_b.id},
        "les": {"role": Role.lessor, "lessor_id": world.lessor_x.id},
    }
    made: set[str] = set()

    def as_(client: TestClient, username: str) -> str:
        if username not in made:
            with db.transaction("test") as s:
                auth.create_user(s, username=username, password=PASSWORD, **scopes[username])
            made.add(username)
        token = csrf_of(client.get("/login").text)
        r = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        return csrf_of(client.get("/billing/invoices").text) if username != "les" else ""

    return as_


def closed(db, **kw) -> int:
    """October closed (as on 2 November); the invoice's id."""
    with db.transaction(actor="test") as s:
        service.close(s, SYSTEM, "2026-10", now=NOV_2, **kw)
        return s.scalars(service.readable_invoices(SYSTEM)).one().id


def test_operator_closes_a_month_through_the_form(client: TestClient, db, world, served, login) -> None:
    anonymous = client.get("/billing/invoices", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    token = login(client, "op")
    html = client.get("/billing/invoices").text
    assert "No invoices to show." in html and 'action="/billing/close"' in html
    previous = pages._months_before(pages._today(), 1)[0]
    assert f'<option value="{previous}" selected>' in html  # the close defaults to last month
    assert 'name="draft"' in html and 'href="/billing/invoices.csv?' in html

    form = {"period": "2026-10", "action": "close"}
    assert client.post("/billing/close", data=form).status_code == 403  # no CSRF token
    assert client.post("/billing/close", data=form | {"csrf_token": "forged"}).status_code == 403

    preview = client.post("/billing/close", data=form | {"csrf_token": token, "action": "preview"})
    assert preview.status_code == 200 and 'data-preview="close"' in preview.text
    assert "¥63,000.00" in preview.text and "No invoices to show." in preview.text  # nothing stored

    done = client.post("/billing/close", data=form | {"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/billing/invoices?period=2026-10"
    html = client.get(done.headers["location"]).text
    assert 'data-flash="close"' in html and "created: 1" in html and "¥63,000.00" in html
    assert "CL-2026-000001" in html and "Customer A own" in html and 'data-status="finalized"' in html
    assert 'data-flash="close"' not in client.get("/billing/invoices").text  # shown once

    again = client.post("/billing/close", data=form | {"csrf_token": token})
    assert again.status_code == 200 and "unchanged: 1" in again.text and "created: 0" in again.text

    bad = client.post("/billing/close", data={"csrf_token": token, "period": "2026-13", "action": "close"})
    assert bad.status_code == 422 and "must be a month written YYYY-MM" in bad.text

    # Status as of a later day: overdue in red; filters that match nothing; a bad filter is a message.
    late = client.get("/billing/invoices?status=overdue&as_of=2026-12-02").text
    assert 'class="overdue" data-invoice=' in late and 'class="badge overdue"' in late
    assert "No invoices to show." in client.get("/billing/invoices?status=paid").text
    wrong = client.get("/billing/invoices?status=bogus&period=2026-99")
    assert wrong.status_code == 422 and "bogus" in wrong.text and "2026-99" in wrong.text

    csv_text = client.get("/billing/invoices.csv?period=2026-10").text
    assert csv_text.startswith("\ufeffnumber,kind,status") and "CL-2026-000001" in csv_text
    xlsx = client.get("/billing/invoices.xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["A2"].value == "CL-2026-000001"


def test_a_customer_sees_its_own_invoice_with_lines_and_sla_credit(
    client: TestClient, db, world, served, login
) -> None:
    invoice_id = closed(db)
    login(client, "cust_a")
    html = client.get("/billing/invoices").text
    assert f'href="/billing/invoices/{invoice_id}"' in html and "CL-2026-000001" in html
    assert 'action="/billing/close"' not in html and 'value="draft"' not in html
    page = client.get(f"/billing/invoices/{invoice_id}")
    assert page.status_code == 200
    detail = page.text
    assert 'data-line="compute"' in detail and 'data-line="sla_credit"' in detail
    assert "¥70,000.00" in detail and "-¥7,000.00" in detail and "¥63,000.00" in detail
    assert f'href="/contracts/{served.contract_id}/sla?period=2026-10"' in detail
    assert "99.8319" in detail and "6%" in detail
    assert f'href="/contracts/{served.contract_id}"' in detail
    assert 'id="fapiao"' in detail and "*信息技术服务*算力服务费" in detail
    assert "window.print()" in detail and "@media print" in detail
    assert "Issue credit note" not in detail and "/finalize" not in detail  # staff only
    r = client.post(
        f"/billing/invoices/{invoice_id}/credit-note",
        data={"csrf_token": csrf_of(detail), "amount": "1", "reason": "x"},
    )
    assert r.status_code == 403
    assert "CL-2026-000001" in client.get("/billing/invoices.csv").text

    # Customer B: nothing of A's, and A's invoice does not exist for it.
    login(client, "cust_b")
    assert "CL-2026-000001" not in client.get("/billing/invoices").text
    assert client.get(f"/billing/invoices/{invoice_id}").status_code == 404
    assert "CL-2026-000001" not in client.get("/billing/invoices.csv").text
    assert "Customer A own" not in client.get("/billing/ageing?as_of=2026-12-15").text

    # A lessor has no billing.
    login(client, "les")
    for path in (
        "/billing/invoices",
        f"/billing/invoices/{invoice_id}",
        "/billing/ageing",
        "/billing/payments",
    ):
        assert client.get(path).status_code == 403, path


def test_staff_finalize_credit_note_and_void_with_errors_inline(
    client: TestClient, db, world, served, login
) -> None:
    token = login(client, "op")
    r = client.post(
        "/billing/close", data={"csrf_token": token, "period": "2026-10", "draft": "1", "action": "close"}
    )
    assert r.status_code == 200 and "new invoices left as drafts" in r.text
    with db.transaction("test") as s:
        invoice_id = s.scalars(service.readable_invoices(SYSTEM)).one().id
    draft = client.get(f"/billing/invoices/{invoice_id}").text
    assert 'data-status="draft"' in draft and f"/billing/invoices/{invoice_id}/finalize" in draft
    # A customer never sees a draft.
    r = client.post(f"/billing/invoices/{invoice_id}/finalize", follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = client.post(
        f"/billing/invoices/{invoice_id}/finalize", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/billing/invoices/{invoice_id}"
    page = client.get(f"/billing/invoices/{invoice_id}").text
    assert "CL-2026-000001" in page and 'data-status="finalized"' in page
    again = client.post(f"/billing/invoices/{invoice_id}/finalize", data={"csrf_token": token})
    assert again.status_code == 409 and "not a draft" in again.text

    url = f"/billing/invoices/{invoice_id}/credit-note"
    negative = client.post(url, data={"csrf_token": token, "amount": "-5", "reason": "goodwill"})
    assert negative.status_code == 422 and "amount" in negative.text and 'role="alert"' in negative.text
    words = client.post(url, data={"csrf_token": token, "amount": "lots", "reason": "goodwill"})
    assert words.status_code == 422
    too_much = client.post(url, data={"csrf_token": token, "amount": "99999.00", "reason": "goodwill"})
    assert too_much.status_code == 422 and "exceeds" in too_much.text
    no_reason = client.post(url, data={"csrf_token": token, "amount": "10.00"})
    assert no_reason.status_code == 422
    made = client.post(
        url, data={"csrf_token": token, "amount": "1060.00", "reason": "goodwill"}, follow_redirects=False
    )
    assert made.status_code == 303
    note = client.get(made.headers["location"]).text
    assert "CL-CN-2026-000001" in note and 'data-kind="credit_note"' in note
    assert f'href="/billing/invoices/{invoice_id}" data-link="corrects"' in note and "Red-letter" in note
    original = client.get(f"/billing/invoices/{invoice_id}").text
    assert 'id="related"' in original and "CL-CN-2026-000001" in original and "goodwill" in original
    assert 'data-figure="balance">¥61,940.00' in original

    # Something was credited against it: a void is refused, on the page.
    void = client.post(f"/billing/invoices/{invoice_id}/void", data={"csrf_token": token, "reason": "wrong"})
    assert void.status_code == 409 and "credit note" in void.text
    empty = client.post(f"/billing/invoices/{invoice_id}/void", data={"csrf_token": token, "reason": ""})
    assert empty.status_code == 422
    assert client.get("/billing/invoices/999999").status_code == 404
    assert (
        client.post("/billing/invoices/999999/void", data={"csrf_token": token, "reason": "x"}).status_code
        == 404
    )


def test_ageing_page_and_exports(client: TestClient, db, world, served, login) -> None:
    closed(db)
    login(client, "op")
    html = client.get("/billing/ageing?as_of=2026-12-15").text
    row = re.search(rf'<tr data-customer="{world.customer_a.id}" data-currency="CNY".*?</tr>', html, re.S)
    assert row, html
    assert 'data-bucket="1-30">¥63,000.00' in row.group(0)
    assert 'data-flag="over-limit"' in row.group(0)  # the limit is ¥1,000
    assert "1–30 days" in html and "Over 90 days" in html
    bad = client.get("/billing/ageing?as_of=someday")
    assert bad.status_code == 422 and "someday" in bad.text
    csv_text = client.get("/billing/ageing.csv?as_of=2026-12-15").text
    assert csv_text.startswith("\ufeffcustomer,currency,current,1-30") and "63000.00" in csv_text
    assert client.get("/billing/ageing.xlsx?as_of=2026-12-15").status_code == 200
    # The customer sees its own row, and only it.
    login(client, "cust_a")
    own = client.get("/billing/ageing?as_of=2026-12-15").text
    assert "Customer A own" in own and own.count("<tr data-customer=") == 1


def test_payment_form_records_and_refuses_bad_input(client: TestClient, db, world, served, login) -> None:
    invoice_id = closed(db)
    token = login(client, "op")
    html = client.get("/billing/payments").text
    assert "No payments recorded." in html and 'action="/billing/payments"' in html
    form = {
        "customer_id": str(world.customer_a.id),
        "amount": "30,000.00",
        "currency": "CNY",
        "received_on": "2026-11-20",
        "reference": "ICBC-20261120-01",
        "invoice_ids": "CL-2026-000001",
    }
    assert client.post("/billing/payments", data=form).status_code == 403  # no CSRF token

    negative = client.post("/billing/payments", data=form | {"csrf_token": token, "amount": "-5"})
    assert negative.status_code == 422 and "amount" in negative.text and 'role="alert"' in negative.text
    assert 'value="ICBC-20261120-01"' in negative.text  # the form keeps what was typed
    unknown = client.post("/billing/payments", data=form | {"csrf_token": token, "invoice_ids": "CL-1999-9"})
    assert unknown.status_code == 422 and "CL-1999-9" in unknown.text
    not_open = client.post("/billing/payments", data=form | {"csrf_token": token, "invoice_ids": "999999"})
    assert not_open.status_code == 422 and "999999" in not_open.text
    nobody = client.post("/billing/payments", data=form | {"csrf_token": token, "customer_id": "999999"})
    assert nobody.status_code == 422
    no_date = client.post("/billing/payments", data=form | {"csrf_token": token, "received_on": "soon"})
    assert no_date.status_code == 422

    done = client.post("/billing/payments", data=form | {"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/billing/payments"
    html = client.get("/billing/payments").text
    assert 'data-flash="payment"' in html and "ICBC-20261120-01" in html and "¥30,000.00" in html
    assert f'href="/billing/invoices/{invoice_id}">CL-2026-000001</a>' in html
    resend = client.post("/billing/payments", data=form | {"csrf_token": token}, follow_redirects=True)
    assert "already recorded" in resend.text
    clash = client.post("/billing/payments", data=form | {"csrf_token": token, "amount": "1.00"})
    assert clash.status_code == 409 and "already recorded" in clash.text

    detail = client.get(f"/billing/invoices/{invoice_id}").text
    assert 'id="applied"' in detail and "ICBC-20261120-01" in detail
    assert 'data-figure="balance">¥33,000.00' in detail and 'data-status="partially_paid"' in detail

    # The customer sees its payment but records none; customer B sees none.
    login(client, "cust_a")
    html = client.get("/billing/payments").text
    assert "ICBC-20261120-01" in html and "Record a payment" not in html
    r = client.post("/billing/payments", data=form | {"csrf_token": csrf_of(html), "reference": "X-2"})
    assert r.status_code == 403
    login(client, "cust_b")
    assert "ICBC-20261120-01" not in client.get("/billing/payments").text
