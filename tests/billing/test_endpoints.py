"""The billing API: close, invoices, credit notes, payments, ageing, exports, and who may see what."""

from __future__ import annotations

import io
from decimal import Decimal

from fastapi.testclient import TestClient
from openpyxl import load_workbook


def test_close_and_read_invoices_by_role(client: TestClient, world, served) -> None:
    op, ca, cb, lx = (world.headers(w) for w in ("operator", "customer_a", "customer_b", "lessor_x"))
    assert client.post("/api/v1/billing/close", json={"period": "2026-10"}, headers=ca).status_code == 403
    bad = client.post("/api/v1/billing/close", json={"period": "2026-13"}, headers=op)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"

    preview = client.post("/api/v1/billing/close", json={"period": "2026-10", "dry_run": True}, headers=op)
    assert preview.status_code == 200 and preview.json()["created"] == 1
    assert client.get("/api/v1/invoices", headers=op).json()["total"] == 0

    done = client.post("/api/v1/billing/close", json={"period": "2026-10"}, headers=op).json()
    assert (done["created"], done["finalized"], done["documents"]) == (1, 1, ["CL-2026-000001"])
    assert done["totals"]["CNY"]["gross"] == "63000.00"
    again = client.post("/api/v1/billing/close", json={"period": "2026-10"}, headers=op).json()
    assert (again["created"], again["adjusted"], again["unchanged"]) == (0, 0, 1)

    (inv,) = client.get("/api/v1/invoices", headers=ca).json()["items"]
    assert inv["number"] == "CL-2026-000001" and inv["balance"] == "63000.00"
    assert client.get("/api/v1/invoices", headers=cb).json()["total"] == 0
    assert client.get("/api/v1/invoices", headers=lx).json()["total"] == 0
    assert client.get(f"/api/v1/invoices/{inv['id']}", headers=cb).status_code == 404
    detail = client.get(f"/api/v1/invoices/{inv['id']}", headers=ca).json()
    assert [ln["kind"] for ln in detail["lines"]] == ["compute", "sla_credit"]
    assert detail["lines"][1]["evidence"]["availability_pct"] == "99.8319"
    overdue = client.get("/api/v1/invoices", params={"status": "overdue", "as_of": "2026-12-02"}, headers=op)
    assert overdue.json()["total"] == 1
    assert overdue.json()["items"][0]["status"] == "overdue"

    fapiao = client.get(f"/api/v1/invoices/{inv['id']}/fapiao", headers=ca).json()
    assert fapiao["kind"] == "blue" and Decimal(fapiao["lines"][0]["tax_rate"]) == Decimal("0.06")


def test_credit_note_payment_ageing_and_exports(client: TestClient, world, served) -> None:
    op, ca = world.headers("operator"), world.headers("customer_a")
    client.post("/api/v1/billing/close", json={"period": "2026-10"}, headers=op)
    (inv,) = client.get("/api/v1/invoices", headers=op).json()["items"]
    note = client.post(
        f"/api/v1/invoices/{inv['id']}/credit-notes",
        json={"amount": "1060.00", "reason": "goodwill"},
        headers=op,
    )
    assert note.status_code == 201 and note.json()["number"] == "CL-CN-2026-000001"
    assert note.json()["gross"] == "-1060.00" and note.json()["corrects_id"] == inv["id"]
    too_much = client.post(
        f"/api/v1/invoices/{inv['id']}/credit-notes", json={"amount": "99999.00", "reason": "x"}, headers=op
    )
    assert too_much.status_code == 422
    assert (
        client.post(
            f"/api/v1/invoices/{inv['id']}/credit-notes", json={"amount": "1.00", "reason": "x"}, headers=ca
        ).status_code
        == 403
    )

    body = {
        "customer_id": world.customer_a.id,
        "amount": "30000.00",
        "received_on": "2026-12-10",
        "reference": "ICBC-20261210-01",
    }
    first = client.post("/api/v1/payments", json=body, headers=op)
    assert first.status_code == 201
    assert first.json()["allocations"][0]["amount"] == "30000.00"
    assert client.post("/api/v1/payments", json=body, headers=op).status_code == 200  # a resend
    clash = client.post("/api/v1/payments", json={**body, "amount": "1.00"}, headers=op)
    assert clash.status_code == 409
    negative = client.post("/api/v1/payments", json={**body, "amount": "-5"}, headers=op)
    assert negative.status_code == 422 and "amount" in negative.text

    invoice = client.get(f"/api/v1/invoices/{inv['id']}", headers=op).json()
    assert invoice["balance"] == "31940.00" and invoice["status"] == "partially_paid"

    (row,) = client.get("/api/v1/billing/ageing", params={"as_of": "2027-01-15"}, headers=ca).json()
    assert row["buckets"]["31-60"] == "31940.00" and row["over_limit"] is True
    assert client.get("/api/v1/billing/ageing", headers=world.headers("customer_b")).json() == []

    tb = client.get("/api/v1/billing/trial-balance", headers=op).json()
    assert sum(Decimal(v) for v in tb["CNY"].values()) == 0
    assert client.get("/api/v1/billing/trial-balance", headers=ca).status_code == 403

    csv = client.get("/api/v1/invoices/export", params={"format": "csv"}, headers=ca)
    assert csv.status_code == 200 and "CL-2026-000001" in csv.text and "CL-CN-2026-000001" in csv.text
    xlsx = client.get("/api/v1/billing/ageing/export", params={"format": "xlsx"}, headers=op)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["A1"].value == "customer" and sheet["A2"].value == "Customer A own"


def test_vat_rates_admin_only(client: TestClient, world) -> None:
    rates = client.get("/api/v1/billing/vat-rates", headers=world.headers("customer_a")).json()
    assert {r["category"] for r in rates} >= {"compute_service", "om_service"}
    body = {
        "category": "compute_service",
        "rate": "0.05",
        "valid_from": "2027-01-01",
        "source": "test circular",
    }
    assert (
        client.post("/api/v1/billing/vat-rates", json=body, headers=world.headers("operator")).status_code
        == 403
    )
    assert (
        client.post("/api/v1/billing/vat-rates", json=body, headers=world.headers("admin")).status_code == 201
    )
    bad = client.post("/api/v1/billing/vat-rates", json={**body, "rate": "6"}, headers=world.headers("admin"))
    assert bad.status_code == 422
