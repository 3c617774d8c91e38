"""The catalog API: every role reads it, staff extend it, and capacity converts with its figures."""

from __future__ import annotations

from fastapi.testclient import TestClient

CUSTOM = {
    "id": "acme-x1",
    "vendor": "Acme",
    "name": "X1",
    "origin": "domestic",
    "source": "vendor briefing",
    "confidence": "third-party",
    "dense": {"bf16": {"value": 312.7, "source": "our GEMM run", "confidence": "datasheet"}},
}


def test_every_role_reads_the_catalog(client: TestClient, world) -> None:
    for who in ("customer_a", "lessor_x", "operator"):
        reads(client, world.headers(who))


def reads(client: TestClient, h: dict[str, str]) -> None:
    listing = client.get("/api/v1/catalog/accelerators?origin=domestic&limit=100", headers=h).json()
    assert listing["total"] == len(listing["items"]) and "huawei-ascend-910b" in {
        a["id"] for a in listing["items"]
    }
    assert all(a["origin"] == "domestic" for a in listing["items"])
    h100 = client.get("/api/v1/catalog/accelerators/nvidia-h100-sxm", headers=h).json()
    assert h100["dense"]["bf16"]["value"] == 989.4 and h100["dense"]["bf16"]["confidence"] == "datasheet"
    skus = client.get("/api/v1/catalog/skus?accelerator_id=nvidia-h100-sxm", headers=h).json()["items"]
    assert [s["id"] for s in skus] == ["nvidia-hgx-h100-8gpu"] and skus[0]["gpus_per_node"] == 8
    r = client.get("/api/v1/catalog/skus/no-such-sku", headers=h)
    assert r.status_code == 404 and "known ids" in r.json()["detail"]


def test_staff_add_and_remove_their_own_entries(client: TestClient, world) -> None:
    for who in ("customer_a", "lessor_x"):
        r = client.post("/api/v1/catalog/accelerators", json=CUSTOM, headers=world.headers(who))
        assert r.status_code == 403
    op = world.headers("operator")
    r = client.post("/api/v1/catalog/accelerators", json=CUSTOM | {"custom": False}, headers=op)
    assert r.status_code == 201, r.text
    assert r.json()["custom"] is True and r.json()["dense"]["bf16"]["value"] == 312.7
    listing = client.get(
        "/api/v1/catalog/accelerators?custom=true", headers=world.headers("customer_a")
    ).json()
    assert [a["id"] for a in listing["items"]] == ["acme-x1"]
    r = client.post("/api/v1/catalog/accelerators", json=CUSTOM, headers=op)
    assert r.status_code == 409 and "already a custom catalog entry" in r.json()["detail"]
    assert client.delete("/api/v1/catalog/accelerators/acme-x1", headers=op).status_code == 204
    r = client.delete("/api/v1/catalog/accelerators/nvidia-h100-sxm", headers=op)
    assert r.status_code == 409 and "shipped" in r.json()["detail"]


def test_a_bad_entry_lists_every_problem(client: TestClient, world) -> None:
    body = CUSTOM | {"dense": {"bf16": {"value": -5, "source": "", "confidence": "datasheet"}}}
    r = client.post("/api/v1/catalog/accelerators", json=body, headers=world.headers("operator"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    problems = r.json()["problems"]
    assert any("source is empty" in p for p in problems) and any("positive" in p for p in problems)
    r = client.post(
        "/api/v1/catalog/accelerators", json=CUSTOM | {"colour": "red"}, headers=world.headers("admin")
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"


class TestConvert:
    def test_the_articles_contract_and_back_and_a_weak_figure(self, client: TestClient, world) -> None:
        body = {"model": "nvidia-h100-sxm", "pflops": "1545", "precision": "bf16"}
        r = client.post("/api/v1/catalog/convert", json=body, headers=world.headers("customer_a"))
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["gpus"], out["nodes"], out["sku"]) == (1562, 196, "nvidia-hgx-h100-8gpu")
        assert out["pflops"] == 1545.4428 and out["warning"] is None
        back = client.post(
            "/api/v1/catalog/convert",
            json={"model": "nvidia-h100-sxm", "gpus": 1562},
            headers=world.headers("admin"),
        ).json()
        assert back["pflops"] == 1545.4428 and back["nodes"] == 196
        # A weak figure converts, with a warning.
        body = {"model": "huawei-ascend-910c", "pflops": 8, "precision": "fp16"}
        out = client.post("/api/v1/catalog/convert", json=body, headers=world.headers("operator")).json()
        assert out["gpus"] == 10 and out["confidence"] == "weak" and "is weak" in out["warning"]

    def test_errors_name_the_figure_or_what_to_fix(self, client: TestClient, world) -> None:
        body = {"model": "huawei-ascend-910b", "pflops": 10, "precision": "fp16"}
        r = client.post("/api/v1/catalog/convert", json=body, headers=world.headers("operator"))
        assert r.status_code == 422
        assert "fp16 dense TFLOPS of huawei-ascend-910b is unknown" in r.json()["detail"]
        assert r.json()["model"] == "huawei-ascend-910b"
        for body, message in (
            ({}, "model"),
            ({"model": "nvidia-h100-sxm", "pflops": 1, "gpus": 2}, "exactly one of pflops, gpus or nodes"),
            ({"model": "nvidia-h100-sxm", "gpus": 0}, "gpus"),
            ({"model": "nvidia-h100-sxm", "gpus": 8, "precision": "fp4"}, "precision"),
        ):
            r = client.post("/api/v1/catalog/convert", json=body, headers=world.headers("operator"))
            assert r.status_code == 422 and message in r.json()["detail"]
        r = client.post(
            "/api/v1/catalog/convert",
            json={"model": "nvidia-h999", "gpus": 8},
            headers=world.headers("operator"),
        )
        assert r.status_code == 404 and "nvidia-h999" in r.json()["detail"]


def test_catalog_page_and_csv(client: TestClient, db, world, monkeypatch) -> None:
    import re

    from argon2 import PasswordHasher

    from computelease.auth import service as auth
    from computelease.auth.core import Role

    # Argon2 at its real cost would be most of this test's time; the catalog is what is tested.
    monkeypatch.setattr("computelease.auth.core._hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    with db.transaction("test") as s:
        auth.create_user(
            s, username="les", password="demo-password-123", role=Role.lessor, lessor_id=world.lessor_x.id
        )
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "les", "password": "demo-password-123", "csrf_token": token})
    html = client.get("/catalog").text
    assert "H100 SXM 80GB" in html and "989.4" in html and "256–376" in html  # the 910B's disputed range
    assert 'href="/catalog/accelerators.csv"' in html
    csv = client.get("/catalog/accelerators.csv")
    assert csv.headers["content-type"].startswith("text/csv") and b"nvidia-h100-sxm" in csv.content
