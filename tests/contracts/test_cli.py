"""`computelease customer/contract/sla-policy ...`, run in-process against a throwaway SQLite file."""

from __future__ import annotations

import json

import pytest

from computelease.cli import main
from computelease.config import get_settings


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert run("db", "upgrade")[0] == 0
    yield run
    get_settings.cache_clear()


FLAGSHIP = (
    "contract", "create", "--customer", "1", "--name", "154.5 PFLOPS", "--pflops", "154.5",
    "--precision", "bf16", "--model", "nvidia-h100-sxm", "--placement", "same_fabric",
    "--start", "2025-03-01", "--end", "2030-02-28", "--price-per-pflops-month", "5000",
    "--om-monthly-fee", "152500", "--deposit", "2775000", "--payment-terms-days", "45",
    "--sla-policy", "1",
)  # fmt: skip


def test_customer_policy_contract_round_trip(cli) -> None:
    code, out, _ = cli(
        "customer", "create", "--name", "智源 (测试)", "--segment", "model_maker", "--credit-limit", "8e7",
        "--tax-id", "91110108DEMX00001P",
    )  # fmt: skip
    assert code == 0 and "customer 1 created" in out
    code, out, _ = cli("customer", "show", "1", "--json")
    assert code == 0 and '"tax_id": "91110108DEMX00001P"' in out
    code, out, _ = cli(
        "sla-policy", "create", "--name", "std", "--target", "99.9",
        "--tier", "99.9:10", "--tier", "99.0:30", "--tier", "95:100", "--maintenance-hours", "4",
    )  # fmt: skip
    assert code == 0 and "SLA policy 1 created" in out

    code, out, err = cli(*FLAGSHIP, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert (created["total_value"], created["billable_gpus"], created["payment_terms_days"]) == (
        "55500000.00",
        157,
        45,
    )

    code, out, err = cli("contract", "transition", "1", "--to", "signed", "--at", "2025-02-10T09:00:00+08:00")
    assert code == 0 and "contract 1 is now signed" in out, err
    code, out, _ = cli("contract", "show", "1", "--json")
    shown = json.loads(out)
    assert shown["status"] == "signed" and shown["sla_policy"]["name"] == "std"
    assert [e["at"] for e in shown["events"] if e["from_status"]] == ["2025-02-10T01:00:00Z"]

    code, out, _ = cli("contract", "list", "--json", "--status", "signed")
    assert [c["id"] for c in json.loads(out)] == [1]
    code, out, _ = cli("contract", "list", "--json", "--status", "draft")
    assert json.loads(out) == []

    code, out, _ = cli("customer", "show", "1", "--json")
    assert [c["name"] for c in json.loads(out)["contracts"]] == ["154.5 PFLOPS"]
    code, out, _ = cli("sla-policy", "list", "--json")
    assert json.loads(out)[0]["credit_tiers"][2] == {"below": "95", "credit_pct": "100"}
    code, out, _ = cli("customer", "list")
    assert code == 0 and "智源" in out


BAD_INPUT = (
    (("contract", "show", "42"), "contract 42 does not exist"),
    (("contract", "transition", "1", "--to", "ended"), "a draft contract cannot become ended"),
    ((*FLAGSHIP[:-2], "--gpus", "8"), "give exactly one of --pflops, --gpus or --nodes"),
    ((*FLAGSHIP[:-2], "--timezone", "Mars/Base"), "--timezone: Value error, 'Mars/Base' is not an IANA"),
    ((*FLAGSHIP[:-2], "--monthly-fee", "1"), "give exactly one of --monthly-fee"),
    (("sla-policy", "create", "--name", "x", "--target", "99", "--tier", "99.5"), "BELOW:CREDIT_PCT"),
    (("customer", "create", "--name", "y", "--segment", "bank"), "--segment: Input should be"),
    (
        ("customer", "create", "--name", "z", "--segment", "research", "--tax-id", "91110108DEMX00001Q"),
        "--tax-id: Value error, 91110108DEMX00001Q fails its check character: the 18th should be P",
    ),
)


def test_bad_input_is_one_line(cli) -> None:
    cli("customer", "create", "--name", "c", "--segment", "research")
    cli(*FLAGSHIP[:-2])  # a draft contract 1 without an SLA policy
    for args, message in BAD_INPUT:
        code, out, err = cli(*args)
        assert code == 1, (args, out)
        assert err.count("\n") == 1 and message in err and "Traceback" not in err + out, (args, err)
