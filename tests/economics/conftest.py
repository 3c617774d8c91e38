"""Scenarios for the economics tests: the shipped examples and a one-node business small enough to check
by hand (see test_projection.py's golden test)."""

from __future__ import annotations

import copy
from pathlib import Path

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
