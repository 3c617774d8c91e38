"""`computelease dashboard`, run in-process."""

from __future__ import annotations

import json

from tests.sla.conftest import served_contract

from computelease.contracts.models import Customer, Segment


def test_dashboard_table_and_json(cli):
    with cli.db.transaction("test") as s:
        customer = Customer(name="智源", segment=Segment.model_maker)
        s.add(customer)
        s.flush()
        served = served_contract(s, customer.id)
    code, out, err = cli("dashboard", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["role"] == "admin" and [c["contract_id"] for c in data["contracts"]] == [served.contract_id]
    in_service = next(f for f in data["fleet"] if f["state"] == "in_service")
    code, out, err = cli("dashboard")
    assert code == 0, err
    assert f"{in_service['gpus']:,} GPUs in service" in out and "net revenue" in out
