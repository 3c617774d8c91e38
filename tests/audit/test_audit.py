"""Every create, update and delete of a business record is logged with who, when, before and after."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computelease.audit.models import AuditEntry
from computelease.contracts.models import Customer, Segment


def entries(db, entity: str) -> list[AuditEntry]:
    with db.transaction("test") as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)))


class TestAuditTrail:
    def test_create_update_delete_through_the_api(self, client: TestClient, db, world) -> None:
        h = world.headers("operator")
        cid = client.post(
            "/api/v1/customers",
            headers=h,
            json={"name": "Audited Co", "segment": "enterprise", "credit_limit": "10.00"},
        ).json()["id"]
        assert (
            client.patch(f"/api/v1/customers/{cid}", headers=h, json={"credit_limit": "25.50"}).status_code
            == 200
        )
        assert client.delete(f"/api/v1/customers/{cid}", headers=h).status_code == 204

        log = [e for e in entries(db, "customer") if e.entity_id == str(cid)]
        assert [e.action for e in log] == ["create", "update", "delete"]
        assert all(e.actor.startswith("token:") and e.actor.endswith(":t-operator") for e in log)
        create, update, delete = log
        assert create.before is None and create.after["name"] == "Audited Co"
        assert create.after["credit_limit"] == "10.00"
        assert update.before == {"credit_limit": "10.00"} and update.after == {"credit_limit": "25.50"}
        assert delete.after is None and delete.before["credit_limit"] == "25.50"

    def test_rolled_back_changes_leave_no_entry(self, db) -> None:
        with pytest.raises(RuntimeError), db.transaction("someone") as s:
            s.add(Customer(name="ghost", segment=Segment.research))
            s.flush()
            raise RuntimeError
        assert entries(db, "customer") == []

    def test_secrets_never_reach_the_log(self, db, world) -> None:
        for e in entries(db, "api_token"):
            assert "token_hash" not in (e.after or {})

    def test_admins_read_it_filtered(self, client: TestClient, world) -> None:
        r = client.get("/api/v1/audit?entity=customer", headers=world.headers("admin"))
        assert r.status_code == 200
        body = r.json()
        assert body["total"] == 2 and {i["action"] for i in body["items"]} == {"create"}
        assert {i["entity"] for i in body["items"]} == {"customer"}
