"""`computelease billing ...`: close a month, list and show invoices, payments, ageing, ledger, VAT."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from computelease.auth.core import SYSTEM
from computelease.billing import export, service
from computelease.billing.core import InvoiceStatus
from computelease.billing.endpoints import present
from computelease.billing.models import Invoice
from computelease.billing.schemas import InvoiceDetail, InvoiceOut, PaymentOut
from computelease.errors import NotFound, Unprocessable
from computelease.kit.cli import echo_json, echo_table, err, out, transaction
from computelease.kit.time import utcnow

app = typer.Typer(help="Invoices, credit notes, month close, payments, receivables and the ledger.")
vat_app = typer.Typer(help="The dated VAT table.", no_args_is_help=True)
app.add_typer(vat_app, name="vat")

PeriodOpt = Annotated[str, typer.Option("--period", help="the month, YYYY-MM")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _money(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Unprocessable(f"{what} {text!r} is not an amount; write it like 12345.67") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise Unprocessable(f"{what} {text!r} must be an amount to the fen, like 12345.67")
    return value


def _find(session, ref: str) -> Invoice:
    """An invoice by id or number."""
    if ref.isdigit():
        return service.get_invoice(session, SYSTEM, int(ref))
    invoice = session.scalar(select(Invoice).where(Invoice.number == ref))
    if invoice is None:
        raise NotFound(f"no invoice numbered {ref!r}; `computelease billing invoices` lists them")
    return invoice


@app.command("close")
def close(
    period: PeriodOpt,
    draft: Annotated[bool, typer.Option(help="leave new invoices as drafts")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compute and report, store nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compute every invoice of a month. Safe to rerun: only changes are emitted."""
    started = datetime.now()
    with transaction() as session:
        result = service.close(session, SYSTEM, period, draft=draft, dry_run=dry_run)
    data = result.as_dict()
    if as_json:
        echo_json(data)
        return
    verb = "would create" if dry_run else "created"
    out.print(
        f"{period}: {verb} {result.created}, adjusted {result.adjusted}, unchanged {result.unchanged} "
        f"of {result.contracts} contract(s) in {(datetime.now() - started).total_seconds():.1f} s"
    )
    for currency, t in sorted(result.totals.items()):
        out.print(f"  {currency}: net {t['net']:,}  VAT {t['tax']:,}  gross {t['gross']:,}")
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False)


@app.command("invoices")
def invoices(
    period: Annotated[str | None, typer.Option(help="YYYY-MM")] = None,
    status: Annotated[InvoiceStatus | None, typer.Option(help="e.g. overdue")] = None,
    customer: Annotated[int | None, typer.Option(help="customer id")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List invoices and credit notes."""
    with transaction() as session:
        stmt = service.list_invoices(SYSTEM, period=period, status=status, customer_id=customer)
        rows = [InvoiceOut.model_validate(present(i)).model_dump(mode="json") for i in session.scalars(stmt)]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("number", "status", "customer", "period", "currency", "gross", "balance", "due"),
        (
            (
                r["number"] or f"draft {r['id']}",
                r["status"],
                r["customer_name"],
                r["period"],
                r["currency"],
                r["gross"],
                r["balance"],
                r["due_on"],
            )
            for r in rows
        ),
    )


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="invoice id or number")], as_json: JsonOpt = False) -> None:
    """One invoice with its lines."""
    with transaction() as session:
        data = InvoiceDetail.model_validate(present(_find(session, ref), detail=True)).model_dump(mode="json")
    if as_json:
        echo_json(data)
        return
    out.print(f"{data['number'] or 'draft'}  {data['customer_name']}  {data['period']}  {data['status']}")
    echo_table(
        ("kind", "description", "qty", "unit", "net", "VAT", "gross"),
        (
            (ln["kind"], ln["description"], ln["quantity"], ln["unit"], ln["net"], ln["tax"], ln["gross"])
            for ln in data["lines"]
        ),
    )
    out.print(
        f"total {data['currency']} {data['gross']} (net {data['net']}, VAT {data['tax']}); "
        f"due {data['due_on']}"
    )


@app.command("finalize")
def finalize(ref: Annotated[str, typer.Argument(help="draft invoice id")]) -> None:
    """Number and issue a draft."""
    with transaction() as session:
        invoice = service.finalize(session, SYSTEM, _find(session, ref).id)
        out.print(f"finalized {invoice.number}")


@app.command("void")
def void(ref: Annotated[str, typer.Argument()], reason: Annotated[str, typer.Option()]) -> None:
    """Void a draft, or a finalized invoice nothing was paid or credited against."""
    with transaction() as session:
        invoice = service.void(session, SYSTEM, _find(session, ref).id, reason)
        out.print(f"voided {invoice.number or invoice.id}")


@app.command("credit")
def credit(
    ref: Annotated[str, typer.Argument(help="the invoice to correct")],
    amount: Annotated[str, typer.Option(help="as the contract prices it")],
    reason: Annotated[str, typer.Option()],
) -> None:
    """Issue a credit note (红字) against a finalized invoice."""
    with transaction() as session:
        note = service.credit_note(session, SYSTEM, _find(session, ref).id, _money(amount, "amount"), reason)
        out.print(f"issued {note.number}: {note.gross}")


@app.command("pay")
def pay(
    customer: Annotated[int, typer.Option(help="customer id")],
    amount: Annotated[str, typer.Option()],
    reference: Annotated[str, typer.Option(help="the bank's reference")],
    on: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="received on (default today)")
    ] = None,
    currency: Annotated[str, typer.Option()] = "CNY",
    invoice: Annotated[
        list[int] | None, typer.Option(help="apply to this invoice id first (repeatable)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a payment and apply it to open invoices, oldest first."""
    with transaction() as session:
        payment, created = service.record_payment(
            session,
            SYSTEM,
            customer_id=customer,
            amount=_money(amount, "amount"),
            currency=currency.upper(),
            received_on=on.date() if on else utcnow().date(),
            reference=reference,
            invoice_ids=invoice,
        )
        data = PaymentOut.model_validate(payment).model_dump(mode="json")
    if as_json:
        echo_json(data | {"created": created})
        return
    word = "recorded" if created else "already recorded"
    out.print(
        f"{word} payment {data['reference']}: {data['amount']} {data['currency']}, "
        f"{len(data['allocations'])} invoice(s), unapplied {data['unapplied']}"
    )


@app.command("ageing")
def ageing(
    as_of: Annotated[datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"])] = None,
    as_json: JsonOpt = False,
) -> None:
    """Receivables by age, per customer (账龄分析)."""
    day = as_of.date() if as_of else utcnow().date()
    with transaction() as session:
        rows = service.ageing(session, SYSTEM, day)
    if as_json:
        echo_json([r.__dict__ for r in rows])
        return
    echo_table(export.AGEING_COLUMNS, export.ageing_rows(rows))


@app.command("export")
def export_(
    what: Annotated[str, typer.Argument(help="invoices or ageing")],
    out_path: Annotated[Path, typer.Option("--out", help="file to write: .csv or .xlsx")],
    period: Annotated[str | None, typer.Option(help="YYYY-MM (invoices)")] = None,
) -> None:
    """Write invoices or ageing to CSV or Excel."""
    if out_path.suffix not in (".csv", ".xlsx"):
        raise Unprocessable(f"--out {out_path} must end in .csv or .xlsx")
    if what not in ("invoices", "ageing"):
        raise Unprocessable(f"export {what!r}: say invoices or ageing")
    today = utcnow().date()
    with transaction() as session:
        if what == "invoices":
            columns = export.INVOICE_COLUMNS
            rows = export.invoice_rows(session.scalars(service.list_invoices(SYSTEM, period=period)), today)
        else:
            columns, rows = export.AGEING_COLUMNS, export.ageing_rows(service.ageing(session, SYSTEM, today))
    if out_path.suffix == ".csv":
        out_path.write_text(export.to_csv(columns, rows), encoding="utf-8")
    else:
        out_path.write_bytes(export.to_xlsx(what, columns, rows))
    out.print(f"wrote {len(rows)} row(s) to {out_path}")


@app.command("trial-balance")
def trial_balance(as_json: JsonOpt = False) -> None:
    """Ledger balances per currency and account; each currency sums to zero."""
    with transaction() as session:
        tb = service.trial_balance(session, SYSTEM)
    if as_json:
        echo_json(tb)
        return
    echo_table(
        ("currency", "account", "balance"),
        ((c, a, v) for c, accounts in tb.items() for a, v in accounts.items()),
    )


@vat_app.command("list")
def vat_list(as_json: JsonOpt = False) -> None:
    """The VAT rates in force and their sources."""
    with transaction() as session:
        rates = service.vat_table(session).rates
    rows = [(str(r.category), str(r.rate), r.valid_from.isoformat(), r.valid_until, r.source) for r in rates]
    if as_json:
        echo_json([dict(zip(("category", "rate", "from", "until", "source"), r, strict=True)) for r in rows])
        return
    echo_table(("category", "rate", "from", "until", "source"), rows)


@vat_app.command("add")
def vat_add(
    category: Annotated[str, typer.Option()],
    rate: Annotated[str, typer.Option(help="a fraction, e.g. 0.06")],
    valid_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"])],
    source: Annotated[str, typer.Option(help="the circular it comes from")],
) -> None:
    """Add a dated VAT rate; it applies from its date on."""
    with transaction() as session:
        row = service.add_vat_rate(session, SYSTEM, category, rate, valid_from.date(), source)
        out.print(f"{row.category} {row.rate} from {row.valid_from}")
