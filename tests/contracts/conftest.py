"""Fixtures for the contract tests: SLA policies and contracts for the two customers of ``world``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from argon2 import PasswordHasher

from computelease.auth.core import SYSTEM
from computelease.contracts import service
from computelease.contracts.schemas import ContractIn, CreditTierIn, SlaPolicyIn


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2 at production cost takes most of a page test's time on a small machine; the rules tested
    # here do not depend on it.
    monkeypatch.setattr(
        "computelease.auth.core._hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def contract_terms(customer_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid draft: 8 H100 GPUs for calendar 2026 at ¥70,000.00 a month."""
    terms: dict[str, Any] = {
        "customer_id": customer_id,
        "name": "8 × H100, 2026",
        "capacity_unit": "gpus",
        "capacity": Decimal("8"),
        "accelerator_model": "nvidia-h100-sxm",
        "start_date": date(2026, 1, 1),
        "end_date": date(2026, 12, 31),
        "pricing": "monthly_fee",
        "price": Decimal("70000.00"),
    }
    terms.update(overrides)
    return terms


@dataclass
class Deals:
    policy_a: Any
    policy_b: Any
    contract_a: Any
    contract_b: Any


@pytest.fixture
def deals(db, world) -> Deals:
    """A's contract under "SLA A own"; B's under "SLA B FOREIGN-TO-A", which A must never see."""
    with db.transaction("test") as s:
        tiers = [CreditTierIn(below=Decimal("99.9"), credit_pct=Decimal("10"))]
        pa = service.create_sla_policy(
            s, SlaPolicyIn(name="SLA A own", target_pct=Decimal("99.9"), credit_tiers=tiers)
        )
        pb = service.create_sla_policy(s, SlaPolicyIn(name="SLA B FOREIGN-TO-A", target_pct=Decimal("99.5")))
        ca = service.create_contract(
            s,
            SYSTEM,
            ContractIn(**contract_terms(world.customer_a.id, name="Contract A own", sla_policy_id=pa.id)),
        )
        cb = service.create_contract(
            s,
            SYSTEM,
            ContractIn(
                **contract_terms(world.customer_b.id, name="Contract B FOREIGN-TO-A", sla_policy_id=pb.id)
            ),
        )
    return Deals(pa, pb, ca, cb)
