"""A small fleet for the persisted allocation: site qy-1 with four in-service H100 nodes (A1–A3 in
fabric ib-a, B1 in ib-b), and two signed 8-GPU H100 contracts for 2026, one per world customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from computelease.auth.core import SYSTEM
from computelease.contracts import service as contracts
from computelease.contracts.schemas import ContractIn, TransitionIn
from computelease.db import Database
from computelease.fleet import service as fleet
from computelease.fleet.models import SiteKind
from computelease.fleet.schemas import NodeIn, SiteIn

T0 = datetime(2025, 12, 1, tzinfo=UTC)
JAN = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Small:
    site: int
    nodes: dict[str, int]
    contract_a: Any = None
    contract_b: Any = None


def build_fleet(s) -> Small:
    site = fleet.create_site(
        s,
        SiteIn(
            code="qy-1",
            name="庆阳智算中心",
            kind=SiteKind.own_center,
            city="庆阳",
            pue=Decimal("1.2"),
            power_price_per_kwh=Decimal("0.35"),
        ),
    )
    nodes = {}
    for serial, fabric in (("A1", "ib-a"), ("A2", "ib-a"), ("A3", "ib-a"), ("B1", "ib-b")):
        node = fleet.create_node(
            s,
            NodeIn(
                serial=serial,
                sku_id="nvidia-hgx-h100-8gpu",
                site_id=site.id,
                fabric=fabric,
                purchase_cost=Decimal("2300000"),
                purchase_date=date(2025, 11, 1),
                state_since=T0 - timedelta(days=3),
            ),
        )
        for i, state in enumerate(("delivered", "accepted", "in_service")):
            fleet.transition(s, SYSTEM, node.id, state, at=T0 + timedelta(hours=i))
        nodes[serial] = node.id
    return Small(site.id, nodes)


def sign(s, contract_id: int) -> None:
    contracts.transition(s, SYSTEM, contract_id, TransitionIn(to="signed", at=T0))


def signed_contract(s, customer_id: int, name: str, **overrides: Any):
    terms: dict[str, Any] = {
        "customer_id": customer_id,
        "name": name,
        "capacity_unit": "gpus",
        "capacity": "8",
        "accelerator_model": "nvidia-h100-sxm",
        "start_date": date(2026, 1, 1),
        "end_date": date(2026, 12, 31),
        "pricing": "monthly_fee",
        "price": "70000.00",
    }
    contract = contracts.create_contract(s, SYSTEM, ContractIn(**(terms | overrides)))
    sign(s, contract.id)
    return contract


@pytest.fixture
def small(db: Database, world) -> Small:
    with db.transaction(actor="test") as s:
        out = build_fleet(s)
        out.contract_a = signed_contract(s, world.customer_a.id, "Contract A own")
        out.contract_b = signed_contract(s, world.customer_b.id, "Contract B FOREIGN-TO-A")
    return out


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr("computelease.auth.core._hasher", PasswordHasher(time_cost=1, memory_cost=1024))
