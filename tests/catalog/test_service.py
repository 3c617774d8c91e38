"""Operators' own catalog entries: stored whole, merged with the shipped catalog, validated as one."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from computelease.auth.core import SYSTEM
from computelease.catalog import service
from computelease.catalog.core import CatalogInvalid, UnknownFigure, load_catalog
from computelease.errors import Conflict, NotFound

ACME = {
    "id": "acme-x1",
    "vendor": "Acme",
    "name": "X1 accelerator",
    "origin": "domestic",
    "source": "vendor briefing, 2025-05",
    "confidence": "third-party",
    "memory_gb": {"value": 96, "source": "vendor briefing", "confidence": "third-party"},
    "dense": {
        "bf16": {"value": "312.7", "source": "our GEMM run, cuBLAS-like stack", "confidence": "datasheet"},
        "fp16": {
            "low": 250,
            "high": 380,
            "source": "two brochures",
            "confidence": "weak",
            "note": "disputed",
        },
    },
}
ACME_SKU = {
    "id": "acme-x1-4card",
    "name": "4× X1 server",
    "accelerator_id": "acme-x1",
    "gpus_per_node": 4,
    "source": "our purchase order",
    "confidence": "datasheet",
    "default": True,
    "prices": [{"amount": "600000", "currency": "CNY", "source": "PO 2025-117", "confidence": "datasheet"}],
}


def test_a_custom_accelerator_is_stored_whole_and_merged(db) -> None:
    with db.transaction("test") as s:
        service.create_accelerator(s, ACME)
        service.create_sku(s, ACME_SKU)
    with db.transaction("test") as s:
        catalog = service.catalog(s)
        acme = catalog.accelerator("acme-x1")
        assert acme.custom is True and acme.tflops("bf16").value == Decimal("312.7")
        assert acme.tflops("fp16").value is None and acme.tflops("fp16").low == 250
        assert catalog.sku("acme-x1-4card").prices[0].amount == Decimal("600000")
        assert len(catalog.accelerators) == len(load_catalog().accelerators) + 1
        conversion = service.convert_capacity(s, SYSTEM, model="acme-x1", pflops=Decimal("1.2508"))
        assert (conversion.gpus, conversion.nodes, conversion.sku) == (4, 1, "acme-x1-4card")
        with pytest.raises(UnknownFigure, match=r"fp16 dense TFLOPS of acme-x1 .*250–380"):
            service.convert_capacity(s, SYSTEM, model="acme-x1", pflops=1, precision="fp16")
        assert [a.id for a in service.accelerators(s, SYSTEM, custom=True)] == ["acme-x1"]
        assert [a.id for a in service.accelerators(s, SYSTEM, origin="domestic", vendor="acme")] == [
            "acme-x1"
        ]


def test_an_operators_default_sku_wins_over_the_shipped_one(session) -> None:
    sku = ACME_SKU | {"id": "our-h100-4gpu", "accelerator_id": "nvidia-h100-sxm", "prices": []}
    service.create_sku(session, sku)
    conversion = service.convert_capacity(session, SYSTEM, model="nvidia-h100-sxm", gpus=10)
    assert (conversion.sku, conversion.nodes) == ("our-h100-4gpu", 3)
    with pytest.raises(CatalogInvalid, match="a second default SKU for nvidia-h100-sxm"):
        service.create_sku(session, sku | {"id": "our-h100-2gpu", "gpus_per_node": 2})


def test_bad_entries_are_refused_with_what_to_fix(session) -> None:
    for entry, error, message in (
        ({"id": "nvidia-h100-sxm"}, Conflict, "already a shipped catalog entry"),
        ({"id": "Bad Id"}, CatalogInvalid, "id must be lowercase"),
        (
            {"dense": {"bf16": {"value": -1, "source": "x", "confidence": "datasheet"}}},
            CatalogInvalid,
            "positive",
        ),
        ({"memory_gb": {"value": 80, "confidence": "guess"}}, CatalogInvalid, "source is missing"),
        ({"bf61": 3}, CatalogInvalid, "unknown key 'bf61'"),
    ):
        with pytest.raises(error, match=message):
            service.create_accelerator(session, ACME | entry)
    assert service.accelerators(session, SYSTEM, custom=True) == []


def test_every_problem_is_listed_at_once(session) -> None:
    bad = copy.deepcopy(ACME)
    bad["origin"] = "martian"
    bad["dense"]["bf16"]["confidence"] = "rumour"
    with pytest.raises(CatalogInvalid) as info:
        service.create_accelerator(session, bad)
    assert len(info.value.problems) == 2 and info.value.status == 422


def test_a_sku_needs_a_known_accelerator(session) -> None:
    with pytest.raises(CatalogInvalid, match="accelerator_id 'acme-x1' is not in the catalog"):
        service.create_sku(session, ACME_SKU)


def test_removal_rules(session) -> None:
    from datetime import date

    from computelease.fleet import service as fleet
    from computelease.fleet.models import SiteKind
    from computelease.fleet.schemas import NodeIn, SiteIn

    service.create_accelerator(session, ACME)
    service.create_sku(session, ACME_SKU)
    with pytest.raises(Conflict, match="shipped with computelease"):
        service.delete_accelerator(session, "nvidia-h100-sxm")
    with pytest.raises(NotFound):
        service.delete_sku(session, "no-such-sku")
    with pytest.raises(Conflict, match="used by the SKUs acme-x1-4card"):
        service.delete_accelerator(session, "acme-x1")
    with pytest.raises(Conflict, match="already a custom catalog entry"):
        service.create_sku(session, ACME_SKU)
    site = fleet.create_site(
        session,
        SiteIn(
            code="t", name="t", kind=SiteKind.colocation, city="上海", pue="1.5", power_price_per_kwh="0.8"
        ),
    )
    node = NodeIn(
        serial="ACME-1",
        sku_id="acme-x1-4card",
        site_id=site.id,
        purchase_cost=Decimal("600000.00"),
        purchase_date=date(2025, 5, 1),
    )
    assert len(fleet.create_node(session, node).gpus) == 4
    with pytest.raises(Conflict, match="used by nodes"):
        service.delete_sku(session, "acme-x1-4card")
    fleet.delete_node(session, SYSTEM, fleet.get_node_by_serial(session, SYSTEM, "ACME-1").id)
    service.delete_sku(session, "acme-x1-4card")
    service.delete_accelerator(session, "acme-x1")
    assert service.accelerators(session, SYSTEM, custom=True) == []
