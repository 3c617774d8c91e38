"""`computelease lessor ...`, `computelease lease ...` and `computelease credit-line ...`.

``lease schedule`` is pure maths and needs no database; the other commands run as the system principal
(an operator at the console) in one transaction each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.cells import cell_len
from rich.table import Table

from computelease.auth.core import SYSTEM
from computelease.errors import BadRequest, Unprocessable
from computelease.finance import core, service
from computelease.finance.export import schedule_to_dict, write_xlsx
from computelease.finance.models import CreditLine, Lessor
from computelease.finance.schedule import FinanceTermError
from computelease.finance.schemas import CreditLineOut, LessorOut, PaymentIn
from computelease.kit.cli import echo_json, err, out, transaction

lessor_app = typer.Typer(help="Lessor organisations.", no_args_is_help=True)
lease_app = typer.Typer(help="Finance leases: rent schedules, instalments, payments.", no_args_is_help=True)
credit_line_app = typer.Typer(help="Credit lines (授信).", no_args_is_help=True)
commands = [("lessor", lessor_app), ("lease", lease_app), ("credit-line", credit_line_app)]

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


def _option(term: str) -> str:
    return "--" + term.replace("_", "-")


def _bad_term(exc: FinanceTermError) -> BadRequest:
    # The core names the field (annual_rate); at the console the option is what to fix (--annual-rate).
    rest = exc.detail[len(exc.term) :] if exc.detail.startswith(exc.term) else f": {exc.detail}"
    return BadRequest(f"{_option(exc.term)}{rest}")


def _date(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{option}: {value!r} is not a date; use YYYY-MM-DD") from None


def echo_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A table whose cells are never cut short to fit the terminal: a clipped amount or contract
    number reads as a different one."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    table = Table()
    for k, name in enumerate(columns):
        width = max(cell_len(row[k]) for row in [list(columns), *cells])
        table.add_column(name, min_width=width, no_wrap=True)
    for row in cells:
        table.add_row(*row)
    out.print(table)


# -------------------------------------------------------------------------------------- lessors


@lessor_app.command("list")
def lessor_list(as_json: JsonFlag = False) -> None:
    """List lessor organisations."""
    with transaction() as session:
        rows = [
            LessorOut.model_validate(x).model_dump(mode="json")
            for x in session.scalars(service.readable_lessors(SYSTEM).order_by(Lessor.id))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(("id", "name", "kind"), ((r["id"], r["name"], r["kind"]) for r in rows))


# ------------------------------------------------------------------------------------- schedule


@lease_app.command("schedule")
def lease_schedule(
    principal: Annotated[str, typer.Option(help="amount financed, e.g. 1000000")],
    annual_rate: Annotated[str, typer.Option(help="nominal annual rate as a fraction, e.g. 0.06")],
    months: Annotated[str, typer.Option(help="whole term in months, grace included")],
    method: Annotated[str, typer.Option(help="annuity, equal_principal, interest_only")] = "annuity",
    timing: Annotated[str, typer.Option(help="arrears (后付) or advance (先付)")] = "arrears",
    frequency: Annotated[str, typer.Option(help="monthly, quarterly or semi_annual")] = "monthly",
    grace_months: Annotated[str, typer.Option(help="months of grace at the start")] = "0",
    grace: Annotated[str, typer.Option(help="interest_only or capitalised")] = "interest_only",
    balloon: Annotated[str, typer.Option(help="residual settled with the last rent")] = "0",
    purchase_option: Annotated[str, typer.Option(help="nominal purchase price (留购价)")] = "0",
    fee_rate: Annotated[str, typer.Option(help="upfront fee (手续费), fraction of principal")] = "0",
    deposit_rate: Annotated[str, typer.Option(help="security deposit (保证金), fraction of principal")] = "0",
    deposit_use: Annotated[str, typer.Option(help="refund or offset (against the last rents)")] = "refund",
    start: Annotated[str | None, typer.Option(help="commencement, YYYY-MM-DD (default today)")] = None,
    kind: Annotated[str, typer.Option(help="direct or sale_leaseback (VAT differs)")] = "direct",
    day_count: Annotated[str, typer.Option(help="act_365 or act_360 (irregular first period)")] = "act_365",
    first_period_end: Annotated[
        str | None, typer.Option(help="end of an irregular first period, YYYY-MM-DD")
    ] = None,
    as_json: JsonFlag = False,
    xlsx: Annotated[Path | None, typer.Option(help="also write the schedule as an Excel workbook")] = None,
) -> None:
    """Print the rent schedule of a lease: rows, totals, nominal rate and all-in cost (IRR)."""
    try:
        # Every option goes to the core as text: it parses and checks each, naming a bad one.
        terms = core.LeaseTerms(
            principal=principal,
            annual_rate=annual_rate,
            months=months,
            start=start or service.today().isoformat(),
            method=method,
            timing=timing,
            frequency=frequency,
            grace_months=grace_months,
            grace=grace,
            balloon=balloon,
            purchase_option=purchase_option,
            fee_rate=fee_rate,
            deposit_rate=deposit_rate,
            deposit_use=deposit_use,
            kind=kind,
            day_count=day_count,
            first_period_end=first_period_end,
        )
        q = core.quote(terms)
    except FinanceTermError as exc:
        raise _bad_term(exc) from None
    if xlsx is not None:
        write_xlsx(q, xlsx)
        err.print(f"wrote {xlsx}")
    body = schedule_to_dict(q)
    if as_json:
        echo_json(body)
        return
    _print_schedule(body)


def _print_schedule(body: dict[str, Any]) -> None:
    names = ("period", "date", "opening", "payment", "interest", "principal", "closing")
    t = body["totals"]
    rows = [[str(r[name]) for name in names] for r in body["rows"]]
    total = ["total", "", "", t["payments"], t["interest"], t["principal"], t["residual"]]
    table = Table()
    for k, name in enumerate(names):
        # Never shortened to fit the terminal: a cut-off amount reads as a different amount.
        width = max(len(row[k]) for row in [list(names), *rows, total])
        table.add_column(name, justify="left" if name == "date" else "right", min_width=width, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    table.add_section()
    table.add_row(*total)
    out.print(table)
    out.print(
        f"fee {t['fee']}  deposit {t['deposit']}  purchase option {t['purchase_option']}  VAT {t['vat']}  "
        f"total paid {t['total_paid']}"
    )
    irr = body["all_in_irr"] if body["all_in_irr"] is not None else "none"
    out.print(f"nominal rate {body['nominal_rate']}  all-in cost (XIRR) {irr}")


# ---------------------------------------------------------------------------------------- leases


@lease_app.command("list")
def lease_list(as_json: JsonFlag = False) -> None:
    """List leases with what is outstanding and overdue today."""
    with transaction() as session:
        rows = [
            service.present_lease(x).model_dump(mode="json")
            for x in session.scalars(service.list_leases(SYSTEM))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        (
            "id",
            "code",
            "kind",
            "lessor",
            "lessee",
            "status",
            "principal",
            "outstanding",
            "overdue",
            "next due",
        ),
        (
            (
                r["id"],
                r["code"],
                r["kind"],
                r["lessor_name"],
                r["lessee"],
                r["status"],
                r["principal"],
                r["outstanding_principal"],
                r["overdue_total"],
                r["next_due"]["due_date"] if r["next_due"] else "",
            )
            for r in rows
        ),
    )


@lease_app.command("show")
def lease_show(
    lease_id: int,
    as_json: JsonFlag = False,
    as_of: Annotated[str | None, typer.Option(help="judge instalments on this date (default today)")] = None,
) -> None:
    """A lease with its instalments (status as of a date), leased nodes and payments."""
    on = _date("--as-of", as_of)
    with transaction() as session:
        body = service.present_lease_detail(service.get_lease(session, SYSTEM, lease_id), on).model_dump(
            mode="json"
        )
    if as_json:
        echo_json(body)
        return
    out.print(
        f"lease {body['code']} ({body['kind']}, {body['status']})  lessor {body['lessor_name']}  "
        f"lessee {body['lessee']}"
    )
    out.print(
        f"principal {body['principal']} {body['currency']}  {body['start_date']} – {body['end_date']}  "
        f"as of {body['as_of']}: outstanding principal {body['outstanding_principal']}, "
        f"overdue {body['overdue_total']} ({body['overdue_count']} instalments)"
    )
    echo_table(
        (
            "period",
            "due",
            "payment",
            "interest",
            "principal",
            "closing",
            "status",
            "unpaid",
            "penalty",
            "days",
        ),
        (
            (
                i["period"],
                i["due_date"],
                i["payment"],
                i["interest"],
                i["principal"],
                i["closing"],
                i["status"],
                i["outstanding"],
                i["penalty_owed"],
                i["days_overdue"] or "",
            )
            for i in body["instalments"]
        ),
    )
    if body["assets"]:
        echo_table(
            ("node", "serial", "model", "state"),
            ((a["node_id"], a["serial"], a["model"], a["state"]) for a in body["assets"]),
        )
    if body["payments"]:
        echo_table(
            ("id", "paid on", "amount", "reference", "unapplied"),
            ((p["id"], p["paid_on"], p["amount"], p["reference"], p["unapplied"]) for p in body["payments"]),
        )


@lease_app.command("pay")
def lease_pay(
    lease_id: int,
    amount: Annotated[str, typer.Option(help="amount received")],
    on: Annotated[str, typer.Option(help="date received, YYYY-MM-DD")],
    reference: Annotated[str, typer.Option(help="bank reference")] = "",
) -> None:
    """Record a payment; it is split across open instalments, penalty → interest → principal."""
    try:
        data = PaymentIn.model_validate({"paid_on": on, "amount": amount, "reference": reference})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in e['loc']).replace('paid_on', 'on')}: {e['msg']}"
            for e in exc.errors()
        )
        raise Unprocessable(f"fix these options: {problems}") from None
    with transaction() as session:
        payment = service.present_payment(service.record_payment(session, SYSTEM, lease_id, data))
    out.print(
        f"payment {payment.id} of {payment.amount} on {payment.paid_on} recorded against lease {lease_id}"
    )
    for a in payment.allocations:
        out.print(
            f"  period {a.period}: penalty {a.penalty}  interest {a.interest}  principal {a.principal}"
            + (f"  ({a.days_late} days late)" if a.days_late else "")
        )
    if payment.unapplied:
        out.print(f"  unapplied {payment.unapplied}")


# ---------------------------------------------------------------------------------- credit lines


@credit_line_app.command("list")
def credit_line_list(as_json: JsonFlag = False) -> None:
    """List credit lines: limit, drawn, available, rate, expiry."""
    with transaction() as session:
        stmt = service.readable_credit_lines(SYSTEM).order_by(CreditLine.expires_on, CreditLine.id)
        rows = [CreditLineOut.model_validate(x).model_dump(mode="json") for x in session.scalars(stmt)]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "lender", "name", "limit", "drawn", "available", "rate", "expires", "currency"),
        (
            (
                r["id"],
                r["lessor_name"],
                r["name"],
                r["limit"],
                r["drawn"],
                r["available"],
                r["rate"],
                r["expires_on"],
                r["currency"],
            )
            for r in rows
        ),
    )
