"""``computelease scenario ...`` run in-process: output, files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from computelease.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
QINGYUN = str(EXAMPLES[0].parent / "qingyun_sale_leaseback.yaml")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_validate_every_example(cli, path: Path) -> None:
    code, out, err = cli("scenario", "validate", str(path))
    assert code == 0, err
    assert out.startswith("ok: ") and "purchases" in out


def test_run_json(cli) -> None:
    code, out, _ = cli(
        "scenario", "run", QINGYUN, "--paths", "3000", "--seed", "5", "--workers", "1", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["funding"] == ["sale_leaseback"]
    summary = data["summary"]
    assert isinstance(summary["npv"], float) and isinstance(summary["financing_cost"], str)
    assert set(summary["equity_irr"]) == {"value", "note"}
    (lease,) = data["financing"]
    assert lease["principal"] == "29000000.00" and lease["instrument"] == "sale_leaseback"
    mc = data["monte_carlo"]
    assert mc["paths"] == 3000 and mc["seed"] == 5
    assert mc["npv"]["p5"] <= mc["npv"]["p50"] <= mc["npv"]["p95"]
    assert mc["lessor"][0]["instrument"] == "sale_leaseback"
    # The same seed gives the same figures.
    again = json.loads(
        cli("scenario", "run", QINGYUN, "--paths", "3000", "--seed", "5", "--workers", "1", "--json")[1]
    )
    assert again["monte_carlo"] == mc


def test_run_lines_and_no_simulation(cli) -> None:
    code, out, _ = cli("scenario", "run", QINGYUN, "--paths", "0", "--json", "--lines")
    data = json.loads(out)
    assert code == 0 and data["monte_carlo"] is None
    assert len(data["months"]) == 36 and len(data["lines"]["cash"]) == 36


def test_run_writes_workbook_and_page(cli, tmp_path: Path) -> None:
    xlsx, html = tmp_path / "plan.xlsx", tmp_path / "plan.html"
    code, out, err = cli(
        "scenario",
        "run",
        QINGYUN,
        "--paths",
        "2000",
        "--workers",
        "1",
        "--xlsx",
        str(xlsx),
        "--html",
        str(html),
    )
    assert code == 0, err
    assert "project NPV" in out and "Monte Carlo" in out and f"wrote {xlsx}" in err
    book = load_workbook(xlsx)
    assert book.sheetnames == ["Summary", "Monthly", "Financing", "Monte Carlo"]
    assert book["Monthly"].max_row == 37
    page = html.read_text(encoding="utf-8")
    assert "<script src=" not in page and "Monte Carlo: project NPV" in page


def test_compare(cli, tmp_path: Path) -> None:
    html = tmp_path / "routes.html"
    code, out, _ = cli(
        "scenario", "compare", QINGYUN, "--routes", "own,bank,sale_leaseback", "--json", "--html", str(html)
    )
    assert code == 0
    data = json.loads(out)
    assert [row["route"] for row in data["routes"]] == ["own", "bank", "sale_leaseback"]
    assert html.exists()
    code, out, _ = cli("scenario", "compare", QINGYUN)
    assert code == 0 and "sale-and-leaseback" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("scenario", "validate", "missing.yaml"), "error: scenario file missing.yaml does not exist"),
        (("scenario", "run", QINGYUN, "--backend", "cupy", "--paths", "10"), "backend 'cupy' is not known"),
        (("scenario", "compare", QINGYUN, "--routes", "own,lease"), "routes: lease not known"),
    ],
)
def test_errors_are_one_line(cli, args, message) -> None:
    code, out, err = cli(*args)
    assert code == 1
    assert err.count("\n") == 1 and message in err and "Traceback" not in err + out


def test_bad_file_names_its_fields(cli, tmp_path: Path) -> None:
    text = Path(QINGYUN).read_text(encoding="utf-8").replace("rate: 0.065", "rate: 6.5")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    code, _, err = cli("scenario", "validate", str(bad))
    assert code == 1 and err.count("\n") == 1
    assert "funding.sale_leaseback.rate: must be a fraction like 0.06 (got 6.5; for 6.5% write 0.065)" in err
