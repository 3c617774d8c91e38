"""`computelease lease ...` and `computelease credit-line ...`, run in-process."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from computelease.auth.core import SYSTEM
from computelease.cli import main
from computelease.config import get_settings
from computelease.db import Database
from computelease.finance import service
from computelease.finance.models import Lessor, LessorKind
from computelease.finance.schemas import CreditLineIn

from .conftest import FIRST_RENT, lease_in, make_nodes

MONEY = re.compile(r"^-?\d+\.\d\d$")
ROW_KEYS = ["period", "date", "opening", "payment", "interest", "principal", "closing"]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", url)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    run.url = url  # type: ignore[attr-defined]
    yield run
    get_settings.cache_clear()


SCHEDULE = ("lease", "schedule", "--principal", "1000000", "--annual-rate", "0.06", "--months", "36")


def test_schedule_json_is_exactly_the_documented_shape(cli) -> None:
    # No database needed: the schedule is pure maths.
    code, out, err = cli(
        *SCHEDULE, "--method", "annuity", "--timing", "arrears", "--start", "2025-01-15", "--json"
    )
    assert code == 0, err
    body = json.loads(out)
    assert list(body) == ["rows", "totals", "nominal_rate", "all_in_irr"]
    assert len(body["rows"]) == 36 and all(list(r) == ROW_KEYS for r in body["rows"])
    assert body["rows"][0] == {
        "period": 1,
        "date": "2025-02-15",
        "opening": "1000000.00",
        "payment": "30421.94",
        "interest": "5000.00",
        "principal": "25421.94",
        "closing": "974578.06",
    }
    assert body["rows"][-1]["closing"] == "0.00"
    for row in body["rows"]:
        assert all(MONEY.match(row[k]) for k in ROW_KEYS[2:])
    assert all(isinstance(v, str) and MONEY.match(v) for v in body["totals"].values())
    assert body["totals"]["principal"] == "1000000.00"
    assert body["nominal_rate"] == "0.06" and Decimal(body["all_in_irr"]) > Decimal("0.06")


def test_every_term_has_an_option(cli, tmp_path) -> None:
    code, out, err = cli(
        *SCHEDULE,
        "--start", "2025-01-31", "--frequency", "quarterly", "--grace-months", "3", "--grace", "capitalised",
        "--balloon", "100000", "--purchase-option", "100", "--fee-rate", "0.01", "--deposit-rate", "0.05",
        "--deposit-use", "offset", "--kind", "sale_leaseback", "--day-count", "act_360",
        "--first-period-end", "2025-04-15", "--timing", "advance", "--method", "equal_principal",
        "--json", "--xlsx", str(tmp_path / "s.xlsx"),
    )  # fmt: skip
    assert code == 0, err
    body = json.loads(out)
    assert len(body["rows"]) == 12 and body["rows"][0]["date"] == "2025-01-31"
    assert body["totals"]["residual"] == "100000.00" and body["totals"]["fee"] == "10000.00"
    assert body["totals"]["purchase_option"] == "100.00" and body["totals"]["deposit"] == "50000.00"
    wb = load_workbook(tmp_path / "s.xlsx")
    assert wb.sheetnames == ["Schedule", "Cash flows", "VAT"]
    assert wb["Schedule"]["A1"].value.startswith("Rent schedule") and wb["Schedule"]["B2"].value == 1000000
    assert (
        wb["Schedule"]["B13"].value == "sale_leaseback" and wb["Schedule"]["B14"].value == 10000
    )  # kind, fee
    assert "wrote" in err


def test_table_and_bad_terms(cli) -> None:
    code, out, _ = cli(*SCHEDULE, "--start", "2025-01-15")
    assert code == 0
    assert "30421.94" in out and "2025-02-15" in out and "1000000.00" in out and "all-in cost" in out
    for args, option in (
        (("--annual-rate", "6"), "--annual-rate"),
        (("--months", "0"), "--months"),
        (("--balloon", "2000000"), "--balloon"),
        (("--method", "magic"), "--method"),
        (("--start", "yesterday"), "--start"),
    ):
        code, out, err = cli(*SCHEDULE, *args)
        assert code == 1, args
        assert err.startswith(f"error: {option}:") and err.count("\n") == 1 and "Traceback" not in err + out


def test_leases_payments_and_credit_lines(cli) -> None:
    assert cli("db", "upgrade")[0] == 0
    db = Database(cli.url)  # type: ignore[attr-defined]
    with db.transaction("test") as s:
        x = Lessor(name="信达金融租赁", kind=LessorKind.financial_leasing)
        s.add(x)
        s.flush()
        nodes = make_nodes(s, ("H1",))
        lease = service.create_lease(s, SYSTEM, lease_in(x.id, "XD-1", node_ids=[nodes["H1"]]))
        service.create_credit_line(
            s,
            SYSTEM,
            CreditLineIn(
                lessor_id=x.id, name="框架额度", limit=Decimal("300000000"), drawn=Decimal("1200000"),
                rate=Decimal("0.052"), expires_on=date(2027, 9, 25),
            ),
        )  # fmt: skip
        lease_id = lease.id
    db.dispose()

    code, out, _ = cli("lease", "list", "--json")
    assert code == 0 and [x["code"] for x in json.loads(out)] == ["XD-1"]
    code, out, _ = cli("lease", "pay", str(lease_id), "--amount", str(FIRST_RENT), "--on", "2025-02-20")
    assert code == 0 and "period 1" in out and "(5 days late)" in out
    code, out, _ = cli("lease", "show", str(lease_id), "--json", "--as-of", "2025-03-20")
    assert code == 0
    body = json.loads(out)
    # The rent paid 5 days late left its penalty unpaid: rent 1 is not settled, rent 2 is overdue.
    assert [i["status"] for i in body["instalments"][:3]] == ["overdue", "overdue", "due"]
    assert body["instalments"][0]["outstanding"] == str(
        (FIRST_RENT * Decimal("0.0005") * 5).quantize(Decimal("0.01"))
    )
    assert body["assets"][0]["serial"] == "H1" and len(body["payments"]) == 1
    code, out, _ = cli("lease", "show", str(lease_id), "--as-of", "2025-03-20")
    assert code == 0 and "overdue" in out and "XD-1" in out
    code, out, err = cli("lease", "pay", str(lease_id), "--amount", "-1", "--on", "2025-03-01")
    assert code == 1 and "--amount" in err
    code, out, err = cli("lease", "show", "999")
    assert code == 1 and "lease 999 does not exist" in err
    code, out, _ = cli("credit-line", "list", "--json")
    assert code == 0 and json.loads(out)[0]["available"] == "298800000.00"
    code, out, _ = cli("credit-line", "list")
    assert code == 0 and "框架额度" in out
    assert cli("lessor", "list")[0] == 0
