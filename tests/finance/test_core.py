"""Pure lease finance: schedules, returns, VAT, events, depreciation. No database."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy_financial as npf
import pytest
import pyxirr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computelease.errors import BadRequest
from computelease.finance import core as c
from computelease.finance.schedule import calendar_of

START = date(2025, 1, 15)
CENT = Decimal("0.01")


def terms(**overrides: object) -> c.LeaseTerms:
    base: dict[str, object] = {"principal": "1000000", "annual_rate": "0.06", "months": 36, "start": START}
    base.update(overrides)
    return c.LeaseTerms(**base)  # type: ignore[arg-type]


def assert_rows_consistent(schedule: c.Schedule) -> None:
    previous = schedule.terms.principal
    for row in schedule.rows:
        assert row.opening == previous
        assert row.payment == row.interest + row.principal
        assert row.closing == row.opening - row.principal
        for amount in row[2:]:
            assert amount == amount.quantize(CENT, ROUND_HALF_UP)
        previous = row.closing


ANNUITY_CASES = (
    ("1000000", "0.06", 36, "monthly", "0"),
    ("123456.78", "0.0815", 60, "monthly", "0"),
    ("300000000", "0.048", 36, "quarterly", "60000000"),
    ("29000000", "0.065", 24, "quarterly", "0"),
    ("5000000", "0.12", 60, "semi_annual", "1000000"),
    ("800000", "0.035", 12, "monthly", "160000"),
)


class TestAnnuityAgainstNumpyFinancial:
    @pytest.mark.parametrize(("principal", "rate", "months", "frequency", "balloon"), ANNUITY_CASES)
    def test_level_rent_is_npf_pmt_rounded(self, principal, rate, months, frequency, balloon):
        t = terms(principal=principal, annual_rate=rate, months=months, frequency=frequency, balloon=balloon)
        s = c.build_schedule(t)
        i, n = float(t.periodic_rate), t.periods
        expected = -npf.pmt(i, n, float(principal), fv=-float(balloon))
        assert abs(float(s.instalment) - expected) <= 0.005 + 1e-7
        assert all(row.payment == s.instalment for row in s.rows[:-1])

    @pytest.mark.parametrize(("principal", "rate", "months", "frequency", "balloon"), ANNUITY_CASES)
    def test_interest_and_principal_follow_ipmt_ppmt(self, principal, rate, months, frequency, balloon):
        t = terms(principal=principal, annual_rate=rate, months=months, frequency=frequency, balloon=balloon)
        s = c.build_schedule(t)
        i, n, p, fv = float(t.periodic_rate), t.periods, float(principal), -float(balloon)
        for row in s.rows:
            # Rounding the rent to the fen drifts the balance by at most about half a fen a period.
            slack = 0.01 * row.period
            assert abs(float(row.interest) + npf.ipmt(i, row.period, n, p, fv=fv)) <= slack
            assert abs(float(row.principal) + npf.ppmt(i, row.period, n, p, fv=fv)) <= slack
        assert s.rows[-1].closing == Decimal(balloon)

    def test_advance_matches_npf_begin(self):
        t = terms(timing="advance", months=60, annual_rate="0.0725")
        s = c.build_schedule(t)
        expected = -npf.pmt(float(t.periodic_rate), 60, 1_000_000, when="begin")
        assert abs(float(s.instalment) - expected) <= 0.005 + 1e-7


class TestAdvanceIdentity:
    @pytest.mark.parametrize(
        ("rate", "months", "frequency"),
        [
            ("0.06", 36, "monthly"),
            ("0.0815", 60, "monthly"),
            ("0.05", 24, "quarterly"),
            ("0.1", 60, "semi_annual"),
        ],
    )
    def test_advance_rent_is_arrears_rent_over_one_plus_i(self, rate, months, frequency):
        arrears = c.build_schedule(terms(annual_rate=rate, months=months, frequency=frequency))
        advance = c.build_schedule(
            terms(annual_rate=rate, months=months, frequency=frequency, timing="advance")
        )
        i = arrears.terms.periodic_rate
        exact_arrears = c.level_payment(Decimal("1000000"), [i] * arrears.terms.periods).quantize(
            CENT, ROUND_HALF_UP
        )
        assert arrears.instalment == exact_arrears
        # The identity holds on the unrounded rents; each side is rounded once, so they agree within a fen.
        assert abs(advance.instalment - arrears.instalment / (1 + i)) <= CENT

    def test_advance_first_rent_is_all_principal_on_the_start_date(self):
        s = c.build_schedule(terms(timing="advance"))
        first = s.rows[0]
        assert first.date == START
        assert first.interest == 0
        assert first.principal == first.payment == s.instalment
        assert s.end == date(2028, 1, 15)
        assert s.rows[-1].date == date(2027, 12, 15)

    def test_zero_rate_splits_principal_evenly(self):
        s = c.build_schedule(terms(annual_rate="0", months=3, principal="100"))
        assert [row.principal for row in s.rows] == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
        assert s.totals.interest == 0


class TestMethods:
    def test_equal_principal_steps_and_falling_interest(self):
        s = c.build_schedule(terms(method="equal_principal", months=12, principal="1000000"))
        assert {row.principal for row in s.rows[:-1]} == {Decimal("83333.33")}
        assert s.rows[-1].principal == Decimal("83333.37")
        assert s.rows[0].interest == Decimal("5000.00")
        assert s.rows[1].interest == Decimal("4583.33")  # 916,666.67 × 0.5%
        assert [r.interest for r in s.rows] == sorted((r.interest for r in s.rows), reverse=True)

    def test_interest_only_with_balloon_leaves_the_balloon(self):
        s = c.build_schedule(terms(method="interest_only", months=12, balloon="400000"))
        assert all(row.principal == 0 for row in s.rows[:-1])
        assert s.rows[-1].principal == Decimal("600000.00")
        assert s.rows[-1].closing == Decimal("400000.00")
        assert s.totals.residual == Decimal("400000.00")
        assert s.totals.interest == Decimal("60000.00")

    def test_balloon_equal_to_principal_is_allowed(self):
        s = c.build_schedule(terms(balloon="1000000", months=12))
        assert all(row.principal == 0 for row in s.rows)
        assert s.totals.principal == 0

    def test_custom_plan_with_capitalised_grace_puts_the_capitalised_interest_last(self):
        t = terms(
            method="custom",
            months=12,
            frequency="quarterly",
            grace_months=3,
            grace="capitalised",
            principal_plan=["300000", "300000", "400000"],
        )
        s = c.build_schedule(t)
        assert s.rows[0].principal == Decimal("-15000.00")
        assert [r.principal for r in s.rows[1:3]] == [Decimal("300000"), Decimal("300000")]
        assert s.rows[-1].principal == Decimal("415000.00")
        assert s.totals.principal == Decimal("1000000.00")

    def test_tiny_principal_never_overshoots(self):
        s = c.build_schedule(terms(principal="0.05", months=60, method="equal_principal"))
        assert all(row.closing >= 0 for row in s.rows)
        assert s.totals.principal == Decimal("0.05")


class TestDates:
    @pytest.mark.parametrize(
        ("anchor", "months", "expected"),
        [
            (date(2025, 1, 31), 1, date(2025, 2, 28)),
            (date(2024, 1, 31), 1, date(2024, 2, 29)),
            (date(2025, 1, 31), 2, date(2025, 3, 31)),
            (date(2025, 4, 30), 1, date(2025, 5, 31)),  # month end sticks
            (date(2025, 1, 30), 1, date(2025, 2, 28)),
            (date(2025, 1, 30), 2, date(2025, 3, 30)),  # counted from the anchor, no drift
            (date(2025, 11, 15), 3, date(2026, 2, 15)),
            (date(2099, 12, 31), 2, date(2100, 2, 28)),  # 2100 is not a leap year
        ],
    )
    def test_add_months(self, anchor, months, expected):
        assert c.add_months(anchor, months) == expected

    def test_month_end_can_be_turned_off(self):
        assert c.add_months(date(2025, 4, 30), 1, month_end=False) == date(2025, 5, 30)
        s = c.build_schedule(terms(start=date(2025, 2, 28), months=3, month_end=False))
        assert [r.date for r in s.rows] == [date(2025, 3, 28), date(2025, 4, 28), date(2025, 5, 28)]

    def test_irregular_first_period_moves_only_the_first_rent(self):
        regular = c.build_schedule(terms(months=12, start=date(2025, 1, 31)))
        odd = c.build_schedule(terms(months=12, start=date(2025, 1, 10), first_period_end=date(2025, 2, 28)))
        assert odd.rows[0].date == date(2025, 2, 28)
        assert odd.rows[0].interest == Decimal("8054.79")  # 1,000,000 × 6% × 49 / 365
        assert [r.principal for r in odd.rows] == [r.principal for r in regular.rows]
        assert [r.date for r in odd.rows[1:]] == [r.date for r in regular.rows[1:]]
        assert odd.rows[0].payment - regular.rows[0].payment == Decimal("3054.79")

    def test_irregular_first_period_in_advance_lands_on_the_second_rent(self):
        s = c.build_schedule(
            terms(months=6, timing="advance", start=date(2025, 1, 10), first_period_end=date(2025, 2, 28))
        )
        assert s.rows[0].date == date(2025, 1, 10) and s.rows[0].interest == 0
        assert s.rows[1].date == date(2025, 2, 28)
        assert s.rows[1].interest == (s.rows[0].closing * Decimal("0.06") * 49 / 365).quantize(
            CENT, ROUND_HALF_UP
        )
        assert s.end == date(2025, 7, 31)


class TestBadTerms:
    @pytest.mark.parametrize(
        ("overrides", "term", "words"),
        [
            ({"annual_rate": "-0.01"}, "annual_rate", "negative"),
            ({"annual_rate": "6"}, "annual_rate", "0.06 for 6%"),
            ({"months": 0}, "months", "at least"),
            ({"months": -12}, "months", "at least"),
            ({"months": 10, "frequency": "quarterly"}, "months", "multiple of 3"),
            ({"months": 36, "frequency": "semi_annual", "grace_months": 3}, "grace_months", "multiple of 6"),
            ({"grace_months": 36}, "grace_months", "shorter than the term"),
            ({"balloon": "1000000.01"}, "balloon", "must not exceed"),
            ({"balloon": "-1"}, "balloon", "negative"),
            ({"method": "bullet"}, "method", "annuity, equal_principal, interest_only, custom"),
            ({"timing": "late"}, "timing", "arrears, advance"),
            ({"frequency": "weekly"}, "frequency", "monthly, quarterly, semi_annual"),
            ({"kind": "operating"}, "kind", "direct, sale_leaseback"),
            ({"principal": "0"}, "principal", "more than 0"),
            ({"principal": "abc"}, "principal", "not a number"),
            ({"principal": "100.001"}, "principal", "fen"),
            ({"annual_rate": 0.06}, "annual_rate", "not a float"),
            ({"fee_rate": "1.5"}, "fee_rate", "fraction"),
            ({"deposit_rate": "-0.1"}, "deposit_rate", "negative"),
            ({"method": "custom"}, "principal_plan", "needs"),
            (
                {"method": "custom", "months": 2, "principal_plan": ["1"]},
                "principal_plan",
                "2 repayment periods",
            ),
            (
                {"method": "custom", "months": 2, "principal_plan": ["1", "2"]},
                "principal_plan",
                "must sum to",
            ),
            ({"principal_plan": ["1000000"]}, "principal_plan", "only used with method custom"),
            ({"first_period_end": date(2025, 1, 15)}, "first_period_end", "after the start"),
            ({"first_period_end": date(2025, 3, 15)}, "first_period_end", "two regular periods"),
            ({"start": "15/01/2025"}, "start", "YYYY-MM-DD"),
        ],
    )
    def test_bad_term_is_a_400_that_names_it(self, overrides, term, words):
        with pytest.raises(c.FinanceTermError) as caught:
            terms(**overrides)
        error = caught.value
        assert isinstance(error, BadRequest)
        assert error.status == 400
        assert error.term == term
        assert error.detail.startswith(f"{term}: ")
        assert words in error.detail
        assert error.problem()["term"] == term

    def test_strings_are_accepted_and_converted(self):
        t = terms(principal="1,000,000", months="36", start="2025-01-15", method="annuity", timing="advance")
        assert t.principal == Decimal("1000000.00")
        assert t.months == 36
        assert t.timing is c.Timing.advance
        assert t.start == START


class TestReturns:
    def test_plain_lease_costs_its_nominal_rate(self):
        q = c.quote(terms())
        assert abs(q.returns.all_in_nominal.rate - Decimal("0.06")) < Decimal("1e-6")
        effective = (1 + Decimal("0.005")) ** 12 - 1
        # XIRR counts real days, so months of 28-31 days move it a little from (1+i)^12 − 1.
        assert abs(q.returns.all_in_irr.rate - effective) < Decimal("0.0002")
        assert q.returns.all_in_irr.note is None

    def test_fee_and_deposit_raise_the_all_in_cost(self):
        plain = c.quote(terms()).returns.all_in_nominal.rate
        fee = c.quote(terms(fee_rate="0.01")).returns.all_in_nominal.rate
        fee_and_deposit = c.quote(terms(fee_rate="0.01", deposit_rate="0.05")).returns.all_in_nominal.rate
        assert plain < fee < fee_and_deposit
        # Cross-check the fee case against numpy-financial's IRR on the same monthly flows.
        s = c.build_schedule(terms(fee_rate="0.01"))
        flows = [990000.0] + [-float(r.payment) for r in s.rows]
        assert abs(float(fee) - 12 * npf.irr(flows)) < 1e-8

    def test_npv_at_the_reported_rate_is_zero(self):
        q = c.quote(terms(fee_rate="0.02", deposit_rate="0.1", purchase_option="100", balloon="100000"))
        dates = [f.date for f in q.flows]
        amounts = [float(f.amount) for f in q.flows]
        assert abs(pyxirr.xnpv(float(q.returns.all_in_irr.rate), dates, amounts)) < 0.01

    def test_deposit_offset_reduces_the_last_rents(self):
        q = c.quote(terms(deposit_rate="0.05", deposit_use="offset"))
        rents = [f for f in q.flows if f.label.startswith("rent")]
        instalment = q.schedule.instalment
        assert rents[-1].amount == 0  # 50,000 covers the last rent, 30,421.83
        assert rents[-2].amount == -(instalment - (Decimal("50000.00") - q.schedule.rows[-1].payment))
        assert not [f for f in q.flows if f.label == "deposit_refund"]
        refunded = c.quote(terms(deposit_rate="0.05"))
        refund = [f for f in refunded.flows if f.label == "deposit_refund"]
        assert refund == [c.CashFlow(date(2028, 1, 15), Decimal("50000.00"), "deposit_refund", 36)]
        # Money back sooner is cheaper than money back at the end.
        assert q.returns.all_in_irr.rate < refunded.returns.all_in_irr.rate

    def test_no_rate_is_said_plainly(self):
        flows = [
            c.CashFlow(START, Decimal("100"), "in", 0),
            c.CashFlow(date(2026, 1, 15), Decimal("5"), "in", 12),
        ]
        irr = c.xirr(flows)
        assert irr.rate is None
        assert "never change sign" in irr.note
        assert c.periodic_irr(flows, 12).rate is None

    def test_several_sign_changes_are_flagged(self):
        flows = [
            c.CashFlow(START, Decimal("-100"), "a", 0),
            c.CashFlow(date(2026, 1, 15), Decimal("230"), "b", 1),
            c.CashFlow(date(2027, 1, 15), Decimal("-132"), "c", 2),
        ]
        irr = c.periodic_irr(flows, 1)
        assert irr.rate is not None
        assert "more than one rate" in irr.note

    def test_irregular_first_period_has_no_periodic_rate(self):
        q = c.quote(terms(start=date(2025, 1, 10), first_period_end=date(2025, 2, 28)))
        assert q.returns.all_in_nominal.rate is None
        assert "irregular" in q.returns.all_in_nominal.note
        assert q.returns.all_in_irr.rate is not None

    def test_sale_leaseback_vat_lowers_the_lessor_yield(self):
        q = c.quote(terms(kind="sale_leaseback"))
        assert q.returns.lessor_yield.rate < q.returns.all_in_irr.rate - Decimal("0.002")

    def test_direct_lease_lessor_yield_credits_input_vat(self):
        q = c.quote(terms(kind="direct"))
        # Output VAT on every rent, input VAT on the asset: roughly neutral, far from the 13% haircut.
        assert abs(q.returns.lessor_yield.rate - q.returns.all_in_irr.rate) < Decimal("0.002")
        without_vat = c.quote(terms(kind="direct"), vat_inclusive=False)
        assert without_vat.returns.lessor_yield.rate == without_vat.returns.all_in_irr.rate


class TestVat:
    def test_direct_lease_vat_on_the_whole_rent(self):
        q = c.quote(terms(months=12))
        rent = q.vat[0]
        assert (rent.label, rent.rate, rent.taxable) == ("rent", Decimal("0.13"), q.schedule.rows[0].payment)
        assert rent.vat == (q.schedule.rows[0].payment * 13 / 113).quantize(CENT, ROUND_HALF_UP)
        assert rent.vat == Decimal("9901.45")  # 86,066.43 × 13 / 113

    def test_sale_leaseback_vat_on_interest_only(self):
        q = c.quote(terms(months=12, kind="sale_leaseback", fee_rate="0.01", purchase_option="100"))
        labels = [line.label for line in q.vat]
        assert labels[0] == "fee" and labels[-1] == "purchase_option"
        first_rent = q.vat[1]
        assert first_rent.taxable == Decimal("5000.00")
        assert first_rent.vat == Decimal("283.02")  # 5,000 × 6 / 106
        assert q.vat[0].vat == Decimal("566.04")  # fee 10,000 × 6 / 106
        interest_vat = sum(line.vat for line in q.vat if line.label == "rent")
        assert abs(interest_vat - q.schedule.totals.interest * 6 / 106) < Decimal("0.06")

    def test_vat_on_top(self):
        q = c.quote(terms(months=12, kind="sale_leaseback"), vat_inclusive=False)
        assert q.vat[0].vat == Decimal("300.00")

    def test_capitalised_interest_is_taxed_when_it_is_repaid(self):
        q = c.quote(terms(months=12, kind="sale_leaseback", grace_months=3, grace="capitalised"))
        assert [line.taxable for line in q.vat[:3]] == [0, 0, 0]
        capitalised = -sum(r.principal for r in q.schedule.rows[:3])
        assert q.vat[3].taxable == q.schedule.rows[3].interest + capitalised
        total_taxable = sum(line.taxable for line in q.vat)
        assert total_taxable == q.schedule.totals.interest

    def test_rates_follow_the_dated_table(self):
        table = c.default_vat_table()
        assert table.rate("direct", date(2018, 4, 30)) == Decimal("0.17")
        assert table.rate("direct", date(2018, 5, 1)) == Decimal("0.16")
        assert table.rate("direct", date(2019, 3, 31)) == Decimal("0.16")
        assert table.rate("direct", date(2019, 4, 1)) == Decimal("0.13")
        assert table.rate("sale_leaseback", date(2025, 1, 1)) == Decimal("0.06")
        assert all(row.source for row in table.rates)
        with pytest.raises(c.FinanceTermError, match="no rate for a direct lease on 2015-01-01"):
            table.rate("direct", date(2015, 1, 1))

    def test_a_lease_spanning_a_rate_change_uses_each_dates_rate(self):
        q = c.quote(terms(months=12, start=date(2018, 10, 15)))
        rates = {line.date: line.rate for line in q.vat}
        assert rates[date(2019, 3, 15)] == Decimal("0.16")
        assert rates[date(2019, 4, 15)] == Decimal("0.13")

    def test_callers_can_override_the_table(self, tmp_path: Path):
        custom = c.default_vat_table().with_rate("direct", "0.09", date(2026, 1, 1), source="test")
        assert custom.rate("direct", date(2025, 12, 31)) == Decimal("0.13")
        assert custom.rate("direct", date(2026, 1, 1)) == Decimal("0.09")
        q = c.quote(terms(months=12, start=date(2025, 10, 15)), vat_table=custom)
        assert q.vat[-1].rate == Decimal("0.09")
        path = tmp_path / "vat.toml"
        path.write_text(
            '[[rate]]\nkind = "direct"\nrate = "0.10"\nfrom = 2000-01-01\nsource = "x"\n', encoding="utf-8"
        )
        assert c.load_vat_table(path).rate("direct", date(2025, 1, 1)) == Decimal("0.10")
        with pytest.raises(c.FinanceTermError, match="not a fraction"):
            custom.with_rate("direct", "13", date(2026, 1, 1))


class TestTermination:
    def test_before_the_first_rent_accrues_from_the_start(self):
        s = c.build_schedule(terms())
        quote = c.termination_quote(s, date(2025, 2, 4), fee_rate="0.03")
        assert quote.paid_through == 0
        assert quote.outstanding_principal == Decimal("1000000.00")
        assert quote.days == 20
        assert quote.accrued_interest == Decimal("3287.67")  # 1,000,000 × 6% × 20 / 365
        assert quote.fee == Decimal("30000.00")
        assert quote.total == Decimal("1033287.67")

    def test_mid_term_uses_the_last_paid_rents_balance(self):
        s = c.build_schedule(terms(purchase_option="100"))
        quote = c.termination_quote(s, date(2025, 6, 30))
        assert quote.paid_through == 5
        assert quote.outstanding_principal == s.rows[4].closing
        assert quote.days == 15
        expected = (s.rows[4].closing * Decimal("0.06") * 15 / 365).quantize(CENT, ROUND_HALF_UP)
        assert quote.accrued_interest == expected
        assert quote.total == s.rows[4].closing + expected + Decimal("100.00")

    def test_on_a_rent_date_nothing_accrues(self):
        s = c.build_schedule(terms())
        quote = c.termination_quote(s, s.rows[11].date)
        assert (quote.paid_through, quote.accrued_interest) == (12, 0)

    def test_after_the_last_rent_only_the_purchase_option_is_left(self):
        s = c.build_schedule(terms(purchase_option="100", balloon="50000"))
        quote = c.termination_quote(s, s.end)
        assert quote.outstanding_principal == 0
        assert quote.total == Decimal("100.00")

    def test_dates_outside_the_lease_are_refused(self):
        s = c.build_schedule(terms())
        with pytest.raises(c.FinanceTermError, match="before the lease starts"):
            c.termination_quote(s, date(2024, 12, 31))
        with pytest.raises(c.FinanceTermError, match="after the lease ended"):
            c.termination_quote(s, date(2030, 1, 1))


class TestPrepayment:
    def test_keep_term_lowers_the_rent(self):
        s = c.build_schedule(terms())
        after = c.prepay(s, s.rows[11].date, "200000", "keep_term")
        assert len(after.rows) == 36
        assert after.rows[11].payment == s.rows[11].payment + Decimal("200000.00")
        assert after.rows[11].closing == s.rows[11].closing - Decimal("200000.00")
        balance, n, i = after.rows[11].closing, 24, Decimal("0.005")
        expected = (balance * i / (1 - (1 + i) ** -n)).quantize(CENT, ROUND_HALF_UP)
        assert after.instalment == expected
        assert after.rows[12].payment == expected < s.instalment
        assert after.totals.principal == Decimal("1000000.00")
        assert after.rows[-1].closing == 0
        assert_rows_consistent(after)

    def test_keep_instalment_shortens_the_lease(self):
        s = c.build_schedule(terms())
        after = c.prepay(s, s.rows[11].date, "200000", "keep_instalment")
        assert len(after.rows) < 36
        assert all(row.payment == s.instalment for row in after.rows[12:-1])
        assert after.rows[-1].payment <= s.instalment
        assert after.totals.principal == Decimal("1000000.00")
        assert after.totals.interest < s.totals.interest
        assert after.end == after.rows[-1].date
        # 1,000,000 less what 12 rents and 200,000 repaid, at 30,421.94: n = −ln(1 − B·i/A)/ln(1+i) ≈ 16.3
        assert len(after.rows) == 12 + 17
        assert_rows_consistent(after)

    def test_equal_principal_keep_instalment_keeps_the_step(self):
        s = c.build_schedule(terms(method="equal_principal", months=12))
        after = c.prepay(s, s.rows[2].date, "250000", "keep_instalment")
        assert all(row.principal == s.instalment for row in after.rows[3:-1])
        assert len(after.rows) == 9
        assert after.totals.principal == Decimal("1000000.00")

    def test_custom_keep_term_scales_the_plan(self):
        t = terms(
            method="custom", months=12, frequency="quarterly", principal_plan=["100000"] * 3 + ["700000"]
        )
        s = c.build_schedule(t)
        after = c.prepay(s, s.rows[0].date, "450000", "keep_term")
        assert [r.principal for r in after.rows[1:]] == [
            Decimal("50000.00"),
            Decimal("50000.00"),
            Decimal("350000.00"),
        ]

    def test_bad_prepayments_are_refused(self):
        s = c.build_schedule(terms())
        with pytest.raises(c.FinanceTermError, match="not a payment date"):
            c.prepay(s, date(2025, 2, 16), "1000")
        with pytest.raises(c.FinanceTermError, match="last rent"):
            c.prepay(s, s.rows[-1].date, "1000")
        with pytest.raises(c.FinanceTermError, match="more than the"):
            c.prepay(s, s.rows[0].date, "974578.07")
        with pytest.raises(c.FinanceTermError, match="keep_term"):
            c.prepay(
                c.build_schedule(terms(method="interest_only")), s.rows[0].date, "1000", "keep_instalment"
            )
        with pytest.raises(c.FinanceTermError, match="keep_term, keep_instalment"):
            c.prepay(s, s.rows[0].date, "1000", "shorten")


class TestLatePayment:
    def test_penalty_interest_is_daily(self):
        assert c.penalty_interest("30421.94", date(2025, 2, 15), date(2025, 3, 2), "0.0005") == Decimal(
            "228.16"
        )
        assert c.penalty_interest("30421.94", date(2025, 2, 15), date(2025, 2, 10), "0.0005") == 0

    def test_allocation_is_penalty_then_interest_then_principal(self):
        a = c.allocate_payment("1000", penalty="200", interest="500", principal="5000")
        assert (a.penalty, a.interest, a.principal, a.unapplied) == (200, 500, 300, 0)
        a = c.allocate_payment("150", penalty="200", interest="500", principal="5000")
        assert (a.penalty, a.interest, a.principal) == (150, 0, 0)
        a = c.allocate_payment("6000", penalty="200", interest="500", principal="5000")
        assert a.unapplied == Decimal("300")

    def test_late_rent(self):
        row = c.build_schedule(terms()).rows[0]
        late = c.late_payment(row, "30000", date(2025, 3, 2), "0.0005")
        assert late.days_late == 15
        assert late.penalty == Decimal("228.16")
        assert late.allocation.penalty == Decimal("228.16")
        assert late.allocation.interest == Decimal("5000.00")
        assert late.allocation.principal == Decimal("24771.84")
        assert late.still_owed == row.payment + Decimal("228.16") - Decimal("30000")


class TestDepreciation:
    def test_straight_line_monthly(self):
        rows = c.straight_line("2300000", "230000", 60, in_service=date(2025, 1, 15))
        assert rows[0].charge == Decimal("34500.00")
        assert rows[0].period_end == date(2025, 2, 28)  # from the month after it goes into service
        assert rows[-1].period_end == date(2030, 1, 31)
        assert rows[-1].closing == Decimal("230000.00")
        assert rows[-1].accumulated == Decimal("2070000.00")

    def test_straight_line_rounding_lands_in_the_last_month(self):
        rows = c.straight_line("1000", "0", 3)
        assert [r.charge for r in rows] == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]

    def test_double_declining_by_hand(self):
        # 1,200 over 12 months, factor 2: 1/6 of the book a month until straight line charges more.
        rows = c.declining_balance("1200", "0", 12)
        charges = [r.charge for r in rows]
        assert charges[:3] == [Decimal("200.00"), Decimal("166.67"), Decimal("138.89")]
        # By hand: 1,200/6; 1,000/6 = 166.666 → 166.67; ... month 6: 482.25/6 = 80.375 → 80.38 (half-up).
        # Month 7: book 401.87 over 6 months left, straight line 66.98 ≥ declining 66.98, so level from there.
        expected = ["200.00", "166.67", "138.89", "115.74", "96.45", "80.38"] + ["66.98"] * 5 + ["66.97"]
        assert charges == [Decimal(x) for x in expected]
        assert rows[5].closing == Decimal("401.87")
        assert rows[-1].closing == 0
        assert rows[-1].accumulated == Decimal("1200.00")

    def test_declining_never_goes_below_salvage(self):
        rows = c.declining_balance("100000", "40000", 24, factor="3")
        assert all(r.closing >= Decimal("40000") for r in rows)
        assert rows[-1].closing == Decimal("40000.00")

    @pytest.mark.parametrize(
        ("args", "term"),
        [(("0", "0", 12), "cost"), (("100", "200", 12), "salvage"), (("100", "0", 0), "life_months")],
    )
    def test_bad_inputs(self, args, term):
        with pytest.raises(c.FinanceTermError) as caught:
            c.straight_line(*args)
        assert caught.value.term == term


# -- invariants --------------------------------------------------------------------------------------------

FREQUENCY_MONTHS = {"monthly": 1, "quarterly": 3, "semi_annual": 6}


@st.composite
def lease_terms(draw: st.DrawFn, min_principal_fen: int = 1) -> c.LeaseTerms:
    frequency = draw(st.sampled_from(list(FREQUENCY_MONTHS)))
    step = FREQUENCY_MONTHS[frequency]
    periods = draw(st.integers(1, 120 // step))
    grace = draw(st.integers(0, periods - 1)) * step if draw(st.booleans()) else 0
    principal = Decimal(draw(st.integers(min_principal_fen, 10**11))) / 100
    balloon = (principal * Decimal(draw(st.sampled_from(["0", "0", "0.1", "0.3", "1"])))).quantize(
        CENT, ROUND_HALF_UP
    )
    method = draw(st.sampled_from(["annuity", "equal_principal", "interest_only", "custom"]))
    plan = None
    repaying = periods - grace // step
    if method == "custom":
        weights = draw(st.lists(st.integers(0, 5), min_size=repaying, max_size=repaying))
        total = principal - balloon
        shares = [(total * w / (sum(weights) or 1)).quantize(CENT, ROUND_HALF_UP) for w in weights]
        shares[-1] += total - sum(shares)
        if shares[-1] < 0:
            shares = [Decimal("0.00")] * (repaying - 1) + [total]
        plan = shares
    start = draw(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
    first_end = None
    if draw(st.booleans()):
        first_end = start + (c.add_months(start, step) - start) * draw(st.sampled_from([0.5, 1.3]))
        first_end = first_end if first_end > start else None
    return c.LeaseTerms(
        principal=principal,
        annual_rate=Decimal(draw(st.integers(0, 2400))) / 10000,
        months=periods * step,
        start=start,
        method=method,
        timing=draw(st.sampled_from(["arrears", "advance"])),
        frequency=frequency,
        grace_months=grace,
        grace=draw(st.sampled_from(["interest_only", "capitalised"])),
        balloon=balloon,
        principal_plan=plan,
        first_period_end=first_end,
        day_count=draw(st.sampled_from(["act_365", "act_360"])),
        fee_rate=Decimal(draw(st.integers(0, 500))) / 10000,
        purchase_option=Decimal(draw(st.sampled_from([0, 1, 100]))),
    )


class TestInvariants:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(lease_terms())
    def test_schedule_invariants(self, t: c.LeaseTerms):
        s = c.build_schedule(t)
        assert len(s.rows) == t.periods
        assert sum(r.principal for r in s.rows) == t.principal - t.balloon
        assert s.rows[-1].closing == t.balloon
        assert s.totals.principal == t.principal - t.balloon
        assert all(r.opening >= 0 and r.closing >= 0 for r in s.rows)
        assert all(r.closing >= t.balloon for r in s.rows)
        assert all(r.payment >= 0 and r.interest >= 0 for r in s.rows)
        assert [r.date for r in s.rows] == sorted(r.date for r in s.rows)
        assert_rows_consistent(s)

    @settings(max_examples=40, deadline=None)
    # Below a few thousand yuan, rounding each rent to the fen moves the rate more than a small fee does.
    @given(lease_terms(min_principal_fen=10**7), st.integers(1, 500))
    def test_a_fee_never_makes_the_lease_cheaper_than_its_rate(self, t: c.LeaseTerms, fee_bp: int):
        charged = c.LeaseTerms(
            **{**_fields(t), "fee_rate": Decimal(fee_bp) / 10000, "first_period_end": None}
        )
        r = c.returns_of(c.build_schedule(charged))
        free = c.returns_of(c.build_schedule(c.LeaseTerms(**{**_fields(charged), "fee_rate": Decimal(0)})))
        if r.all_in_nominal.rate is not None:
            assert r.all_in_nominal.rate >= charged.annual_rate - Decimal("1e-6")
        if r.all_in_irr.rate is not None and free.all_in_irr.rate is not None:
            assert r.all_in_irr.rate >= free.all_in_irr.rate - Decimal("1e-7")

    @settings(max_examples=60, deadline=None)
    @given(lease_terms(), st.integers(0, 1000), st.sampled_from(["keep_term", "keep_instalment"]))
    def test_prepayment_keeps_principal_whole(self, t: c.LeaseTerms, share: int, mode: str):
        s = c.build_schedule(t)
        index = len(s.rows) // 2
        if index >= len(s.rows) - 1 or (
            mode == "keep_instalment" and t.method not in ("annuity", "equal_principal")
        ):
            return
        room = s.rows[index].closing - t.balloon
        amount = (room * share / 1000).quantize(CENT, ROUND_HALF_UP)
        if amount <= 0:
            return
        after = c.prepay(s, s.rows[index].date, amount, mode)
        assert after.totals.principal == t.principal - t.balloon
        assert after.rows[-1].closing == t.balloon
        assert all(r.closing >= t.balloon for r in after.rows)
        assert_rows_consistent(after)


def _fields(t: c.LeaseTerms) -> dict[str, object]:
    return {name: getattr(t, name) for name in c.LeaseTerms.__dataclass_fields__}


def test_calendar_matches_rows():
    t = terms(timing="advance", grace_months=3, months=12)
    slots, bounds = calendar_of(t)
    s = c.build_schedule(t)
    assert [slot.date for slot in slots] == [r.date for r in s.rows]
    assert bounds[-1] == s.end


class TestRows:
    def test_rows_behave_like_a_tuple_of_rows(self):
        s = c.build_schedule(terms(months=12))
        assert len(s.rows) == 12
        assert isinstance(s.rows[0], c.Row)
        assert s.rows[-1].period == 12
        assert isinstance(s.rows[1:3], tuple) and [r.period for r in s.rows[1:3]] == [2, 3]
        assert [r.period for r in s.rows] == list(range(1, 13))
        assert s.rows == tuple(s.rows)
        assert s == c.build_schedule(terms(months=12))
        assert s != c.build_schedule(terms(months=12, annual_rate="0.061"))
        assert "Row(period=1" in repr(s.rows)

    def test_kept_schedules_leave_nothing_for_the_collector_to_scan(self):
        import gc

        s = c.build_schedule(terms())
        gc.collect()
        # Plain tuples of numbers and dates are untracked once collected; Row subclasses would not be.
        assert not any(gc.is_tracked(row) for row in s.rows.raw)
