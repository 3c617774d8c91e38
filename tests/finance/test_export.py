"""The CLI's JSON shape and the Excel workbook, whose check formulas are evaluated here."""

from __future__ import annotations

import ast
import json
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from computelease.finance import core as c
from computelease.finance.export import schedule_to_dict, write_xlsx

MONEY = re.compile(r"^-?\d+\.\d\d$")


def terms(**overrides: object) -> c.LeaseTerms:
    base: dict[str, object] = {
        "principal": "1000000",
        "annual_rate": "0.06",
        "months": 36,
        "start": "2025-01-15",
    }
    base.update(overrides)
    return c.LeaseTerms(**base)  # type: ignore[arg-type]


class TestJson:
    def test_shape_is_what_the_cli_prints(self):
        body = schedule_to_dict(c.quote(terms(fee_rate="0.01")))
        assert set(body) == {"rows", "totals", "nominal_rate", "all_in_irr"}
        assert len(body["rows"]) == 36
        first = body["rows"][0]
        assert list(first) == ["period", "date", "opening", "payment", "interest", "principal", "closing"]
        assert first == {
            "period": 1,
            "date": "2025-02-15",
            "opening": "1000000.00",
            "payment": "30421.94",
            "interest": "5000.00",
            "principal": "25421.94",
            "closing": "974578.06",
        }
        for row in body["rows"]:
            for key in ("opening", "payment", "interest", "principal", "closing"):
                assert MONEY.match(row[key]), row[key]
        assert all(isinstance(v, str) and MONEY.match(v) for v in body["totals"].values())
        assert body["totals"]["principal"] == "1000000.00"
        assert body["totals"]["fee"] == "10000.00"
        assert body["nominal_rate"] == "0.06"
        assert Decimal(body["all_in_irr"]) > Decimal("0.0617")  # the fee costs more than 6.17% effective
        assert json.loads(json.dumps(body)) == body

    def test_a_bare_schedule_is_quoted(self):
        body = schedule_to_dict(c.build_schedule(terms(months=12)))
        assert body["rows"][0]["payment"] == "86066.43"
        assert body["all_in_irr"] is not None

    def test_extended_adds_reasons_and_detail(self):
        body = schedule_to_dict(
            c.quote(terms(kind="sale_leaseback", start="2025-01-10", first_period_end="2025-02-28")),
            extended=True,
        )
        assert body["all_in_nominal"] is None
        assert "irregular" in body["all_in_nominal_note"]
        assert Decimal(body["lessor_yield"]) < Decimal(body["all_in_irr"])
        assert body["vat"][0]["rate"] == "0.06"
        assert body["cash_flows"][0] == {"date": "2025-01-10", "amount": "1000000.00", "label": "financing"}
        json.dumps(body)


# -- a small evaluator for the formulas the workbook writes ---------------------------------------------

CELL = re.compile(r"\$?([A-Z]{1,2})\$?(\d+)")


class Sheet:
    def __init__(self, ws):
        self.ws = ws

    def value(self, ref: str):
        raw = self.ws[ref].value
        if isinstance(raw, str) and raw.startswith("="):
            return self.evaluate(raw)
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, (int, float)):
            # Excel holds doubles; reading them back through str keeps what was written.
            return Decimal(str(raw))
        return raw

    def evaluate(self, formula: str):
        expression = CELL.sub(lambda m: f"{m.group(1)}{m.group(2)}", formula[1:])
        return self._node(ast.parse(expression, mode="eval").body)

    def _node(self, node):
        if isinstance(node, ast.Constant):
            return Decimal(str(node.value)) if isinstance(node.value, (int, float)) else node.value
        if isinstance(node, ast.Name):
            return self.value(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self._node(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = self._node(node.left), self._node(node.right)
            if isinstance(left, date) and isinstance(right, date):
                return Decimal((left - right).days)
            ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}
            if isinstance(node.op, ast.Div):
                return left / right
            return ops[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ROUND":
            value, places = (self._node(arg) for arg in node.args)
            return value.quantize(Decimal(1).scaleb(-int(places)), ROUND_HALF_UP)
        raise AssertionError(f"the evaluator does not know {ast.dump(node)}")


@pytest.fixture
def workbook(tmp_path: Path):
    def make(lease: c.LeaseTerms | c.Schedule):
        path = write_xlsx(c.quote(lease), tmp_path / "schedule.xlsx")
        return load_workbook(path)

    return make


def table(ws):
    header = next(r for r in range(1, 40) if ws.cell(row=r, column=1).value == "Period")
    first = header + 1
    last = first
    while isinstance(ws.cell(row=last + 1, column=1).value, int):
        last += 1
    return first, last


class TestWorkbook:
    @pytest.mark.parametrize(
        "lease",
        [
            terms(),
            terms(timing="advance", frequency="quarterly", balloon="200000", purchase_option="100"),
            terms(start="2025-01-10", first_period_end="2025-02-28", months=12, day_count="act_360"),
            terms(grace_months=6, grace="capitalised", kind="sale_leaseback", fee_rate="0.01"),
        ],
        ids=["plain", "advance-balloon", "irregular-360", "capitalised-grace"],
    )
    def test_values_match_and_every_check_formula_agrees(self, workbook, lease):
        wb = workbook(lease)
        ws = wb["Schedule"]
        sheet = Sheet(ws)
        schedule = c.build_schedule(lease)
        first, last = table(ws)
        assert last - first + 1 == len(schedule.rows)
        for offset, row in enumerate(schedule.rows):
            r = first + offset
            assert sheet.value(f"A{r}") == row.period
            assert sheet.value(f"B{r}") == row.date
            for column, value in zip("CDEFG", row[2:], strict=True):
                assert sheet.value(f"{column}{r}") == value
            assert ws[f"I{r}"].value == f"=ROUND(C{r}*H{r},2)"
            assert sheet.value(f"I{r}") == row.interest, f"interest check, row {row.period}"
            assert sheet.value(f"J{r}") == row.closing
            assert sheet.value(f"K{r}") == row.payment
            assert sheet.value(f"L{r}") == row.opening
            assert ws[f"M{r}"].value.startswith("=IF(AND(")
        total = last + 1
        assert ws[f"F{total}"].value == f"=SUM(F{first}:F{last})"
        assert (
            sum(sheet.value(f"F{r}") for r in range(first, last + 1)) + sheet.value(f"G{last}")
            == lease.principal
        )

    def test_cash_flow_sheet_has_an_xirr_formula(self, workbook):
        lease = terms(fee_rate="0.01", deposit_rate="0.05")
        wb = workbook(lease)
        ws = wb["Cash flows"]
        flows = c.lessee_flows(c.build_schedule(lease))
        amounts = [Decimal(str(ws.cell(row=r, column=2).value)) for r in range(2, len(flows) + 2)]
        assert sum(amounts) == sum(f.amount for f in flows)
        formulas = [
            cell.value for cell in ws["B"] if isinstance(cell.value, str) and cell.value.startswith("=")
        ]
        assert f"=XIRR(B2:B{len(flows) + 1},A2:A{len(flows) + 1})" in formulas
        assert any(f.startswith("=XNPV(") for f in formulas)

    def test_vat_sheet_checks(self, workbook):
        wb = workbook(terms(kind="sale_leaseback", months=12, fee_rate="0.01"))
        ws = wb["VAT"]
        sheet = Sheet(ws)
        rows = [r for r in range(2, ws.max_row + 1) if isinstance(ws.cell(row=r, column=8).value, str)]
        assert len(rows) == 13  # the fee and 12 rents
        for r in rows:
            assert sheet.value(f"H{r}") == sheet.value(f"G{r}")
