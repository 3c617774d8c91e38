from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computelease.auth import service
from computelease.auth.core import Role, hash_password, hash_token, new_token, verify_password
from computelease.auth.models import ApiToken, User
from computelease.errors import AppError


class TestPrimitives:
    def test_tokens_are_random_and_hashed(self) -> None:
        a, b = new_token(), new_token()
        assert a != b and a.startswith("cl_") and len(a) > 40
        assert hash_token(a) != a and len(hash_token(a)) == 64

    def test_password_hash_is_argon2_and_verifies(self) -> None:
        h = hash_password("correct horse battery")
        assert h.startswith("$argon2")
        assert verify_password(h, "correct horse battery")
        assert not verify_password(h, "wrong horse battery")
        assert not verify_password("not-a-hash", "x")


class TestTokens:
    def test_only_the_hash_is_stored(self, db, world) -> None:
        raw = world.tokens["admin"]
        with db.transaction("test") as s:
            stored = s.scalars(select(ApiToken.token_hash)).all()
        assert hash_token(raw) in stored and raw not in stored

    @pytest.mark.parametrize(
        ("role", "customer", "lessor", "message"),
        [
            (Role.customer, None, None, "--customer"),
            (Role.customer, 999, None, "customer 999 does not exist"),
            (Role.lessor, None, None, "--lessor"),
            (Role.operator, 1, None, "drop --customer"),
        ],
    )
    def test_binding_rules(self, session, role, customer, lessor, message) -> None:
        with pytest.raises(AppError, match=message):
            service.create_token(session, role=role, name="x", customer_id=customer, lessor_id=lessor)

    def test_revoked_token_is_refused(self, client: TestClient, world) -> None:
        h = world.headers("operator")
        assert client.get("/api/v1/me", headers=h).status_code == 200
        token_id = next(
            t["id"]
            for t in client.get("/api/v1/tokens", headers=world.headers("admin")).json()
            if t["name"] == "t-operator"
        )
        assert client.delete(f"/api/v1/tokens/{token_id}", headers=world.headers("admin")).status_code == 200
        r = client.get("/api/v1/me", headers=h)
        assert r.status_code == 401 and "revoked" in r.json()["detail"]

    def test_created_over_the_api_is_shown_once(self, client: TestClient, world) -> None:
        r = client.post(
            "/api/v1/tokens",
            headers=world.headers("admin"),
            json={"name": "ci", "role": "customer", "customer_id": world.customer_b.id},
        )
        assert r.status_code == 201
        raw = r.json()["token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).json()
        assert me["role"] == "customer" and me["customer_id"] == world.customer_b.id
        listed = client.get("/api/v1/tokens", headers=world.headers("admin")).json()
        assert all("token" not in t for t in listed)


class TestUsers:
    def test_password_login(self, session, world) -> None:
        service.create_user(session, username="Alice", password="a-long-password", role=Role.operator)
        assert service.authenticate_password(session, "alice", "a-long-password") is not None
        assert service.authenticate_password(session, "alice", "wrong-password!") is None
        assert service.authenticate_password(session, "nobody", "a-long-password") is None
        stored = session.scalar(select(User.password_hash).where(User.username == "alice"))
        assert stored.startswith("$argon2")

    def test_short_password_and_duplicate_name(self, session) -> None:
        with pytest.raises(AppError, match="at least 10"):
            service.create_user(session, username="bob", password="short", role=Role.admin)
        service.create_user(session, username="bob", password="long-enough-1", role=Role.admin)
        with pytest.raises(AppError, match="taken"):
            service.create_user(session, username="BOB", password="long-enough-1", role=Role.admin)


class TestLoginThrottle:
    def test_locks_after_the_limit_and_reopens_after_the_window(self) -> None:
        from computelease.auth.core import LoginThrottle

        now = [1000.0]
        t = LoginThrottle(limit=3, window_s=60, clock=lambda: now[0])
        for _ in range(2):
            t.failed("user:a")
        assert t.retry_after("user:a") == 0
        t.failed("user:a")
        assert t.retry_after("user:a") == 60
        assert t.retry_after("user:b") == 0
        now[0] += 30
        assert t.retry_after("user:a", "user:b") == 30
        now[0] += 31
        assert t.retry_after("user:a") == 0

    def test_success_clears_the_count(self) -> None:
        from computelease.auth.core import LoginThrottle

        t = LoginThrottle(limit=2, window_s=60, clock=lambda: 0.0)
        t.failed("user:a")
        t.succeeded("user:a")
        t.failed("user:a")
        assert t.retry_after("user:a") == 0
