"""Golden rent schedules: terms in, expected rows out, in files a finance person can read.

Each file under golden/ holds the terms, a description of how the figures were worked out, and the
expected rows. The expected rows were computed with exact fractions from the closed-form PMT, apart from
this package; here each file is also checked on its own (the row arithmetic and the interest rule), so a
wrong file cannot pass merely by matching the code.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from computelease.finance import core as c
from computelease.finance.export import schedule_to_dict

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.json"))
CENT = Decimal("0.01")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def expected_rows(case: dict) -> list[dict[str, str]]:
    return [dict(zip(case["columns"], [str(v) for v in row], strict=True)) for row in case["rows"]]


def test_there_are_golden_files():
    assert len(GOLDEN) >= 10


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
class TestGolden:
    def test_schedule_matches_the_file(self, path: Path):
        case = load(path)
        schedule = c.build_schedule(c.LeaseTerms(**case["terms"]))
        got = schedule_to_dict(schedule)
        rows = [{k: str(v) for k, v in row.items()} for row in got["rows"]]
        assert rows == expected_rows(case)
        for key, value in case["totals"].items():
            assert got["totals"][key] == value

    def test_file_is_consistent_on_its_own(self, path: Path):
        case = load(path)
        terms = c.LeaseTerms(**case["terms"])
        i = terms.annual_rate * terms.frequency.months / 12
        previous = terms.principal
        rows = expected_rows(case)
        for row in rows:
            opening, payment, interest, principal, closing = (
                Decimal(row[k]) for k in ("opening", "payment", "interest", "principal", "closing")
            )
            assert opening == previous
            assert payment == interest + principal
            assert closing == opening - principal
            previous = closing
        assert sum(Decimal(r["principal"]) for r in rows) == terms.principal - terms.balloon
        assert Decimal(rows[-1]["closing"]) == terms.balloon
        # Interest on a regular period is the opening balance at the periodic rate, to the fen. The rows
        # that differ are an advance lease's first rent (nothing accrued) and an irregular first period.
        skip = {1} if terms.timing is c.Timing.advance else set()
        if terms.first_period_end is not None:
            skip.add(1 if terms.timing is c.Timing.arrears else 2)
        for row in rows:
            if int(row["period"]) not in skip:
                assert Decimal(row["interest"]) == (Decimal(row["opening"]) * i).quantize(CENT, ROUND_HALF_UP)


def test_hand_checked_figures():
    """A few figures checked by hand (or against published tables), so the files are anchored."""
    by_name = {p.stem: load(p) for p in GOLDEN}
    # 1,000,000 at 6% over 12 months: the textbook 86,066.43 a month.
    assert by_name["annuity_arrears_monthly"]["rows"][0][3] == "86066.43"
    # In advance: 86,066.4297 / 1.005 = 85,638.2385.
    assert by_name["annuity_advance_monthly"]["rows"][0][3] == "85638.24"
    # 49 days at 6% on 1,000,000: 8,054.79 (ACT/365) and 8,166.67 (ACT/360).
    assert by_name["irregular_first_period_act365"]["rows"][0][4] == "8054.79"
    assert by_name["irregular_first_period_act360"]["rows"][0][4] == "8166.67"
    # Capitalised grace: 1,000,000 → 1,005,000 → 1,010,025 → 1,015,075.13.
    assert by_name["grace_capitalised_then_annuity"]["rows"][2][6] == "1015075.13"
    # Equal principal: 1,200,000 / 8 = 150,000 a quarter, first interest 2% of 1,200,000.
    assert by_name["equal_principal_quarterly_month_end"]["rows"][0][3] == "174000.00"
