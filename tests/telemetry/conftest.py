"""A site with in-service 8-GPU H100 nodes, and a builder for heartbeat batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from computelease.db import Database
from computelease.fleet import service as fleet
from computelease.fleet.models import SiteKind
from computelease.fleet.schemas import NodeIn, SiteIn

T0 = datetime(2026, 10, 10, 0, 0, tzinfo=UTC)
SINCE = datetime(2026, 9, 1, tzinfo=UTC)


@dataclass
class Fleet:
    site: int
    nodes: dict[str, int]


def build(s: Any, serials: tuple[str, ...] = ("TN-1",)) -> Fleet:
    site = fleet.create_site(
        s,
        SiteIn(
            code="tel-1",
            name="Telemetry site",
            kind=SiteKind.own_center,
            city="庆阳",
            pue=Decimal("1.2"),
            power_price_per_kwh=Decimal("0.35"),
        ),
    )
    nodes = {}
    for serial in serials:
        node = fleet.create_node(
            s,
            NodeIn(
                serial=serial,
                sku_id="nvidia-hgx-h100-8gpu",
                site_id=site.id,
                fabric="ib-t",
                purchase_cost=Decimal("2300000"),
                purchase_date=date(2025, 11, 1),
                state="in_service",
                state_since=SINCE,
            ),
        )
        nodes[serial] = node.id
    return Fleet(site.id, nodes)


@pytest.fixture
def tfleet(db: Database) -> Fleet:
    with db.transaction(actor="test") as s:
        return build(s)


def gpu(index: int, **readings: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "index": index,
        "uuid": f"GPU-{index:04d}",
        "utilization_pct": 97.0,
        "power_w": 600.5,
        "temperature_c": 61.0,
        "ecc_dbe_volatile": 0,
        "ecc_dbe_aggregate": 0,
        "remap_pending": False,
        "remap_failed": False,
        "xids": [],
    }
    return base | readings


def beat(seq: int, at: datetime, *, gpus: int = 8, interval_s: int = 30, **per_gpu: dict) -> dict[str, Any]:
    """A heartbeat; ``per_gpu`` maps ``g3`` to readings that override GPU 3's."""
    return {
        "seq": seq,
        "at": at.isoformat(),
        "interval_s": interval_s,
        "gpus": [gpu(i, **per_gpu.get(f"g{i}", {})) for i in range(gpus)],
    }


def batch(node: str, *heartbeats: dict[str, Any]) -> dict[str, Any]:
    return {
        "node": node,
        "agent": {"version": "0.1.0", "backend": "simulated", "host": "h1"},
        "heartbeats": list(heartbeats),
    }


def every(seconds: int, start: datetime = T0, n: int = 1, first_seq: int = 1) -> list[dict[str, Any]]:
    return [beat(first_seq + k, start + timedelta(seconds=seconds * k)) for k in range(n)]
