"""`computelease sla report` and `computelease telemetry sweep`, run in-process."""

from __future__ import annotations

import json

from tests.sla.conftest import outage, served_contract

from computelease.contracts.models import Customer, Segment


def test_sla_report_json_and_table(cli):
    with cli.db.transaction("test") as s:
        customer = Customer(name="智源", segment=Segment.model_maker)
        s.add(customer)
        s.flush()
        served = served_contract(s, customer.id)
        outage(s)
    code, out, err = cli(
        "sla", "report", "--contract", str(served.contract_id), "--period", "2026-10", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["availability_pct"] == "99.8319" and data["credit"] == "7000.00" and data["currency"] == "CNY"
    assert len(data["evidence"]) == 1
    code, out, err = cli("sla", "report", "--contract", str(served.contract_id), "--period", "2026-10")
    assert code == 0, err
    assert "99.8319" in out and "TN-1#3" in out
    code, out, err = cli("sla", "report", "--contract", "999", "--period", "2026-10")
    assert code != 0 and "999" in err


def test_telemetry_sweep(cli):
    with cli.db.transaction("test") as s:
        customer = Customer(name="智源", segment=Segment.model_maker)
        s.add(customer)
        s.flush()
        served_contract(s, customer.id)
        outage(s)  # its last heartbeat is from October: long silent
    code, out, err = cli("telemetry", "sweep")
    assert code == 0, err
    assert "1 node(s) marked down: TN-1" in out
    code, out, err = cli("telemetry", "sweep")
    assert "0 node(s) marked down" in out
