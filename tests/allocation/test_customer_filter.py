"""The fleet filtered by customer: the nodes serving that customer's contracts now."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient
from tests.allocation.test_pages import login
from tests.sla.conftest import served_contract

from computelease.auth.core import Role
from computelease.fleet import service as fleet
from computelease.fleet.models import Node
from computelease.fleet.schemas import NodeIn


def test_nodes_serving_a_customer_now(client: TestClient, db, world) -> None:
    with db.transaction("test") as s:
        served = served_contract(s, world.customer_a.id)  # TN-1, allocated through 2026
        site_id = s.get(Node, served.node_id).site_id
        fleet.create_node(
            s,
            NodeIn(
                serial="TN-2",
                sku_id="nvidia-hgx-h100-8gpu",
                site_id=site_id,
                purchase_cost=Decimal("2300000"),
                purchase_date=date(2025, 11, 1),
            ),
        )
    op = world.headers("operator")

    def serials(**query) -> list[str]:
        r = client.get("/api/v1/nodes", headers=op, params=query)
        assert r.status_code == 200, r.text
        return [n["serial"] for n in r.json()["items"]]

    assert serials() == ["TN-1", "TN-2"]
    assert serials(customer_id=world.customer_a.id) == ["TN-1"]
    assert serials(customer_id=world.customer_b.id) == []
    csv = client.get("/api/v1/nodes/export", headers=op, params={"customer_id": world.customer_a.id}).text
    assert "TN-1" in csv and "TN-2" not in csv

    login(client, db, "op", Role.operator)
    html = client.get("/fleet", params={"customer": world.customer_a.id}).text
    assert f'<option value="{world.customer_a.id}" selected>Customer A own</option>' in html
    assert "TN-1" in html and "TN-2" not in html
