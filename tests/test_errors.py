"""Every error is RFC 9457 problem+json that says what to fix, and nothing half-written survives."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from computelease.auth.deps import Session
from computelease.contracts.models import Customer, Segment


def is_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"] == "about:blank"
    return body


class TestProblemDetails:
    def test_unknown_path(self, client: TestClient) -> None:
        body = is_problem(client.get("/api/v1/nothing-here"), 404)
        assert "/docs" in body["detail"]
        body = is_problem(client.get("/no/such/page"), 404)
        assert "/docs" in body["detail"]

    def test_wrong_method(self, client: TestClient) -> None:
        body = is_problem(client.put("/healthz"), 405)
        assert "PUT" in body["detail"]

    def test_validation_names_each_bad_field(self, client: TestClient, world) -> None:
        r = client.post(
            "/api/v1/customers",
            headers=world.headers("operator"),
            json={"name": "", "segment": "bakery", "credit_limit": "-5", "extra": 1},
        )
        body = is_problem(r, 422)
        fields = {e["field"] for e in body["errors"]}
        assert fields == {"name", "segment", "credit_limit", "extra"}
        for f in fields:
            assert f in body["detail"]

    def test_query_parameter_errors_say_where(self, client: TestClient, world) -> None:
        body = is_problem(client.get("/api/v1/customers?limit=0", headers=world.headers("admin")), 422)
        assert body["errors"][0]["field"] == "limit (query)"

    def test_malformed_json(self, client: TestClient, world) -> None:
        r = client.post(
            "/api/v1/customers",
            headers={**world.headers("operator"), "content-type": "application/json"},
            content=b"{not json",
        )
        is_problem(r, 422)

    def test_conflict_is_409(self, client: TestClient, world) -> None:
        r = client.post(
            "/api/v1/customers",
            headers=world.headers("operator"),
            json={"name": "Customer A own", "segment": "research"},
        )
        body = is_problem(r, 409)
        assert "Customer A own" in body["detail"]

    def test_forbidden_names_the_role_needed(self, client: TestClient, world) -> None:
        r = client.post(
            "/api/v1/customers",
            headers=world.headers("customer_a"),
            json={"name": "sneaky", "segment": "research"},
        )
        body = is_problem(r, 403)
        assert "admin, operator" in body["detail"] and "customer" in body["detail"]


class TestNothingHalfWritten:
    def test_unexpected_error_is_500_problem_and_rolls_back(self, db, settings) -> None:
        from computelease.app import create_app

        app = create_app(settings, db)

        @app.post("/boom")
        def boom(session: Session) -> None:
            session.add(Customer(name="half-written", segment=Segment.research))
            session.flush()
            raise RuntimeError("simulated bug")

        with TestClient(app, raise_server_exceptions=False) as c:
            body = is_problem(c.post("/boom"), 500)
        assert "nothing was saved" in body["detail"] and "simulated bug" not in body["detail"]
        with db.transaction("test") as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == 0

    def test_a_failed_commit_is_not_reported_as_success(self, db, settings, world) -> None:
        from computelease.app import create_app

        app = create_app(settings, db)

        @app.post("/dup")
        def dup(session: Session) -> dict:
            # Skips the service's check, so only the database's unique constraint, at commit, catches it.
            session.add(Customer(name="Customer A own", segment=Segment.research))
            return {"ok": True}

        with TestClient(app, raise_server_exceptions=False) as c:
            is_problem(c.post("/dup"), 409)
        with db.transaction("test") as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == 2
