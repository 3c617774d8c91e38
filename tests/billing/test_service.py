"""Month close from stored records: invoices, re-close, adjustments, numbering, payments, ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from tests.billing.conftest import DEC_2, NOV_2
from tests.telemetry.conftest import T0, batch, beat

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.billing import service
from computelease.billing.core import DocKind, InvoiceStatus, LineKind
from computelease.billing.models import Invoice, LedgerEntry
from computelease.errors import Conflict, Forbidden, NotFound, Unprocessable
from computelease.telemetry import service as telemetry

H = timedelta(hours=1)


def close(db, period: str = "2026-10", now: datetime = NOV_2, **kw):
    with db.transaction(actor="test") as s:
        return service.close(s, SYSTEM, period, now=now, **kw)


def invoices(db) -> list[Invoice]:
    with db.transaction(actor="test") as s:
        rows = list(s.scalars(select(Invoice).order_by(Invoice.id)))
        for r in rows:
            _ = r.lines
        s.expunge_all()
        return rows


def balanced(db) -> dict:
    with db.transaction(actor="test") as s:
        per = dict(
            s.execute(
                select(LedgerEntry.currency, func.sum(LedgerEntry.amount)).group_by(LedgerEntry.currency)
            ).all()
        )
        tb = service.trial_balance(s, SYSTEM)
    assert all(Decimal(v) == 0 for v in per.values()), per
    return tb


def test_close_bills_the_month_with_its_sla_credit(db, served) -> None:
    result = close(db)
    assert (result.created, result.adjusted, result.unchanged, result.finalized) == (1, 0, 0, 1)
    (inv,) = invoices(db)
    assert inv.number == "CL-2026-000001" and inv.status is InvoiceStatus.finalized
    assert inv.issued_on == date(2026, 11, 1) and inv.due_on == date(2026, 12, 1)
    kinds = [(ln.kind, ln.gross) for ln in inv.lines]
    # 10 of 5,952 GPU-hours lost: 99.83% < 99.99%, the 10% tier: RMB 7,000 off.
    assert kinds == [(LineKind.compute, Decimal("70000.00")), (LineKind.sla_credit, Decimal("-7000.00"))]
    assert inv.lines[1].evidence["url"] == f"/api/v1/contracts/{served.contract_id}/sla?period=2026-10"
    assert inv.gross == sum(ln.gross for ln in inv.lines) == Decimal("63000.00")
    assert inv.net + inv.tax == inv.gross
    assert result.totals["CNY"]["gross"] == Decimal("63000.00")
    tb = balanced(db)
    assert tb["CNY"]["receivables"] == Decimal("63000.00")
    assert tb["CNY"]["vat_payable"] == -inv.tax


def test_reclose_is_a_no_op(db, served) -> None:
    close(db)
    again = close(db)
    assert (again.created, again.adjusted, again.unchanged) == (0, 0, 1)
    assert len(invoices(db)) == 1


def test_late_incident_emits_only_the_adjustment(db, served) -> None:
    close(db)
    # A late heartbeat batch shows node TN-1 with GPU 5 lost 30 hours later in October: availability
    # drops below 99%, the 30% tier: the credit grows by RMB 14,000.
    with db.transaction(actor="test") as s:
        telemetry.ingest(
            s,
            SYSTEM,
            batch(
                "TN-1",
                beat(10, T0 + 100 * H, g5={"remap_failed": True}),
                beat(11, T0 + 160 * H),
            ),
        )
    result = close(db)
    assert (result.created, result.adjusted, result.unchanged) == (0, 1, 0)
    docs = invoices(db)
    assert [d.kind for d in docs] == [DocKind.invoice, DocKind.credit_note]
    note = docs[1]
    assert note.number == "CL-CN-2026-000001" and note.corrects_id == docs[0].id
    assert [(ln.kind, ln.gross) for ln in note.lines] == [(LineKind.sla_credit, Decimal("-14000.00"))]
    assert docs[0].credited == Decimal("14000.00") and docs[0].balance == Decimal("49000.00")
    assert close(db).unchanged == 1
    balanced(db)


def test_close_is_all_or_nothing(db, served, monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("killed half way")

    # Fails after the invoices and their lines are written, before the ledger: nothing may remain.
    monkeypatch.setattr(service.core, "document_journal", boom)
    with pytest.raises(RuntimeError):
        close(db)
    assert invoices(db) == []
    monkeypatch.undo()
    assert close(db).created == 1
    assert invoices(db)[0].number == "CL-2026-000001"  # the failed run's number came back: no gap


def test_month_not_over_is_not_billed(db, served) -> None:
    result = close(db, "2026-11", now=datetime(2026, 11, 20, tzinfo=UTC))
    assert result.contracts == 0 and invoices(db) == []
    with db.transaction(actor="test") as s, pytest.raises(Unprocessable, match="not over yet"):
        service.close(
            s, SYSTEM, "2026-11", now=datetime(2026, 11, 20, tzinfo=UTC), contract_ids=[served.contract_id]
        )


def test_draft_close_then_finalize_numbers_without_gaps(db, served) -> None:
    result = close(db, draft=True)
    assert result.created == 1 and result.finalized == 0
    (draft,) = invoices(db)
    assert draft.number is None and draft.status is InvoiceStatus.draft
    with db.transaction(actor="test") as s:
        assert service.list_invoices(Principal(Role.customer, "c", customer_id=draft.customer_id)) is not None
        inv = service.finalize(s, SYSTEM, draft.id)
        assert inv.number == "CL-2026-000001"
    close(db, "2026-11", now=DEC_2)
    numbers = [d.number for d in invoices(db)]
    assert numbers == ["CL-2026-000001", "CL-2026-000002"]


def test_payments_oldest_first_advances_and_idempotency(db, served, world) -> None:
    close(db)
    close(db, "2026-11", now=DEC_2)
    oct_inv, nov_inv = invoices(db)
    with db.transaction(actor="test") as s:
        pay, created = service.record_payment(
            s,
            SYSTEM,
            customer_id=world.customer_a.id,
            amount=Decimal("100000.00"),
            currency="CNY",
            received_on=date(2026, 12, 5),
            reference="BANK-001",
        )
        assert created and [(a.invoice_id, a.amount) for a in pay.allocations] == [
            (oct_inv.id, Decimal("63000.00")),
            (nov_inv.id, Decimal("37000.00")),
        ]
        assert pay.unapplied == Decimal("0.00")
        again, created = service.record_payment(
            s,
            SYSTEM,
            customer_id=world.customer_a.id,
            amount=Decimal("100000.00"),
            currency="CNY",
            received_on=date(2026, 12, 5),
            reference="BANK-001",
        )
        assert not created and again.id == pay.id
        with pytest.raises(Conflict, match="already recorded"):
            service.record_payment(
                s,
                SYSTEM,
                customer_id=world.customer_a.id,
                amount=Decimal("1.00"),
                currency="CNY",
                received_on=date(2026, 12, 5),
                reference="BANK-001",
            )
        # Pay the rest and RMB 50,000 ahead: kept as an advance, taken by December's invoice.
        service.record_payment(
            s,
            SYSTEM,
            customer_id=world.customer_a.id,
            amount=Decimal("83000.00"),
            currency="CNY",
            received_on=date(2026, 12, 6),
            reference="BANK-002",
        )
        assert service.advance_balance(s, world.customer_a.id, "CNY") == Decimal("50000.00")
    docs = invoices(db)
    assert [service.status_of(d, date(2026, 12, 31)) for d in docs] == [
        InvoiceStatus.paid,
        InvoiceStatus.paid,
    ]
    close(db, "2026-12", now=datetime(2027, 1, 2, tzinfo=UTC))
    dec = invoices(db)[-1]
    assert dec.paid == Decimal("50000.00") and dec.status is InvoiceStatus.partially_paid
    tb = balanced(db)
    assert tb["CNY"]["cash"] == Decimal("183000.00")
    assert tb["CNY"].get("customer_advances", Decimal(0)) == 0


def test_ageing_and_credit_limit(db, served, world) -> None:
    close(db)
    close(db, "2026-11", now=DEC_2)
    with db.transaction(actor="test") as s:
        (row,) = service.ageing(s, SYSTEM, as_of=date(2027, 1, 5))
        # October was due 1 December (35 days late), November due 31 December (5 days late).
        assert row.buckets["31-60"] == Decimal("63000.00")
        assert row.buckets["1-30"] == Decimal("70000.00")
        assert row.overdue == row.total == Decimal("133000.00")
        assert row.credit_limit == Decimal("1000.00") and row.over_limit
        warnings = service.credit_warnings(s)
        assert any("over its credit limit" in w for w in warnings)
        overdue = s.scalars(
            service.list_invoices(SYSTEM, status=InvoiceStatus.overdue, as_of=date(2027, 1, 5))
        )
        assert len(list(overdue)) == 2


def test_credit_note_and_void_rules(db, served) -> None:
    close(db)
    (inv,) = invoices(db)
    with db.transaction(actor="test") as s:
        with pytest.raises(Unprocessable, match="exceeds"):
            service.credit_note(s, SYSTEM, inv.id, Decimal("63000.01"), "too much")
        note = service.credit_note(s, SYSTEM, inv.id, Decimal("1060.00"), "goodwill")
        assert note.number == "CL-CN-2026-000001"
        assert (note.net, note.tax, note.gross) == (
            Decimal("-1000.00"),
            Decimal("-60.00"),
            Decimal("-1060.00"),
        )
        with pytest.raises(Conflict, match="credit note"):
            service.void(s, SYSTEM, inv.id, "mistake")
    balanced(db)


def test_void_reverses_postings_and_reclose_reissues(db, served) -> None:
    close(db)
    (inv,) = invoices(db)
    with db.transaction(actor="test") as s:
        service.void(s, SYSTEM, inv.id, "wrong customer address")
    assert balanced(db)["CNY"].get("receivables", Decimal(0)) == 0
    result = close(db)
    assert result.created == 1
    assert [d.number for d in invoices(db)] == ["CL-2026-000001", "CL-2026-000002"]


def test_scoping(db, served, world) -> None:
    close(db)
    (inv,) = invoices(db)
    mine = Principal(Role.customer, "a", customer_id=world.customer_a.id)
    other = Principal(Role.customer, "b", customer_id=world.customer_b.id)
    lessor = Principal(Role.lessor, "x", lessor_id=world.lessor_x.id)
    with db.transaction(actor="test") as s:
        assert service.get_invoice(s, mine, inv.id).id == inv.id
        for p in (other, lessor):
            with pytest.raises(NotFound):
                service.get_invoice(s, p, inv.id)
            assert service.ageing(s, p) == []
        with pytest.raises(Forbidden):
            service.close(s, mine, "2026-10", now=NOV_2)
        with pytest.raises(Forbidden):
            service.record_payment(
                s,
                mine,
                customer_id=world.customer_a.id,
                amount=Decimal("1"),
                currency="CNY",
                received_on=date(2026, 12, 1),
                reference="x",
            )


def test_fapiao_fields(db, served) -> None:
    from computelease.contracts import service as contracts
    from computelease.contracts.schemas import CustomerPatch

    close(db)
    (inv,) = invoices(db)
    with db.transaction(actor="test") as s:
        data = service.fapiao(service.get_invoice(s, SYSTEM, inv.id))
        assert data["buyer"]["tax_id"] is None  # none recorded yet: the fapiao says so, not a blank guess
        contracts.update(s, SYSTEM, inv.customer_id, CustomerPatch(tax_id="91110108DEMX00001P"))
        data = service.fapiao(service.get_invoice(s, SYSTEM, inv.id))
    assert data["buyer"] == {"name": "Customer A own", "tax_id": "91110108DEMX00001P"}
    first = data["lines"][0]
    assert first["item"] == "*信息技术服务*算力服务费" and first["tax_rate"] == Decimal("0.06")
    assert sum(ln["amount"] + ln["tax"] for ln in data["lines"]) == data["total_gross"]


def test_earned_by_nodes(db, served) -> None:
    close(db)
    with db.transaction(actor="test") as s:
        earned = service.earned_by_nodes(
            s, {served.node_id}, datetime(2026, 9, 30, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
        )
    (inv,) = invoices(db)
    assert earned == {"CNY": inv.net}


def test_two_closes_at_once_produce_one_result(db, served) -> None:
    """Two sessions (two connections, as two processes would hold) close October at the same moment:
    the period lock makes one wait for the other, which then finds nothing to do."""
    import threading

    barrier = threading.Barrier(2)
    results: list = []
    errors: list = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(close(db))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted((r.created, r.unchanged) for r in results) == [(0, 1), (1, 0)]
    assert [d.number for d in invoices(db)] == ["CL-2026-000001"]


def test_earned_by_nodes_takes_only_the_window_part_of_a_month(db, served) -> None:
    close(db)
    (inv,) = invoices(db)
    # 1 to 16 October 00:00 Shanghai (UTC+8): 15 of October's 31 days.
    start, end = datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 15, 16, tzinfo=UTC)
    with db.transaction(actor="test") as s:
        earned = service.earned_by_nodes(s, {served.node_id}, start, end)
    assert earned == {"CNY": (inv.net * 15 / 31).quantize(Decimal("0.01"))}


def test_status_filter_reads_like_status_of(db, served, world) -> None:
    close(db)
    (inv,) = invoices(db)
    with db.transaction(actor="test") as s:
        service.credit_note(s, SYSTEM, inv.id, Decimal("1060.00"), "goodwill")

    def numbers(status: InvoiceStatus, day: date) -> list[str]:
        with db.transaction(actor="test") as s:
            return [i.number for i in s.scalars(service.list_invoices(SYSTEM, status=status, as_of=day))]

    nov = date(2026, 11, 15)
    # The credit note settled part of the invoice: partly paid, then overdue once past due.
    assert numbers(InvoiceStatus.finalized, nov) == []
    assert numbers(InvoiceStatus.partially_paid, nov) == ["CL-2026-000001"]
    assert numbers(InvoiceStatus.paid, nov) == ["CL-CN-2026-000001"]  # a credit note owes nothing
    assert numbers(InvoiceStatus.overdue, date(2026, 12, 5)) == ["CL-2026-000001"]
    assert numbers(InvoiceStatus.partially_paid, date(2026, 12, 5)) == []
    with db.transaction(actor="test") as s:
        shown = [service.status_of(i, nov) for i in s.scalars(service.list_invoices(SYSTEM))]
    assert sorted(shown) == sorted([InvoiceStatus.partially_paid, InvoiceStatus.paid])
    with db.transaction(actor="test") as s, pytest.raises(Unprocessable, match="not one we bill in"):
        service.record_payment(
            s,
            SYSTEM,
            customer_id=world.customer_a.id,
            amount=Decimal("1"),
            currency="XYZ",
            received_on=date(2026, 12, 1),
            reference="r",
        )


def test_a_terminated_contract_is_billed_to_its_termination(db, served) -> None:
    from computelease.contracts import service as contracts
    from computelease.contracts.schemas import TransitionIn

    with db.transaction(actor="test") as s:
        contracts.transition(
            s,
            SYSTEM,
            served.contract_id,
            TransitionIn(to="active", at=datetime(2025, 12, 31, 16, tzinfo=UTC)),
        )
        # 12:00 on 10 October in Shanghai, before GPU 3's outage (16:00 to 02:00): no credit is owed.
        contracts.transition(
            s,
            SYSTEM,
            served.contract_id,
            TransitionIn(
                to="terminated", at=datetime(2026, 10, 10, 4, tzinfo=UTC), reason="customer default"
            ),
            now=datetime(2026, 10, 10, 5, tzinfo=UTC),
        )
    close(db)
    (inv,) = invoices(db)
    assert [(ln.kind, ln.gross) for ln in inv.lines] == [(LineKind.compute, Decimal("21451.61"))]
    assert close(db, "2026-11", now=DEC_2).contracts == 0
