"""Fleet fixtures: two sites with racks and a handful of nodes, built through the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from computelease.auth.core import SYSTEM
from computelease.db import Database
from computelease.fleet import service
from computelease.fleet.core import NodeState
from computelease.fleet.models import SiteKind
from computelease.fleet.schemas import GpuIn, NodeIn, RackIn, SiteIn

T0 = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


def site_in(code: str = "qy-1", **overrides: Any) -> SiteIn:
    values: dict[str, Any] = {
        "code": code,
        "name": f"庆阳智算中心 {code}",
        "kind": SiteKind.own_center,
        "city": "庆阳",
        "pue": Decimal("1.20"),
        "power_price_per_kwh": Decimal("0.3512"),
        "racks": [RackIn(name="A01", power_kw=Decimal("25")), RackIn(name="A02", power_kw=Decimal("12"))],
    }
    return SiteIn(**(values | overrides))


def node_in(site_id: int, serial: str = "NEW", **overrides: Any) -> NodeIn:
    values: dict[str, Any] = {
        "serial": serial,
        "sku_id": "nvidia-hgx-h100-8gpu",
        "site_id": site_id,
        "fabric": "ib-a",
        "purchase_cost": Decimal("2300000.00"),
        "purchase_date": date(2025, 2, 1),
        "supplier": "浪潮信息",
        "state_since": T0,
    }
    return NodeIn(**(values | overrides))


@dataclass
class Fleet:
    own: int
    colo: int
    racks: dict[str, int]
    nodes: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def fleet(db: Database) -> Fleet:
    """Site qy-1 (own centre, racks A01/A02) with nodes N1 (in service, GPU UUIDs), N2 (faulty), N3
    (ordered, Ascend); site sh-1 (colocation) with node S1 (H20, in service)."""
    with db.transaction(actor="test") as s:
        own = service.create_site(s, site_in())
        colo = service.create_site(
            s,
            site_in(
                "sh-1",
                name="上海临港IDC",
                kind=SiteKind.colocation,
                city="上海",
                pue=Decimal("1.50"),
                rack_price_per_month=Decimal("9000.00"),
                racks=[],
            ),
        )
        racks = {r.name: r.id for r in own.racks}
        out = Fleet(own.id, colo.id, racks)
        n1 = service.create_node(
            s,
            node_in(
                own.id,
                "N1",
                rack_id=racks["A01"],
                gpus=[GpuIn(index=i, uuid=f"GPU-n1-{i}", serial=f"165{i:010d}") for i in range(8)],
            ),
        )
        n2 = service.create_node(s, node_in(own.id, "N2", rack_id=racks["A01"], fabric="ib-b"))
        n3 = service.create_node(
            s,
            node_in(
                own.id,
                "N3",
                sku_id="huawei-ascend-910b-8card",
                fabric=None,
                purchase_cost=Decimal("1300000.50"),
                state=NodeState.ordered,
                note="=cmd|' /C calc'!A0",
            ),
        )
        s1 = service.create_node(
            s,
            node_in(
                colo.id, "S1", sku_id="nvidia-hgx-h20-8gpu", fabric="sh-ib", purchase_cost=Decimal("1150000")
            ),
        )
        for node, steps in (
            (n1, [("delivered", 24), ("accepted", 48), ("in_service", 72)]),
            (n2, [("delivered", 24), ("accepted", 48), ("in_service", 72), ("faulty", 96)]),
            (s1, [("delivered", 12), ("accepted", 36), ("in_service", 40)]),
        ):
            for state, hours in steps:
                service.transition(s, SYSTEM, node.id, state, at=T0 + timedelta(hours=hours), reason="test")
        out.nodes = {"N1": n1.id, "N2": n2.id, "N3": n3.id, "S1": s1.id}
    return out


@pytest.fixture
def build():
    """The helpers above, for tests (test modules are not importable from one another)."""

    class Build:
        t0 = T0
        node = staticmethod(node_in)
        site = staticmethod(site_in)

    return Build


# The command line on a throwaway SQLite file, migrated once per session and copied per test.
