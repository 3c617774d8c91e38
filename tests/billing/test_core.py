"""Golden invoice lines and the invariants of the pure billing rules.

Worked figures (VAT 6% on compute and O&M; prices include VAT unless said):

* full October 2026 at RMB 70,000/month: gross 70,000.00, tax 70,000 × 6/106 = 3,962.264… → 3,962.26,
  net 66,037.74;
* a start on 16 October (Asia/Shanghai): 16 of 31 days served, 70,000 × 16/31 = 36,129.032… → 36,129.03,
  tax 36,129.03 × 6/106 = 2,045.039… → 2,045.04;
* terminated at 12:00 on 10 October: 9.5 days, 70,000 × 228/744 = 21,451.612… → 21,451.61;
* a USD contract, 16 GPUs at US$2.50/GPU-hour, VAT on top: 16 × 744 × 2.50 = 29,760.00 net, 1,785.60 tax.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computelease.billing import core
from computelease.billing.core import BillingTerms, LineKind, SlaCredit
from computelease.contracts.core import Pricing

VAT = core.shipped_vat_table()
SH = "Asia/Shanghai"


def sh(y: int, m: int, d: int, h: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, h, tzinfo=ZoneInfo(SH)).astimezone(UTC)


def monthly(**kw) -> BillingTerms:
    base = dict(
        pricing=Pricing.monthly_fee,
        price=Decimal("70000.00"),
        om_monthly_fee=Decimal("0"),
        start=sh(2026, 1, 1),
        end=sh(2027, 1, 1),
        gpus=8,
    )
    return BillingTerms(**(base | kw))


def credit(amount: str, capped: bool = False) -> SlaCredit:
    return SlaCredit(
        amount=Decimal(amount),
        availability_pct=Decimal("98.5"),
        target_pct=Decimal("99.9"),
        credit_pct=Decimal("30"),
        capped=capped,
        incidents=2,
        evidence_url="/api/v1/contracts/1/sla?period=2026-10",
    )


def test_full_month_fixed_fee_vat_included() -> None:
    (line,) = core.invoice_lines(monthly(), "2026-10", vat=VAT)
    assert (line.gross, line.tax, line.net) == (Decimal("70000.00"), Decimal("3962.26"), Decimal("66037.74"))
    assert line.rate == Decimal("0.06") and line.kind is LineKind.compute and line.quantity == 1


def test_mid_month_start_prorates_by_capacity_time() -> None:
    (line,) = core.invoice_lines(monthly(start=sh(2026, 10, 16)), "2026-10", vat=VAT)
    assert line.gross == Decimal("36129.03")
    assert line.tax == Decimal("2045.04")
    assert line.net == Decimal("34083.99")
    assert line.quantity == Decimal("0.516129")  # 16/31 of a month


def test_termination_mid_day() -> None:
    lines = core.invoice_lines(monthly(end=sh(2026, 10, 10, 12)), "2026-10", vat=VAT)
    assert [ln.gross for ln in lines] == [Decimal("21451.61")]
    assert core.invoice_lines(monthly(end=sh(2026, 10, 10, 12)), "2026-11", vat=VAT) == ()


def test_om_fee_and_sla_credit_line_with_evidence() -> None:
    lines = core.invoice_lines(
        monthly(om_monthly_fee=Decimal("5000.00")), "2026-10", vat=VAT, sla=credit("7500.00")
    )
    assert [ln.kind for ln in lines] == [LineKind.compute, LineKind.om, LineKind.sla_credit]
    sla_line = lines[-1]
    assert sla_line.gross == Decimal("-7500.00")
    assert sla_line.tax == Decimal("-424.53")  # 7,500 × 6/106 = 424.528…
    assert sla_line.evidence["url"].endswith("period=2026-10")
    assert sla_line.evidence["incidents"] == 2
    assert core.totals(lines).gross == Decimal("67500.00")


def test_sla_credit_never_exceeds_the_months_fee() -> None:
    lines = core.invoice_lines(monthly(start=sh(2026, 10, 30)), "2026-10", vat=VAT, sla=credit("70000.00"))
    compute, sla_line = lines
    assert sla_line.gross == -compute.gross
    assert sla_line.evidence["capped"] is True
    assert core.totals(lines) == core.Totals(Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))


def test_usd_per_gpu_hour_vat_on_top_next_to_cny() -> None:
    usd = BillingTerms(
        pricing=Pricing.per_gpu_hour,
        price=Decimal("2.50"),
        om_monthly_fee=Decimal("0"),
        start=sh(2026, 1, 1),
        end=sh(2027, 1, 1),
        currency="USD",
        gpus=16,
        prices_include_vat=False,
    )
    (line,) = core.invoice_lines(usd, "2026-10", vat=VAT)
    # October 2026 in Shanghai has 744 hours (no DST).
    assert (line.net, line.tax, line.gross) == (Decimal("29760.00"), Decimal("1785.60"), Decimal("31545.60"))
    assert line.unit == "GPU·时" and line.quantity == Decimal("11904")


def test_pflops_month_and_on_demand_usage() -> None:
    terms = monthly(
        pricing=Pricing.per_pflops_month,
        price=Decimal("30000"),
        pflops=Decimal("100"),
        on_demand_rate=Decimal("20"),
    )
    # 8 GPUs × 744 h = 5,952 contracted GPU-hours; 6,000 allocated: 48 beyond, at RMB 20.
    lines = core.invoice_lines(terms, "2026-10", vat=VAT, allocated_gpu_hours=Decimal("6000"))
    assert [ln.kind for ln in lines] == [LineKind.compute, LineKind.usage]
    assert lines[0].gross == Decimal("3000000.00")
    assert lines[1].gross == Decimal("960.00") and lines[1].quantity == Decimal("48")
    under = core.invoice_lines(terms, "2026-10", vat=VAT, allocated_gpu_hours=Decimal("5000"))
    assert [ln.kind for ln in under] == [LineKind.compute]


def test_vat_table_is_dated_and_an_operator_row_wins_from_its_date() -> None:
    table = VAT.with_rows([core.vat_rate("compute_service", "0.09", date(2026, 11, 1), "test")])
    (oct_line,) = core.invoice_lines(monthly(), "2026-09", vat=table)
    (nov_line,) = core.invoice_lines(monthly(), "2026-10", vat=table)  # issued 2026-11-01
    assert oct_line.rate == Decimal("0.06") and nov_line.rate == Decimal("0.09")
    with pytest.raises(core.BillingInvalid, match="between 0 and 1"):
        core.vat_rate("compute_service", "6", date(2026, 1, 1))
    with pytest.raises(core.BillingInvalid, match="unknown tax category"):
        core.vat_rate("bananas", "0.06", date(2026, 1, 1))
    with pytest.raises(core.BillingInvalid, match="no compute_service rate"):
        core.VatTable(()).rate("compute_service", date(2026, 1, 1))


def test_adjustment_emits_only_the_difference() -> None:
    before = core.invoice_lines(monthly(), "2026-10", vat=VAT)
    after = core.invoice_lines(monthly(), "2026-10", vat=VAT, sla=credit("7000.00"))
    assert core.adjustment(before, before).empty
    change = core.adjustment(after, before)
    assert not change.charge
    (note,) = change.credit
    assert note.gross == Decimal("-7000.00") and note.kind is LineKind.sla_credit
    # and back: the credit withdrawn is a supplementary charge
    back = core.adjustment(before, [*before, *change.credit])
    assert not back.credit and back.charge[0].gross == Decimal("7000.00")


amounts = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)


@given(price=amounts, om=amounts, sla=amounts, day=st.integers(1, 31), inclusive=st.booleans())
def test_invariants(price: Decimal, om: Decimal, sla: Decimal, day: int, inclusive: bool) -> None:
    terms = monthly(price=price, om_monthly_fee=om, start=sh(2026, 10, day), prices_include_vat=inclusive)
    lines = core.invoice_lines(terms, "2026-10", vat=VAT, sla=credit(str(sla)))
    for ln in lines:
        assert ln.net + ln.tax == ln.gross
    t = core.totals(lines)
    assert t.gross >= 0  # the credit never takes an invoice below zero
    assert t.net + t.tax == t.gross
    # re-billing after any change, then reverting, always lands exactly on the expected amounts
    plain = core.invoice_lines(terms, "2026-10", vat=VAT)
    change = core.adjustment(lines, plain)
    assert core.totals([*plain, *change.credit, *change.charge]) == t


def test_allocate_oldest_first_and_as_told() -> None:
    items = [
        core.OpenItem(1, date(2026, 10, 31), Decimal("100.00")),
        core.OpenItem(2, date(2026, 9, 30), Decimal("50.00")),
    ]
    assert core.allocate(Decimal("120.00"), items) == (
        [(2, Decimal("50.00")), (1, Decimal("70.00"))],
        Decimal("0.00"),
    )
    assert core.allocate(Decimal("120.00"), items, order=[1]) == ([(1, Decimal("100.00"))], Decimal("20.00"))
    with pytest.raises(core.BillingInvalid, match="not open invoices"):
        core.allocate(Decimal("1"), items, order=[9])


def test_ageing_buckets() -> None:
    as_of = date(2026, 12, 31)
    items = [
        core.OpenItem(1, date(2027, 1, 5), Decimal("1")),
        core.OpenItem(2, date(2026, 12, 1), Decimal("2")),  # 30 days late
        core.OpenItem(3, date(2026, 11, 30), Decimal("4")),  # 31
        core.OpenItem(4, date(2026, 10, 2), Decimal("8")),  # 90
        core.OpenItem(5, date(2026, 10, 1), Decimal("16")),  # 91
    ]
    assert core.ageing(items, as_of) == {
        "current": Decimal("1"),
        "1-30": Decimal("2"),
        "31-60": Decimal("4"),
        "61-90": Decimal("8"),
        ">90": Decimal("16"),
    }


def test_journals_balance_and_numbers() -> None:
    lines = core.invoice_lines(monthly(om_monthly_fee=Decimal("1000")), "2026-10", vat=VAT, sla=credit("500"))
    j = core.document_journal("CL-2026-000001", date(2026, 11, 1), "CNY", lines)
    accounts = {p.account: p.amount for p in j.postings}
    assert accounts[core.Account.receivables] == core.totals(lines).gross
    assert accounts[core.Account.sla_credits] > 0  # contra-revenue is a debit
    with pytest.raises(ValueError, match="unbalanced"):
        core.Journal("x", date(2026, 1, 1), (core.Posting(core.Account.cash, Decimal("1"), "CNY"),))
    assert core.document_number("CL", core.DocKind.invoice, 2026, 123) == "CL-2026-000123"
    assert core.document_number("CL", core.DocKind.credit_note, 2026, 4) == "CL-CN-2026-000004"


def test_status_seen_by_readers() -> None:
    due = date(2026, 11, 30)
    s = core.status_of
    assert (
        s("finalized", Decimal("10"), Decimal("0"), due, date(2026, 11, 30)) is core.InvoiceStatus.finalized
    )
    assert s("finalized", Decimal("10"), Decimal("0"), due, date(2026, 12, 1)) is core.InvoiceStatus.overdue
    assert s("partially_paid", Decimal("10"), Decimal("4"), due, due) is core.InvoiceStatus.partially_paid
    assert s("finalized", Decimal("10"), Decimal("10"), due, date(2027, 1, 1)) is core.InvoiceStatus.paid
    assert s("void", Decimal("10"), Decimal("0"), due, date(2027, 1, 1)) is core.InvoiceStatus.void
