"""Demo fleet: an own AI compute centre and a colocation IDC, ~250 eight-GPU nodes with a history.

Figures come from shared/design/DOMAIN.md where it has them; the rest are labelled assumptions.
Everything is derived from a fixed random seed and the current time, so the demo always looks
current and two runs build the same fleet.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from computelease.auth.core import SYSTEM
from computelease.catalog import service as catalog_service
from computelease.fleet import service
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node, Site, SiteKind
from computelease.fleet.schemas import GpuIn, NodeIn, RackIn, SiteIn
from computelease.kit.time import DEFAULT_TZ, utcnow

S = NodeState


@dataclass(frozen=True)
class Batch:
    site: str
    sku: str
    fabric: str
    nodes: int
    cost: Decimal
    supplier: str
    ordered_days_ago: int
    serial_prefix: str


# Purchase cost per 8-GPU server, RMB:
# - H100: ≈2.3M per 8-card server (DOMAIN.md, trade blog).
# - H800: the same board with a capped NVLink, sold in China at about the H100's price; 2.2M assumed.
# - H20: about 15% of an H100's BF16 compute but the same HBM-heavy board; ≈1.15M assumed (half an H100).
# - Ascend 910B: no public list price in DOMAIN.md; 1.3M assumed for an 8-NPU training server.
BATCHES = (
    Batch(
        "qy-1",
        "nvidia-hgx-h100-8gpu",
        "qy-ib-a",
        48,
        Decimal("2300000.00"),
        "浪潮信息 (示例)",
        300,
        "QYA-H100",
    ),
    Batch(
        "qy-1", "nvidia-hgx-h100-8gpu", "qy-ib-b", 48, Decimal("2300000.00"), "超聚变 (示例)", 210, "QYB-H100"
    ),
    Batch(
        "qy-1",
        "nvidia-hgx-h800-8gpu",
        "qy-ib-c",
        64,
        Decimal("2200000.00"),
        "浪潮信息 (示例)",
        170,
        "QYC-H800",
    ),
    Batch(
        "qy-1",
        "huawei-ascend-910b-8card",
        "qy-hccs-a",
        40,
        Decimal("1300000.00"),
        "华为 (示例)",
        130,
        "QYD-910B",
    ),
    Batch(
        "sh-1", "nvidia-hgx-h20-8gpu", "sh-ib-a", 40, Decimal("1150000.00"), "新华三 (示例)", 100, "SHA-H20"
    ),
    # A batch still arriving: some delivered, some through acceptance, none in service yet.
    Batch("sh-1", "nvidia-hgx-h20-8gpu", "sh-ib-a", 8, Decimal("1150000.00"), "新华三 (示例)", 20, "SHB-H20"),
)
NODES_PER_RACK = 2  # ≈10.2 kW peak per 8×H100 node (DOMAIN.md): two per 25 kW rack, one spare feed


def _sites(session: Session) -> dict[str, Site]:
    own = service.create_site(
        session,
        SiteIn(
            code="qy-1",
            name="庆阳智算中心 (示例)",
            kind=SiteKind.own_center,
            city="庆阳",
            # Self-built, new, in a cool dry climate: within DOMAIN.md's 1.1–1.3 for efficient centres.
            pue=Decimal("1.20"),
            # Assumption (not in DOMAIN.md): a large-industry tariff in Gansu's 东数西算 hub.
            power_price_per_kwh=Decimal("0.3500"),
            rack_price_per_month=Decimal("0.00"),  # own building: racks cost through depreciation, not rent
            racks=[RackIn(name=f"A{i:02d}", power_kw=Decimal("25")) for i in range(1, 101)],
            note="示例数据",
        ),
    )
    colo = service.create_site(
        session,
        SiteIn(
            code="sh-1",
            name="上海临港IDC (示例)",
            kind=SiteKind.colocation,
            city="上海",
            pue=Decimal("1.50"),  # DOMAIN.md: 1.5–1.8 for enterprise colocation
            # Assumptions (not in DOMAIN.md): commercial tariff in Shanghai, and the rent of a
            # high-power AI rack in a third-party IDC.
            power_price_per_kwh=Decimal("0.8500"),
            rack_price_per_month=Decimal("9000.00"),
            racks=[RackIn(name=f"C{i:02d}", power_kw=Decimal("22")) for i in range(1, 25)],
            note="示例数据",
        ),
    )
    return {own.code: own, colo.code: colo}


def _gpus(rng: random.Random, nvidia: bool, count: int) -> list[GpuIn]:
    # NVIDIA GPUs report a UUID (nvidia-smi -L); Ascend NPUs only a board serial.
    return [
        GpuIn(
            index=i,
            uuid=f"GPU-{uuid.UUID(int=rng.getrandbits(128), version=4)}" if nvidia else None,
            serial=f"{1650000000000 + rng.randrange(10**9):013d}",
        )
        for i in range(count)
    ]


def _history(
    rng: random.Random, batch: Batch, index: int, ordered_at: datetime, now: datetime
) -> list[tuple[datetime, NodeState, str]]:
    """The node's life as (at, state, reason) after ``ordered``, every time before ``now``."""
    t = ordered_at
    steps: list[tuple[datetime, NodeState, str]] = []
    delivered = t + timedelta(
        days=rng.randint(14, 35) if batch.ordered_days_ago > 40 else 14, hours=rng.randrange(10)
    )
    if delivered >= now:
        return steps
    steps.append((delivered, S.delivered, "delivered to site"))
    accepted = delivered + timedelta(days=rng.randint(3, 8), hours=rng.randrange(10))
    if accepted >= now or (batch.ordered_days_ago <= 40 and index % 2 == 0):
        return steps
    steps.append((accepted, S.accepted, "acceptance test passed"))
    if batch.ordered_days_ago <= 40:
        return steps
    t = accepted + timedelta(days=rng.randint(1, 4), hours=rng.randrange(10))
    steps.append((t, S.in_service, "put into service"))
    # About one node in seven had a fault and came back (DOMAIN.md: GPU and HBM faults dominate).
    if rng.random() < 0.15:
        fault = t + timedelta(days=rng.randint(5, 40), hours=rng.randrange(24))
        back = fault + timedelta(days=rng.randint(1, 6), hours=rng.randrange(24))
        if back < now - timedelta(days=3):
            steps.append(
                (fault, S.faulty, rng.choice(("XID 79: GPU fell off the bus", "HBM uncorrectable ECC")))
            )
            steps.append(
                (fault + timedelta(hours=rng.randint(2, 20)), S.repair, "GPU module sent for replacement")
            )
            steps.append((back, S.in_service, "repaired and re-tested"))
    return steps


# The node numbers (per batch) left in trouble now, and how.
CURRENT_TROUBLE = {
    ("QYA-H100", 7): (S.faulty, "XID 79: GPU fell off the bus"),
    ("QYB-H100", 12): (S.faulty, "NVLink errors on GPU 3"),
    ("QYC-H800", 30): (S.faulty, "InfiniBand link flapping"),
    ("QYA-H100", 21): (S.repair, "HBM uncorrectable ECC; board with the vendor"),
    ("QYD-910B", 5): (S.repair, "NPU module replaced under warranty"),
    ("QYC-H800", 2): (S.maintenance, "announced firmware upgrade"),
    ("QYC-H800", 3): (S.maintenance, "announced firmware upgrade"),
    ("SHA-H20", 9): (S.maintenance, "PDU replacement in rack"),
}


def seed(session: Session, world: Any) -> None:
    """Adds the demo fleet; leaves ``world.extra["fleet"] = {"sites": [...], "nodes": [...]}``."""
    rng = random.Random(20250209)  # the article's date
    now = utcnow()
    catalog = catalog_service.catalog(session)
    sites = _sites(session)
    racks = {code: list(site.racks) for code, site in sites.items()}
    used = dict.fromkeys(sites, 0)
    nodes: list[Node] = []
    for batch in BATCHES:
        sku = catalog.sku(batch.sku)
        site = sites[batch.site]
        for i in range(1, batch.nodes + 1):
            ordered_at = now - timedelta(days=batch.ordered_days_ago, hours=rng.randrange(8))
            rack = racks[batch.site][used[batch.site] // NODES_PER_RACK]
            used[batch.site] += 1
            node = service.create_node(
                session,
                NodeIn(
                    serial=f"{batch.serial_prefix}-{i:04d}",
                    sku_id=sku.id,
                    site_id=site.id,
                    rack_id=rack.id,
                    fabric=batch.fabric,
                    purchase_cost=batch.cost,
                    currency="CNY",
                    purchase_date=ordered_at.astimezone(DEFAULT_TZ).date(),
                    supplier=batch.supplier,
                    state=S.ordered,
                    state_since=ordered_at,
                    gpus=_gpus(rng, sku.accelerator_id.startswith("nvidia"), sku.gpus_per_node),
                ),
                catalog=catalog,
                now=now,
            )
            for at, state, reason in _history(rng, batch, i, ordered_at, now):
                service.transition(session, SYSTEM, node.id, state, at=at, reason=reason, now=now)
            trouble = CURRENT_TROUBLE.get((batch.serial_prefix, i))
            if trouble and node.state is S.in_service:
                state, reason = trouble
                at = max(node.state_since, now - timedelta(hours=rng.randint(2, 60)))
                service.transition(session, SYSTEM, node.id, state, at=at, reason=reason, now=now)
            nodes.append(node)
    world.extra["fleet"] = {"sites": list(sites.values()), "nodes": nodes}
