"""Customer and contract pages: scoped like the API, forms with CSRF, money and capacity shown right."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from computelease.auth import service as auth
from computelease.auth.core import Role

PASSWORD = "demo-password-123"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


@pytest.fixture
def login(client: TestClient, db, world):
    with db.transaction("test") as s:
        auth.create_user(s, username="op", password=PASSWORD, role=Role.operator)
        auth.create_user(
            s, username="cust", password=PASSWORD, role=Role.customer, customer_id=world.customer_a.id
        )

    def as_(username: str) -> TestClient:
        token = csrf_of(client.get("/login").text)
        r = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        return client

    return as_


def main(html: str) -> str:
    return html.split("<main>")[1].split("</main>")[0]


def contract_form(client: TestClient, customer_id: int, **overrides: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf_of(client.get("/contracts/new").text),
        "name": "Flagship via form",
        "customer_id": str(customer_id),
        "capacity_unit": "pflops",
        "capacity": "154.5",
        "precision": "bf16",
        "placement": "same_fabric",
        "accelerator_model": "nvidia-h100-sxm",
        "min_memory_gb": "",
        "min_tflops": "",
        "min_tflops_precision": "bf16",
        "start_date": "2025-03-01",
        "end_date": "2030-02-28",
        "timezone": "Asia/Shanghai",
        "pricing": "per_pflops_month",
        "price": "5000",
        "om_monthly_fee": "152500",
        "deposit": "0",
        "prepayment": "0",
        "payment_terms_days": "30",
        "currency": "CNY",
        "sla_policy_id": "",
        "notes": "",
    }
    form.update(overrides)
    return form


class TestOperator:
    def test_create_view_edit_and_sign_through_the_forms(self, login, world) -> None:
        client = login("op")
        r = client.post(
            "/contracts/new", data=contract_form(client, world.customer_a.id), follow_redirects=False
        )
        assert r.status_code == 303, r.text
        url = r.headers["location"]
        page = main(client.get(url).text)
        assert "Flagship via form" in page and 'data-status="draft"' in page
        assert "¥55,500,000.00" in page and "¥55.5M" in page  # exact to the fen, and readable
        assert "154.5 PFLOPS BF16" in page and "nvidia-h100-sxm: 157 GPUs · 20 nodes" in page
        assert "Per PFLOPS-month: ¥5,000.00" in page and "60 months" in page
        for placeholder in ("capacity-per-day", "nodes", "sla-by-month", "invoices"):
            assert f'data-placeholder="{placeholder}"' in page
        assert page.count('class="empty">Empty:') == 4

        edit = client.get(f"{url}/edit").text
        assert 'value="154.5000"' in edit and "disabled" not in main(edit)
        form = contract_form(client, world.customer_a.id, price="4000", csrf_token=csrf_of(edit))
        assert client.post(f"{url}/edit", data=form, follow_redirects=False).status_code == 303
        assert "¥46,230,000.00" in client.get(url).text  # 60 × (154.5 × 4,000 + 152,500)

        token = csrf_of(client.get(url).text)
        r = client.post(f"{url}/transition", data={"csrf_token": token, "to": "signed", "reason": "ink"})
        assert r.status_code == 200 and 'data-status="signed"' in r.text and "Draft → Signed" in r.text
        locked = client.get(f"{url}/edit").text
        assert (
            "Only the name and notes can change." in locked
            and 'name="price" type="text" value="4000.0000" disabled' in locked
        )

    def test_form_errors_are_shown_not_raised(self, login, world) -> None:
        client = login("op")
        form = contract_form(client, world.customer_a.id, timezone="Asia/Beijing", capacity="")
        r = client.post("/contracts/new", data=form)
        assert r.status_code == 422 and "Please fix the following" in r.text
        assert (
            "&#39;Asia/Beijing&#39; is not an IANA time zone" in r.text
            and "capacity: Field required" in r.text
        )
        assert 'value="Flagship via form"' in r.text  # what was typed is kept
        r = client.post(
            "/contracts/new", data=contract_form(client, world.customer_a.id, accelerator_model="")
        )
        assert r.status_code == 422 and "say which accelerators may serve the contract" in r.text

    def test_illegal_transition_on_the_page(self, login, deals) -> None:
        client = login("op")
        url = f"/contracts/{deals.contract_a.id}"
        r = client.post(
            f"{url}/transition", data={"csrf_token": csrf_of(client.get(url).text), "to": "ended"}
        )
        assert r.status_code == 409 and "a draft contract cannot become ended" in r.text

    def test_forms_need_the_csrf_token(self, login, deals, world) -> None:
        client = login("op")
        r = client.post(
            "/contracts/new", data=contract_form(client, world.customer_a.id, csrf_token="forged")
        )
        assert r.status_code == 403
        r = client.post(f"/contracts/{deals.contract_a.id}/transition", data={"to": "signed"})
        assert r.status_code == 403
        assert 'data-status="draft"' in client.get(f"/contracts/{deals.contract_a.id}").text

    def test_customer_forms_and_detail(self, login, deals, world) -> None:
        client = login("op")
        token = csrf_of(client.get("/customers/new").text)
        form = {
            "csrf_token": token,
            "name": "新客户 (测试)",
            "segment": "research",
            "credit_limit": "12.5",
            "currency": "CNY",
        }
        r = client.post("/customers/new", data=form, follow_redirects=False)
        assert r.status_code == 303
        assert "新客户 (测试)" in client.get(r.headers["location"]).text
        r = client.post("/customers/new", data=form)
        assert r.status_code == 422 and "already exists" in r.text
        url = f"/customers/{world.customer_a.id}"
        edit = {
            "csrf_token": token,
            "name": "Customer A own",
            "segment": "enterprise",
            "credit_limit": "555000000.05",
        }
        assert client.post(f"{url}/edit", data=edit, follow_redirects=False).status_code == 303
        page = main(client.get(url).text)
        assert "¥555,000,000.05" in page and "Enterprise" in page and "Contract A own" in page
        assert "FOREIGN" not in page

    def test_customer_tax_id_set_refused_and_cleared_on_the_form(self, login, world) -> None:
        client = login("op")
        url = f"/customers/{world.customer_a.id}"
        edit = {
            "csrf_token": csrf_of(client.get(f"{url}/edit").text),
            "name": "Customer A own",
            "segment": "enterprise",
            "tax_id": "91110108demx00001p",
        }
        assert client.post(f"{url}/edit", data=edit, follow_redirects=False).status_code == 303
        assert "91110108DEMX00001P" in main(client.get(url).text)
        r = client.post(f"{url}/edit", data=edit | {"tax_id": "91110108DEMX00001Q"})
        assert r.status_code == 422 and "the 18th should be P" in r.text
        assert "91110108DEMX00001P" in main(client.get(url).text)  # the refused edit changed nothing
        cleared = client.post(f"{url}/edit", data=edit | {"tax_id": ""}, follow_redirects=False)
        assert cleared.status_code == 303
        assert "DEMX" not in main(client.get(url).text)

    def test_csv_exports(self, login, deals) -> None:
        client = login("op")
        r = client.get("/contracts.csv")
        assert r.headers["content-type"].startswith("text/csv")
        lines = r.text.lstrip("\ufeff").splitlines()
        assert lines[0].startswith("id,name,customer,status,capacity")
        assert len(lines) == 3 and "840000.00" in lines[1]
        assert 'href="/contracts.csv"' in client.get("/contracts").text
        assert len(client.get("/contracts.csv?status=signed").text.lstrip("\ufeff").splitlines()) == 1


class TestCustomerLogin:
    def test_sees_only_its_own(self, login, deals, world) -> None:
        client = login("cust")
        for page in (
            "/contracts",
            f"/contracts/{deals.contract_a.id}",
            "/customers",
            f"/customers/{world.customer_a.id}",
        ):
            html = main(client.get(page).text)
            assert "Contract A own" in html or "Customer A own" in html, page
            assert "FOREIGN" not in html, page
            assert "/edit" not in html and "New contract" not in html, page
        assert client.get(f"/contracts/{deals.contract_b.id}").status_code == 404
        assert client.get(f"/customers/{world.customer_b.id}").status_code == 404
        assert "FOREIGN" not in client.get("/contracts.csv").text
        assert client.get("/contracts/new").status_code == 403
        token = csrf_of(client.get("/contracts").text)
        r = client.post(
            f"/contracts/{deals.contract_a.id}/transition", data={"csrf_token": token, "to": "signed"}
        )
        assert r.status_code == 403

    def test_chinese(self, login, deals) -> None:
        client = login("cust")
        client.get("/lang/zh_CN")
        html = client.get(f"/contracts/{deals.contract_a.id}").text
        assert "84.00万元" in html and "¥840,000.00" in html
