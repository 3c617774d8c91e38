"""Billing fixtures: the SLA tests' contract (8 H100s through 2026 at RMB 70,000/month, EC2-like SLA,
served by TN-1, GPU 3 down 10 hours on 10 October) for customer A, and helpers to close months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.sla.conftest import Served, outage, served_contract

from computelease.db import Database

NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def served(db: Database, world) -> Served:
    with db.transaction(actor="test") as s:
        out = served_contract(s, world.customer_a.id)
        outage(s)
    return out
