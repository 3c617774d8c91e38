"""`computelease billing ...`, run in-process on a SQLite file."""

from __future__ import annotations

import json

from tests.sla.conftest import outage, served_contract

from computelease.contracts.models import Customer, Segment


def _served(cli) -> int:
    with cli.db.transaction("test") as s:
        customer = Customer(name="智源", segment=Segment.model_maker, credit_limit="50000.00")
        s.add(customer)
        s.flush()
        served_contract(s, customer.id)
        outage(s)
        return customer.id


def test_close_json_rerun_and_show(cli, tmp_path) -> None:
    customer = _served(cli)
    code, out, err = cli("billing", "close", "--period", "2026-10", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["created"], data["adjusted"], data["unchanged"]) == (1, 0, 0)
    assert data["totals"]["CNY"] == {"net": "59433.97", "tax": "3566.03", "gross": "63000.00"}
    code, out, _ = cli("billing", "close", "--period", "2026-10", "--json")
    assert json.loads(out)["unchanged"] == 1 and json.loads(out)["created"] == 0

    code, out, err = cli("billing", "show", "CL-2026-000001")
    assert code == 0, err
    assert "sla_credit" in out and "63000.00" in out

    code, out, err = cli(
        "billing",
        "pay",
        "--customer",
        str(customer),
        "--amount",
        "63000.00",
        "--reference",
        "B-1",
        "--on",
        "2026-11-20",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["unapplied"] == "0.00"
    code, out, _ = cli("billing", "invoices", "--json")
    assert json.loads(out)[0]["status"] == "paid"

    code, out, err = cli("billing", "export", "invoices", "--out", str(tmp_path / "inv.xlsx"))
    assert code == 0 and (tmp_path / "inv.xlsx").stat().st_size > 0
    code, out, err = cli("billing", "trial-balance", "--json")
    assert code == 0 and json.loads(out)["CNY"]["cash"] == "63000.00"


def test_one_line_errors(cli) -> None:
    code, _, err = cli("billing", "close", "--period", "2026-13")
    assert code == 1 and err.count("\n") == 1 and "YYYY-MM" in err
    code, _, err = cli("billing", "show", "CL-2099-000001")
    assert code == 1 and "no invoice numbered" in err
    code, _, err = cli("billing", "pay", "--customer", "1", "--amount", "12.345", "--reference", "x")
    assert code == 1 and "to the fen" in err
    code, _, err = cli("billing", "export", "ageing", "--out", "x.pdf")
    assert code == 1 and ".csv or .xlsx" in err


KILL_MID_CLOSE = """
import os, signal, sys
from computelease.billing import service
from computelease.cli import main

real = service._create

def create_then_die(*args, **kwargs):
    real(*args, **kwargs)  # every invoice, line and posting written, not yet committed
    os.kill(os.getpid(), signal.SIGKILL)

service._create = create_then_die
sys.exit(main(["billing", "close", "--period", "2026-10"]))
"""


def test_a_killed_close_leaves_nothing_and_completes_when_rerun(cli, tmp_path) -> None:
    import os
    import subprocess
    import sys

    _served(cli)
    env = os.environ | {"COMPUTELEASE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    killed = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", KILL_MID_CLOSE], env=env, cwd=tmp_path, check=False
    )
    assert killed.returncode == -9
    code, out, _ = cli("billing", "invoices", "--json")
    assert json.loads(out) == []
    code, out, err = cli("billing", "close", "--period", "2026-10", "--json")
    assert code == 0, err
    assert json.loads(out)["created"] == 1 and json.loads(out)["documents"] == ["CL-2026-000001"]
