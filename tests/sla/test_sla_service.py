"""SLA of a stored contract: allocations + GPU health intervals + maintenance → credit with evidence."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.sla.conftest import H
from tests.telemetry.conftest import T0

from computelease.auth.core import SYSTEM
from computelease.sla import service
from computelease.telemetry import service as telemetry


def test_outage_earns_a_credit_with_evidence(db, served):
    with db.transaction(actor="test") as s:
        result = service.report(s, SYSTEM, served.contract_id, "2026-10")
    # October in Asia/Shanghai: 744 h × 8 GPUs; GPU 3 lost 10 h.
    assert result.contracted_gpu_hours == Decimal("5952.000000")
    assert result.counted_gpu_hours == Decimal("10.000000")
    assert result.availability_pct == Decimal("99.8319")
    assert (result.credit_pct, result.credit, result.currency) == (Decimal("10"), Decimal("7000.00"), "CNY")
    (evidence,) = result.evidence
    assert evidence.gpu_id == "TN-1#3" and evidence.state == "unhealthy"
    assert (evidence.start, evidence.end) == (T0 + 8 * H, T0 + 18 * H)
    assert "row remap pending" in evidence.reason
    (incident,) = result.incidents
    assert incident.incident_id == evidence.incident_id and incident.counted_gpu_hours == Decimal("10.000000")


def test_other_months_are_clean(db, served):
    with db.transaction(actor="test") as s:
        result = service.report(s, SYSTEM, served.contract_id, "2026-09")
    assert result.availability_pct == Decimal("100.0000") and result.credit == Decimal("0.00")


def test_announced_maintenance_is_excluded(db, served):
    with db.transaction(actor="test") as s:
        # Hours 8–10 of the outage fall inside a window announced a week before: excluded.
        telemetry.announce_maintenance(
            s,
            SYSTEM,
            title="remap reset",
            node_id=served.node_id,
            starts_at=T0 + 8 * H,
            ends_at=T0 + 10 * H,
            notice_given_at=T0 - timedelta(days=7),
        )
        result = service.report(s, SYSTEM, served.contract_id, "2026-10")
    assert result.excluded_gpu_hours == Decimal("2.000000")
    assert result.counted_gpu_hours == Decimal("8.000000")


def test_api_scoped_to_the_customer(client, world, served):
    url = f"/api/v1/contracts/{served.contract_id}/sla?period=2026-10"
    own = client.get(url, headers=world.headers("customer_a"))
    assert own.status_code == 200, own.text
    data = own.json()
    assert (data["availability_pct"], data["credit"], data["currency"]) == ("99.8319", "7000.00", "CNY")
    assert data["evidence"][0]["gpu_id"] == "TN-1#3"
    assert client.get(url, headers=world.headers("customer_b")).status_code == 404
    assert client.get(url, headers=world.headers("lessor_x")).status_code == 404
    assert client.get(url).status_code == 401
    bad = client.get(
        f"/api/v1/contracts/{served.contract_id}/sla?period=2026-13", headers=world.headers("admin")
    )
    assert bad.status_code == 422


def test_customers_see_incidents_and_maintenance_of_the_nodes_serving_them(client, db, world, served):
    with db.transaction(actor="test") as s:
        telemetry.open_incident(s, SYSTEM, title="internal: no node")
        telemetry.announce_maintenance(
            s, SYSTEM, title="fleet-wide", starts_at=T0 + 30 * H, ends_at=T0 + 31 * H
        )
    own = client.get("/api/v1/incidents", headers=world.headers("customer_a")).json()
    assert [(i["node_serial"], i["source"]) for i in own["items"]] == [("TN-1", "auto")]
    assert client.get("/api/v1/incidents", headers=world.headers("customer_b")).json()["total"] == 0
    windows = client.get("/api/v1/maintenance-windows", headers=world.headers("customer_b")).json()
    assert [w["title"] for w in windows["items"]] == ["fleet-wide"]
    assert client.get("/api/v1/incidents", headers=world.headers("operator")).json()["total"] == 2


def test_availability_gauge_per_active_contract(client, db, served):
    from datetime import UTC, datetime

    from computelease.contracts import service as contracts
    from computelease.contracts.schemas import TransitionIn

    with db.transaction(actor="test") as s:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        contracts.transition(s, SYSTEM, served.contract_id, TransitionIn(to="active", at=at))
    text = client.get("/metrics").text
    assert f'computelease_sla_availability_pct{{contract="{served.contract_id}"}}' in text
