"""Finance fixtures: a few nodes (made through the fleet's service), and for each of the two lessors of
``world`` a lease secured by one node and a credit line, so every test can check that one lessor never
sees the other's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from computelease.app import create_app
from computelease.auth.core import SYSTEM
from computelease.config import Settings
from computelease.db import Database
from computelease.finance import service
from computelease.finance.schemas import CreditLineIn, LeaseIn, TermsIn
from computelease.fleet import service as fleet
from computelease.fleet.models import SiteKind
from computelease.fleet.schemas import NodeIn, SiteIn

# A year of monthly rents from 2025-01-15: every one falls due long before the tests run, so tests
# that judge status pass an explicit as-of date.
START = date(2025, 1, 15)
FIRST_RENT = Decimal("103279.72")  # 1,200,000 at 6% over 12 months, in arrears (PMT rounded half-up)


def terms_in(**overrides: Any) -> TermsIn:
    values: dict[str, Any] = {
        "principal": "1200000",
        "annual_rate": "0.06",
        "months": "12",
        "start": "2025-01-15",
    }
    return TermsIn(**(values | overrides))


def lease_in(lessor_id: int, code: str, **overrides: Any) -> LeaseIn:
    values: dict[str, Any] = {
        "code": code,
        "kind": "direct",
        "lessor_id": lessor_id,
        "lessee": f"Lessee of {code}",
        "terms": terms_in(),
    }
    return LeaseIn(**(values | overrides))


@dataclass
class Books:
    nodes: dict[str, int]
    lease_x: int
    lease_y: int
    line_x: int
    line_y: int


def make_nodes(session, serials: tuple[str, ...]) -> dict[str, int]:
    site = fleet.create_site(
        session,
        SiteIn(
            code="qy-1",
            name="庆阳智算中心",
            kind=SiteKind.own_center,
            city="庆阳",
            pue=Decimal("1.20"),
            power_price_per_kwh=Decimal("0.3500"),
        ),
    )
    out = {}
    for serial in serials:
        node = fleet.create_node(
            session,
            NodeIn(
                serial=serial,
                sku_id="nvidia-hgx-h20-8gpu" if serial.startswith("Z") else "nvidia-hgx-h100-8gpu",
                site_id=site.id,
                purchase_cost=Decimal("1150000.00") if serial.startswith("Z") else Decimal("2300000.00"),
                purchase_date=date(2024, 12, 1),
                state_since=datetime(2024, 12, 1, tzinfo=UTC),
            ),
        )
        out[serial] = node.id
    return out


@pytest.fixture
def books(db: Database, world) -> Books:
    """Nodes H1, H2, H3 (H100) and Z1 (H20); lease LX-1 of lessor X on H1, LY-1 of lessor Y on H2;
    a credit line for each lessor."""
    with db.transaction(actor="test") as s:
        nodes = make_nodes(s, ("H1", "H2", "H3", "Z1"))
        lx = service.create_lease(
            s, SYSTEM, lease_in(world.lessor_x.id, "LX-1", lessee="Lessee X own", node_ids=[nodes["H1"]])
        )
        ly = service.create_lease(
            s,
            SYSTEM,
            lease_in(world.lessor_y.id, "LY-1", lessee="Lessee Y FOREIGN-TO-X", node_ids=[nodes["H2"]]),
        )
        lines = [
            service.create_credit_line(
                s,
                SYSTEM,
                CreditLineIn(
                    lessor_id=lessor.id,
                    name=name,
                    limit=Decimal("50000000.00"),
                    drawn=Decimal("10000000.00"),
                    rate=Decimal("0.045"),
                    expires_on=date(2027, 12, 31),
                ),
            )
            for lessor, name in ((world.lessor_x, "Line X own"), (world.lessor_y, "Line Y FOREIGN-TO-X"))
        ]
        return Books(nodes, lx.id, ly.id, lines[0].id, lines[1].id)


@pytest.fixture(scope="module")
def finance_app(database: Database) -> FastAPI:
    """One app per module and backend: building an app costs more than most of these tests."""
    settings = Settings(
        database_url="sqlite://", secret_key="test-secret-key-" + "x" * 32, default_locale="en"
    )
    return create_app(settings, database)


@pytest.fixture
def api(finance_app: FastAPI, db: Database) -> Iterator[TestClient]:
    """A client with its own cookies on the module's app, over a database emptied after the test."""
    with TestClient(finance_app) as c:
        yield c
