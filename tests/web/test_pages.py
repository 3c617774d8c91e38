from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from computelease.auth import service
from computelease.auth.core import Role

PASSWORD = "demo-password-123"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


@pytest.fixture
def users(db, world) -> None:
    with db.transaction("test") as s:
        service.create_user(s, username="op", password=PASSWORD, role=Role.operator)
        service.create_user(
            s, username="cust", password=PASSWORD, role=Role.customer, customer_id=world.customer_a.id
        )
        service.create_user(
            s, username="les", password=PASSWORD, role=Role.lessor, lessor_id=world.lessor_x.id
        )


def login(client: TestClient, username: str, password: str = PASSWORD, next_: str = "/"):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )


class TestLogin:
    def test_pages_need_a_login(self, client: TestClient) -> None:
        r = client.get("/customers", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/customers"

    def test_cookie_flags(self, client: TestClient, users) -> None:
        r = login(client, "op")
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.get("/").status_code == 200

    def test_wrong_password(self, client: TestClient, users) -> None:
        r = login(client, "op", "not-the-password")
        assert r.status_code == 200 and "Unknown username or wrong password." in r.text
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_forms_need_the_csrf_token(self, client: TestClient, users) -> None:
        r = client.post("/login", data={"username": "op", "password": PASSWORD, "csrf_token": "forged"})
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
        login(client, "op")
        assert client.post("/logout", data={}).status_code == 403
        assert client.get("/").status_code == 200  # still logged in
        r = client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)}, follow_redirects=False)
        assert r.status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_password_guessing_is_throttled(self, client: TestClient, users) -> None:
        for _ in range(5):
            assert login(client, "op", "guess-guess-guess").status_code == 200
        r = login(client, "op")  # even the right password waits now
        assert r.status_code == 429 and "Too many failed attempts" in r.text
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_next_never_leaves_the_site(self, client: TestClient, users) -> None:
        for target in ("//evil.example/x", "https://evil.example", "\\\\evil"):
            assert login(client, "op", next_=target).headers["location"] == "/"


class TestScopedPages:
    def test_operator_sees_all_customers(self, client: TestClient, users) -> None:
        login(client, "op")
        html = client.get("/customers").text
        assert "Customer A own" in html and "Customer B FOREIGN-TO-A" in html

    def test_customer_sees_only_itself(self, client: TestClient, users) -> None:
        login(client, "cust")
        for page in ("/", "/customers"):
            html = client.get(page).text
            assert (
                "Customer A own" in html and "FOREIGN" not in html and "Lessor" not in html.split("<main>")[1]
            )

    def test_lessor_sees_only_itself(self, client: TestClient, users) -> None:
        login(client, "les")
        html = client.get("/").text
        assert "Lessor X own" in html and "FOREIGN" not in html and "Customer A own" not in html

    def test_staff_dashboard_has_a_chart(self, client: TestClient, users) -> None:
        login(client, "op")
        html = client.get("/").text
        assert '<script src="/static/vendor/plotly.min.js">' in html and "Plotly.newPlot" in html


class TestLanguage:
    def test_switch_to_chinese_and_back(self, client: TestClient, users) -> None:
        login(client, "op")
        assert "<h1>Dashboard</h1>" in client.get("/").text
        r = client.get("/lang/zh_CN?next=/customers", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/customers"
        html = client.get("/").text
        assert "<h1>总览</h1>" in html and 'lang="zh-CN"' in html and "运行中 GPU" in html
        assert "大模型厂商" in client.get("/customers").text
        client.get("/lang/en")
        assert "<h1>Dashboard</h1>" in client.get("/").text

    def test_browser_preference_is_used_without_a_cookie(self, client: TestClient) -> None:
        html = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text
        assert "<h1>登录</h1>" in html
        html = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
        assert "<h1>Log in</h1>" in html

    def test_money_is_exact_with_separators(self, client: TestClient, users, world) -> None:
        client.patch(
            f"/api/v1/customers/{world.customer_a.id}",
            headers=world.headers("operator"),
            json={"credit_limit": "555000000.05"},
        )
        login(client, "op")
        assert "¥555,000,000.05" in client.get("/customers").text


def test_money_puts_the_sign_before_the_symbol() -> None:
    from decimal import Decimal

    from computelease.web.format import money

    assert money(Decimal("-7000")) == "-¥7,000.00"
    assert money(Decimal("-0.004")) == "¥0.00"
    assert money(Decimal("22379.52"), "USD", "en") == "US$22,379.52"
