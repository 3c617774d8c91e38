"""/api/v1 leases, payments and credit lines: shapes, bad terms, and who sees what."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from .conftest import FIRST_RENT

D = Decimal
TERMS = {"principal": "1000000", "annual_rate": "0.06", "months": 36, "start": "2025-01-15"}


class TestQuote:
    def test_schedule_returns_vat_and_bad_terms(self, api: TestClient, world) -> None:
        r = api.post(
            "/api/v1/leases/quote", headers=world.headers("lessor_x"), json=TERMS | {"fee_rate": "0.01"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["rows"]) == 36
        assert body["rows"][0] == {
            "period": 1,
            "date": "2025-02-15",
            "opening": "1000000.00",
            "payment": "30421.94",
            "interest": "5000.00",
            "principal": "25421.94",
            "closing": "974578.06",
        }
        assert body["totals"]["fee"] == "10000.00" and body["nominal_rate"] == "0.06"
        assert D(body["all_in_irr"]) > D("0.0617") and D(body["lessor_yield"]) > 0
        assert len(body["vat"]) >= 36 and body["end"] == "2028-01-15"

        # JSON numbers are read as written, never through a binary float's digits.
        r = api.post(
            "/api/v1/leases/quote",
            headers=world.headers("operator"),
            json={"principal": 1000000.0, "annual_rate": 0.06, "months": 12, "start": "2025-01-15"},
        )
        assert r.status_code == 200 and r.json()["rows"][0]["payment"] == "86066.43"
        # Bad terms: a 400 problem that names the term; missing ones: 422; customers: no quotes.
        for change, term in (
            ({"annual_rate": "-0.01"}, "annual_rate"),
            ({"months": 0}, "months"),
            ({"balloon": "2000000"}, "balloon"),
            ({"method": "balloon_magic"}, "method"),
            ({"start": "2025-02-30"}, "start"),
        ):
            r = api.post("/api/v1/leases/quote", headers=world.headers("operator"), json=TERMS | change)
            assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["term"] == term and r.json()["detail"].startswith(term), change
        r = api.post("/api/v1/leases/quote", headers=world.headers("operator"), json={"principal": "1"})
        assert r.status_code == 422 and "annual_rate" in r.json()["detail"]
        r = api.post("/api/v1/leases/quote", headers=world.headers("customer_a"), json=TERMS)
        assert r.status_code == 403


class TestLeases:
    def test_create_show_status_and_bad_terms(self, api: TestClient, world, books) -> None:
        body = {
            "code": "NEW-1",
            "kind": "sale_leaseback",
            "lessor_id": world.lessor_x.id,
            "lessee": "青云科技",
            "terms": TERMS | {"months": "24"},
            "node_ids": [books.nodes["Z1"]],
        }
        r = api.post("/api/v1/leases", headers=world.headers("operator"), json=body)
        assert r.status_code == 201, r.text
        lease = r.json()
        assert lease["kind"] == "sale_leaseback" and lease["terms"]["kind"] == "sale_leaseback"
        assert len(lease["instalments"]) == 24 and lease["penalty_daily_rate"] == "0.000500"
        assert [a["serial"] for a in lease["assets"]] == ["Z1"] and lease["assets"][0]["state"] == "ordered"
        r = api.post(
            "/api/v1/leases",
            headers=world.headers("operator"),
            json=body | {"code": "NEW-2", "node_ids": [], "terms": TERMS | {"grace_months": "36"}},
        )
        assert r.status_code == 400 and r.json()["term"] == "grace_months"
        r = api.post("/api/v1/leases", headers=world.headers("operator"), json=body | {"code": "NEW-3"})
        assert r.status_code == 409 and "NEW-1" in r.json()["detail"]
        assert api.post("/api/v1/leases", headers=world.headers("lessor_x"), json=body).status_code == 403
        # Instalment status as of a date, seen by the lessor.
        h = world.headers("lessor_x")
        r = api.get(f"/api/v1/leases/{books.lease_x}?as_of=2025-03-25", headers=h)
        lease = r.json()
        assert [i["status"] for i in lease["instalments"][:4]] == ["overdue", "overdue", "due", "due"]
        first = lease["instalments"][0]
        assert first["days_overdue"] == 38 and D(first["penalty_owed"]) == (
            FIRST_RENT * D("0.0005") * 38
        ).quantize(D("0.01"))
        assert lease["overdue_count"] == 2 and lease["next_due"]["due_date"] == "2025-04-15"
        assert lease["outstanding_principal"] == "1200000.00"
        r = api.get(f"/api/v1/leases/{books.lease_x}/instalments?as_of=2025-01-20", headers=h)
        assert {i["status"] for i in r.json()} == {"due"}

    def test_payments_assets_termination_and_lifecycle(self, api: TestClient, world, books) -> None:
        h = world.headers("operator")
        url = f"/api/v1/leases/{books.lease_x}"
        r = api.post(f"{url}/payments", headers=h, json={"paid_on": "2025-02-15", "amount": str(FIRST_RENT)})
        assert r.status_code == 201 and r.json()["allocations"] == [
            {"period": 1, "penalty": "0.00", "interest": "6000.00", "principal": "97279.72", "days_late": 0}
        ]
        r = api.post(f"{url}/payments", headers=h, json={"paid_on": "2025-02-01", "amount": "5"})
        assert r.status_code == 409
        r = api.post(f"{url}/payments", headers=h, json={"paid_on": "2025-03-01", "amount": "-5"})
        assert r.status_code == 422
        assert len(api.get(f"{url}/payments", headers=world.headers("lessor_x")).json()) == 1
        r = api.get(f"{url}/termination-quote?on=2025-02-15&fee_rate=0.02", headers=world.headers("lessor_x"))
        q = r.json()
        assert r.status_code == 200 and q["paid_through"] == 1 and q["arrears"] == "0.00"
        assert q["outstanding_principal"] == "1102720.28" and q["fee"] == "22054.41"
        r = api.get(f"{url}/termination-quote?on=2027-01-01", headers=h)
        assert r.status_code == 400 and r.json()["term"] == "on"
        # Assets: H2 secures lessor Y's lease, so it cannot secure this one too.
        r = api.post(f"{url}/assets", headers=h, json={"node_id": books.nodes["H2"]})
        assert r.status_code == 409 and "LY-1" in r.json()["detail"]
        r = api.post(f"{url}/assets", headers=h, json={"node_id": books.nodes["H3"]})
        assert r.status_code == 201 and {a["serial"] for a in r.json()} == {"H1", "H3"}
        assert api.delete(f"{url}/assets/{books.nodes['H3']}", headers=h).status_code == 204
        assert [a["serial"] for a in api.get(f"{url}/assets", headers=h).json()] == ["H1"]
        # Lifecycle: terminated, then closed; never active again.
        assert api.patch(url, headers=h, json={"status": "terminated"}).json()["status"] == "terminated"
        r = api.patch(url, headers=h, json={"status": "active"})
        assert r.status_code == 409 and "closed" in r.json()["detail"]
        assert api.delete(url, headers=h).status_code == 409  # it has a payment
        assert api.delete(f"/api/v1/leases/{books.lease_y}", headers=h).status_code == 204


class TestScope:
    def test_lessors_see_their_own_customers_none_staff_all(self, api: TestClient, world, books) -> None:
        h = world.headers("lessor_x")
        listing = api.get("/api/v1/leases", headers=h).json()
        assert [x["code"] for x in listing["items"]] == ["LX-1"] and listing["total"] == 1
        assert "FOREIGN" not in api.get("/api/v1/leases", headers=h).text
        foreign = f"/api/v1/leases/{books.lease_y}"
        for path in ("", "/instalments", "/assets", "/payments", "/termination-quote"):
            r = api.get(foreign + path, headers=h)
            assert r.status_code == 404 and "FOREIGN" not in r.text, path
        lines = api.get("/api/v1/credit-lines", headers=h).json()
        assert [x["name"] for x in lines["items"]] == ["Line X own"]
        assert api.get(f"/api/v1/credit-lines/{books.line_y}", headers=h).status_code == 404
        assert (
            api.patch(f"/api/v1/credit-lines/{books.line_x}", headers=h, json={"drawn": "1"}).status_code
            == 403
        )
        h = world.headers("customer_a")
        assert api.get("/api/v1/leases", headers=h).json()["items"] == []
        assert api.get("/api/v1/credit-lines", headers=h).json()["items"] == []
        assert api.get(f"/api/v1/leases/{books.lease_x}", headers=h).status_code == 404
        assert api.get(f"/api/v1/credit-lines/{books.line_x}", headers=h).status_code == 404
        r = api.get("/api/v1/leases", headers=world.headers("admin")).json()
        assert {x["code"] for x in r["items"]} == {"LX-1", "LY-1"}


class TestCreditLines:
    def test_create_draw_and_refuse_overdraw(self, api: TestClient, world, books) -> None:
        h = world.headers("operator")
        body = {
            "lessor_id": world.lessor_y.id,
            "name": "综合授信",
            "limit": "29000000.00",
            "drawn": "0",
            "rate": "0.068",
            "expires_on": "2027-06-30",
        }
        r = api.post("/api/v1/credit-lines", headers=h, json=body)
        assert (
            r.status_code == 201 and r.json()["available"] == "29000000.00" and r.json()["rate"] == "0.068000"
        )
        url = f"/api/v1/credit-lines/{r.json()['id']}"
        assert api.patch(url, headers=h, json={"drawn": "29000000.00"}).json()["available"] == "0.00"
        r = api.patch(url, headers=h, json={"drawn": "29000000.01"})
        assert r.status_code == 409 and "limit" in r.json()["detail"]
        r = api.post("/api/v1/credit-lines", headers=h, json=body | {"drawn": "30000000"})
        assert r.status_code == 422
        assert api.get(url, headers=world.headers("lessor_y")).json()["drawn"] == "29000000.00"
