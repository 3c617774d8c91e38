"""A contract for 8 H100 GPUs through 2026 served by node TN-1, with an EC2-like SLA policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from tests.telemetry.conftest import T0, batch, beat, build

from computelease.allocation.models import Allocation
from computelease.auth.core import SYSTEM
from computelease.contracts import service as contracts
from computelease.contracts.schemas import ContractIn, SlaPolicyIn, TransitionIn
from computelease.db import Database
from computelease.telemetry import service as telemetry

H = timedelta(hours=1)


@dataclass
class Served:
    contract_id: int
    node_id: int


def served_contract(s: Any, customer_id: int) -> Served:
    fleet = build(s)
    policy = contracts.create_sla_policy(
        s,
        SlaPolicyIn(
            name="EC2-like",
            target_pct="99.99",
            credit_tiers=[{"below": "99.99", "credit_pct": "10"}, {"below": "99", "credit_pct": "30"}],
            maintenance_allowance_hours="4",
            notice_hours="72",
        ),
    )
    contract = contracts.create_contract(
        s,
        SYSTEM,
        ContractIn(
            customer_id=customer_id,
            name="Contract A own",
            capacity_unit="gpus",
            capacity="8",
            accelerator_model="nvidia-h100-sxm",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            pricing="monthly_fee",
            price="70000.00",
            sla_policy_id=policy.id,
        ),
    )
    contracts.transition(
        s, SYSTEM, contract.id, TransitionIn(to="signed", at=datetime(2025, 12, 1, tzinfo=UTC))
    )
    node_id = fleet.nodes["TN-1"]
    s.add(
        Allocation(
            node_id=node_id, contract_id=contract.id, start_at=contract.starts_at, end_at=contract.ends_at
        )
    )
    s.flush()
    return Served(contract.id, node_id)


def outage(s: Any) -> None:
    """GPU 3 of TN-1 has a pending row remap for 10 hours on 10 October."""
    telemetry.ingest(
        s,
        SYSTEM,
        batch(
            "TN-1",
            beat(1, T0),
            beat(2, T0 + 8 * H, g3={"remap_pending": True}),
            beat(3, T0 + 18 * H),
        ),
    )


@pytest.fixture
def served(db: Database, world) -> Served:
    with db.transaction(actor="test") as s:
        out = served_contract(s, world.customer_a.id)
        outage(s)
    return out
