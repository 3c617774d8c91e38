"""`computelease allocation plan|list` and `computelease occupancy`, run in-process."""

from __future__ import annotations

import json
from datetime import date

from tests.allocation.conftest import build_fleet, sign

from computelease.auth.core import SYSTEM
from computelease.contracts import service as contracts
from computelease.contracts.models import Customer, Segment
from computelease.contracts.schemas import ContractIn


def test_plan_list_and_occupancy(cli) -> None:
    with cli.db.transaction("test") as s:
        build_fleet(s)
        customer = Customer(name="智源", segment=Segment.model_maker)
        s.add(customer)
        s.flush()
        contract = contracts.create_contract(
            s,
            SYSTEM,
            ContractIn(
                customer_id=customer.id,
                name="C-16",
                capacity_unit="gpus",
                capacity="16",
                accelerator_model="nvidia-h100-sxm",
                placement="same_fabric",
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 31),
                pricing="monthly_fee",
                price="100000.00",
            ),
        )
        sign(s, contract.id)
        contract_id = contract.id

    code, out, _ = cli("allocation", "plan", "--as-of", "2026-01-01", "--dry-run", "--json")
    assert code == 0
    preview = json.loads(out)
    assert preview["dry_run"] is True and len(preview["assignments"]) == 2
    # same_fabric: both nodes from ib-a, the only fabric with two.
    assert {a["node_serial"][0] for a in preview["assignments"]} == {"A"}
    assert json.loads(cli("allocation", "list", "--json")[1]) == []

    code, out, _ = cli("allocation", "plan", "--as-of", "2026-01-01")
    assert code == 0 and "allocated 2 node(s); 0 contract(s) short" in out
    rows = json.loads(cli("allocation", "list", "--contract", str(contract_id), "--json")[1])
    assert len(rows) == 2 and {r["contract_name"] for r in rows} == {"C-16"}

    code, out, _ = cli("occupancy", "--start", "2026-02-01", "--end", "2026-02-02", "--by", "site", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["key"] == "qy-1" and row["occupancy_pct"] == 50.0 and len(row["idle_nodes"]) == 2
    code, out, _ = cli("occupancy", "--start", "2026-02-01", "--end", "2026-02-02", "--by", "customer")
    assert code == 0 and "智源" in out and "100.0%" in out
    code, _, err = cli("occupancy", "--by", "planet")
    assert code == 1 and "--by must be one of" in err
