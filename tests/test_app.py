from __future__ import annotations

from fastapi.testclient import TestClient


class TestOps:
    def test_healthz_needs_no_auth(self, client: TestClient) -> None:
        r = client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "database": "ok"}

    def test_healthz_reports_a_dead_database(self, settings) -> None:
        from computelease.app import create_app
        from computelease.db import Database

        dead = Database("sqlite:////nonexistent-dir/x.db")
        with TestClient(create_app(settings, dead)) as c:
            r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["database"] == "unreachable"

    def test_metrics_in_prometheus_text(self, client: TestClient, world) -> None:
        client.get("/healthz")
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert "computelease_database_up 1.0" in text
        assert 'computelease_records{kind="customer"} 2.0' in text
        assert 'computelease_http_requests_total{method="GET",route="/healthz",status="200"}' in text

    def test_openapi_and_docs(self, client: TestClient) -> None:
        schema = client.get("/openapi.json").json()
        assert "/api/v1/customers" in schema["paths"]
        assert client.get("/docs").status_code == 200

    def test_plotly_served_from_the_installed_package(self, client: TestClient) -> None:
        import plotly

        r = client.get("/static/vendor/plotly.min.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
        assert len(r.content) > 1_000_000
        assert plotly.__version__.split(".")[0] in r.text[:2000] or "plotly" in r.text[:2000].lower()

    def test_security_headers(self, client: TestClient) -> None:
        for path in ("/healthz", "/login"):
            h = client.get(path).headers
            assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"

    def test_own_static_files(self, client: TestClient) -> None:
        assert client.get("/static/app.css").status_code == 200
