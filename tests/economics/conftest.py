"""Scenarios for the economics tests: the shipped examples and a one-node business small enough to check
by hand (see test_projection.py's golden test)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

ONE_NODE = {
    "name": "one node, twelve months",
    "start": "2025-01-01",
    "horizon_months": 12,
    "discount_rate": 0,
    "sites": [
        {
            "id": "a",
            "rack_per_node_month": 1000,
            "power_price_kwh": 0.5,
            "pue": 1.25,
            "om_per_node_month": 500,
        }
    ],
    "fleet": [
        {
            "sku": "nvidia-hgx-h100-8gpu",
            "count": 1,
            "unit_price": 1130000,
            "date": "2025-01-01",
            "site": "a",
            "in_service_months": 0,
            "kw_per_node": 8,
        }
    ],
    "market": {
        "prices": [{"accelerator": "nvidia-h100-sxm", "per_server_month": 106000}],
        "occupancy": 0.5,
        "residual": [{"age_months": 12, "value": 0.8}],
    },
    "funding": {"bank": {"amount": 600000, "rate": 0, "months": 12}},
    "accounting": {
        "depreciation": {"months": 50},
        "income_tax_rate": 0.25,
        "vat": {"output": 0.06, "equipment": 0.13},
    },
}


@pytest.fixture
def one_node() -> dict:
    """A fresh copy to change."""
    return copy.deepcopy(ONE_NODE)


# ------------------------------------------------------------------------------ a leased fleet (DB)

T0 = datetime(2025, 12, 1, tzinfo=UTC)


@dataclass
class Leased:
    """Nodes N1, N2 (8×H100, RMB 2.3M each, bought 2025-01-01, in service from 2025-12-01) secure lease
    LX of lessor X (RMB 1.2M, 6%, 12 monthly rents in arrears from 2026-01-15); N3 secures LY of lessor
    Y. Contract A (8 GPUs, RMB 70,000 a month, all of 2026) runs on N1."""

    site: int
    nodes: dict[str, int]
    contract: Any
    lease_x: int
    lease_y: int


@pytest.fixture
def leased(db, world) -> Leased:
    from computelease.allocation.models import Allocation
    from computelease.auth.core import SYSTEM
    from computelease.contracts import service as contracts
    from computelease.contracts.schemas import ContractIn, TransitionIn
    from computelease.finance import service as finance
    from computelease.finance.schemas import LeaseIn, TermsIn
    from computelease.fleet import service as fleet
    from computelease.fleet.models import SiteKind
    from computelease.fleet.schemas import NodeIn, SiteIn

    with db.transaction(actor="test") as s:
        site = fleet.create_site(
            s,
            SiteIn(
                code="qy-1",
                name="庆阳智算中心",
                kind=SiteKind.own_center,
                city="庆阳",
                pue=Decimal("1.25"),
                power_price_per_kwh=Decimal("0.4500"),
                rack_price_per_month=Decimal("8000.00"),
            ),
        )
        nodes = {}
        for serial in ("N1", "N2", "N3"):
            node = fleet.create_node(
                s,
                NodeIn(
                    serial=serial,
                    sku_id="nvidia-hgx-h100-8gpu",
                    site_id=site.id,
                    fabric="ib-a",
                    purchase_cost=Decimal("2300000.00"),
                    purchase_date=date(2025, 1, 1),
                    state_since=T0 - timedelta(days=3),
                ),
            )
            for i, state in enumerate(("delivered", "accepted", "in_service")):
                fleet.transition(s, SYSTEM, node.id, state, at=T0 + timedelta(hours=i))
            nodes[serial] = node.id
        contract = contracts.create_contract(
            s,
            SYSTEM,
            ContractIn(
                customer_id=world.customer_a.id,
                name="Contract A own",
                capacity_unit="gpus",
                capacity="8",
                accelerator_model="nvidia-h100-sxm",
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 31),
                pricing="monthly_fee",
                price="70000.00",
            ),
        )
        contracts.transition(s, SYSTEM, contract.id, TransitionIn(to="signed", at=T0))
        s.add(
            Allocation(
                node_id=nodes["N1"],
                contract_id=contract.id,
                start_at=contract.starts_at,
                end_at=contract.ends_at,
            )
        )
        terms = TermsIn(principal="1200000", annual_rate="0.06", months="12", start="2026-01-15")
        lx = finance.create_lease(
            s,
            SYSTEM,
            LeaseIn(
                code="LX-1",
                kind="direct",
                lessor_id=world.lessor_x.id,
                lessee="Lessee X own",
                terms=terms,
                node_ids=[nodes["N1"], nodes["N2"]],
            ),
        )
        ly = finance.create_lease(
            s,
            SYSTEM,
            LeaseIn(
                code="LY-1",
                kind="direct",
                lessor_id=world.lessor_y.id,
                lessee="Lessee Y FOREIGN-TO-X",
                terms=terms,
                node_ids=[nodes["N3"]],
            ),
        )
        return Leased(site.id, nodes, contract, lx.id, ly.id)


@pytest.fixture
def no_billing(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if billing were not installed: earned revenue falls back to the contracted figure."""
    import sys

    monkeypatch.setitem(sys.modules, "computelease.billing.service", None)
