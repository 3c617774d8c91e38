"""A schedule as the CLI's JSON and as an Excel workbook that finance staff can check with formulas.

JSON money is text (``"30421.94"``) so no reader turns it into a float; rates are text too.
The workbook carries values, and beside them formulas that recompute each row from its neighbours
(interest = ROUND(opening × rate × time, 2), closing = opening − principal, payment = interest +
principal, opening = previous closing) with an OK/CHECK flag, plus the cash flows with an XIRR formula.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from computelease.finance.core import Quote, quote
from computelease.finance.returns import Irr
from computelease.finance.schedule import Schedule, calendar_of
from computelease.money import FEN

MONEY_FORMAT = "#,##0.00"
RATE_FORMAT = "0.000000%"
ROW_KEYS = ("period", "date", "opening", "payment", "interest", "principal", "closing")


def _money(value: Decimal) -> str:
    return str(value.quantize(FEN))


def _rate(irr: Irr) -> str | None:
    return None if irr.rate is None else str(irr.rate)


def _as_quote(result: Quote | Schedule) -> Quote:
    return result if isinstance(result, Quote) else quote(result)


def schedule_to_dict(result: Quote | Schedule, *, extended: bool = False) -> dict[str, Any]:
    """``{"rows": [...], "totals": {...}, "nominal_rate": ..., "all_in_irr": ...}``, money as strings.

    ``all_in_irr`` is the lessee's all-in cost (XIRR, effective annual) or ``None`` when no rate exists;
    ``extended`` adds the reason, the periodic-equivalent rate, the lessor's yield, VAT lines and flows.
    """
    q = _as_quote(result)
    schedule = q.schedule
    terms = schedule.terms
    totals = schedule.totals
    rows = [
        {
            "period": row.period,
            "date": row.date.isoformat(),
            "opening": _money(row.opening),
            "payment": _money(row.payment),
            "interest": _money(row.interest),
            "principal": _money(row.principal),
            "closing": _money(row.closing),
        }
        for row in schedule.rows
    ]
    body: dict[str, Any] = {
        "rows": rows,
        "totals": {
            "payments": _money(totals.payments),
            "interest": _money(totals.interest),
            "principal": _money(totals.principal),
            "residual": _money(totals.residual),
            "purchase_option": _money(totals.purchase_option),
            "fee": _money(terms.fee),
            "deposit": _money(terms.deposit),
            "vat": _money(q.vat_total),
            "total_paid": _money(totals.total + terms.fee),
        },
        "nominal_rate": str(terms.annual_rate),
        "all_in_irr": _rate(q.returns.all_in_irr),
    }
    if extended:
        r = q.returns
        body.update(
            {
                "all_in_irr_note": r.all_in_irr.note,
                "all_in_nominal": _rate(r.all_in_nominal),
                "all_in_nominal_note": r.all_in_nominal.note,
                "lessor_yield": _rate(r.lessor_yield),
                "lessor_yield_note": r.lessor_yield.note,
                "end": schedule.end.isoformat(),
                "vat_inclusive": q.vat_inclusive,
                "vat": [
                    {
                        "date": line.date.isoformat(),
                        "label": line.label,
                        "period": line.period,
                        "amount": _money(line.amount),
                        "taxable": _money(line.taxable),
                        "rate": str(line.rate),
                        "vat": _money(line.vat),
                    }
                    for line in q.vat
                ],
                "cash_flows": [
                    {"date": f.date.isoformat(), "amount": _money(f.amount), "label": f.label}
                    for f in q.flows
                ],
            }
        )
    return body


def _header(ws: Any, row: int, names: list[str]) -> None:
    for column, name in enumerate(names, start=1):
        cell = ws.cell(row=row, column=column, value=name)
        cell.font = Font(bold=True)


def write_xlsx(result: Quote | Schedule, path: str | Path) -> Path:
    """Write the schedule, cash flows and VAT to ``path`` (.xlsx), with check formulas beside the values."""
    q = _as_quote(result)
    schedule = q.schedule
    terms = schedule.terms
    wb = Workbook()
    ws = wb.active
    ws.title = "Schedule"
    ws["A1"] = "Rent schedule (租金计划表)"
    ws["A1"].font = Font(bold=True, size=14)
    inputs: list[tuple[str, Any, str | None]] = [
        ("Principal", terms.principal, MONEY_FORMAT),  # B2
        ("Annual rate", terms.annual_rate, RATE_FORMAT),  # B3
        ("Months per period", terms.frequency.months, None),  # B4
        ("Periodic rate", "=B3*B4/12", RATE_FORMAT),  # B5
        ("Day-count basis (days a year)", int(terms.day_count.basis), None),  # B6
        ("Start", terms.start, "yyyy-mm-dd"),  # B7
        ("Balloon (residual)", terms.balloon, MONEY_FORMAT),  # B8
        ("Purchase option (留购价)", terms.purchase_option, MONEY_FORMAT),  # B9
        ("Method", terms.method.value, None),
        ("Timing", terms.timing.value, None),
        ("Frequency", terms.frequency.value, None),
        ("Kind", terms.kind.value, None),
        ("Fee (手续费)", terms.fee, MONEY_FORMAT),
        ("Deposit (保证金)", terms.deposit, MONEY_FORMAT),
        ("All-in cost, XIRR (computed)", q.returns.all_in_irr.rate, RATE_FORMAT),
        ("Lessor yield after VAT (computed)", q.returns.lessor_yield.rate, RATE_FORMAT),
    ]
    for offset, (label, value, fmt) in enumerate(inputs, start=2):
        ws.cell(row=offset, column=1, value=label)
        cell = ws.cell(row=offset, column=2, value=value)
        if fmt:
            cell.number_format = fmt
    top = len(inputs) + 3
    _header(
        ws,
        top,
        [
            "Period",
            "Date",
            "Opening",
            "Payment",
            "Interest",
            "Principal",
            "Closing",
            "Rate × time",
            "Interest (check)",
            "Closing (check)",
            "Payment (check)",
            "Opening (check)",
            "Check",
        ],
    )
    slots, _ = calendar_of(terms)
    first = top + 1
    for offset, row in enumerate(schedule.rows):
        r = first + offset
        slot = slots[row.period - 1]
        values = (row.period, row.date, row.opening, row.payment, row.interest, row.principal, row.closing)
        for column, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=column, value=value)
            cell.number_format = "yyyy-mm-dd" if column == 2 else (MONEY_FORMAT if column > 2 else "0")
        if not slot.factor:
            accrual: Any = 0
        elif slot.factor is slot.regular:
            accrual = "=$B$5"
        else:
            # The irregular first period accrues by the day from the start to this rent.
            accrual = f"=$B$3*(B{r}-$B$7)/$B$6"
        ws.cell(row=r, column=8, value=accrual).number_format = "0.000000000"
        ws.cell(row=r, column=9, value=f"=ROUND(C{r}*H{r},2)").number_format = MONEY_FORMAT
        ws.cell(row=r, column=10, value=f"=ROUND(C{r}-F{r},2)").number_format = MONEY_FORMAT
        ws.cell(row=r, column=11, value=f"=ROUND(E{r}+F{r},2)").number_format = MONEY_FORMAT
        ws.cell(row=r, column=12, value="=$B$2" if offset == 0 else f"=G{r - 1}").number_format = MONEY_FORMAT
        ws.cell(row=r, column=13, value=f'=IF(AND(I{r}=E{r},J{r}=G{r},K{r}=D{r},L{r}=C{r}),"OK","CHECK")')
    last = first + len(schedule.rows) - 1
    total = last + 1
    ws.cell(row=total, column=1, value="Total").font = Font(bold=True)
    for column in (4, 5, 6):
        letter = get_column_letter(column)
        cell = ws.cell(row=total, column=column, value=f"=SUM({letter}{first}:{letter}{last})")
        cell.number_format = MONEY_FORMAT
    ws.cell(row=total, column=13, value=f'=IF(ROUND(F{total}+G{last}-B2,2)=0,"OK","CHECK")')
    ws.cell(row=total + 1, column=1, value="Principal repaid + closing balance = principal financed")
    for column, width in zip(
        "ABCDEFGHIJKLM", (34, 12, 16, 16, 16, 16, 16, 14, 16, 16, 16, 16, 8), strict=True
    ):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = ws.cell(row=first, column=3)

    _cash_flow_sheet(wb, q)
    _vat_sheet(wb, q)
    target = Path(path)
    wb.save(target)
    return target


def _cash_flow_sheet(wb: Workbook, q: Quote) -> None:
    ws = wb.create_sheet("Cash flows")
    _header(ws, 1, ["Date", "Lessee's cash flow", "What"])
    flows = sorted(q.flows, key=lambda f: f.date)
    for r, flow in enumerate(flows, start=2):
        ws.cell(row=r, column=1, value=flow.date).number_format = "yyyy-mm-dd"
        ws.cell(row=r, column=2, value=flow.amount).number_format = MONEY_FORMAT
        ws.cell(row=r, column=3, value=flow.label)
    last = len(flows) + 1
    ws.cell(row=last + 2, column=1, value="All-in cost (XIRR)")
    ws.cell(row=last + 2, column=2, value=f"=XIRR(B2:B{last},A2:A{last})").number_format = RATE_FORMAT
    ws.cell(row=last + 3, column=1, value="NPV at that rate (should be ~0)")
    ws.cell(
        row=last + 3, column=2, value=f"=XNPV(B{last + 2},B2:B{last},A2:A{last})"
    ).number_format = MONEY_FORMAT
    ws.cell(row=last + 4, column=1, value="All-in cost (computed)")
    ws.cell(row=last + 4, column=2, value=q.returns.all_in_irr.rate).number_format = RATE_FORMAT
    if q.returns.all_in_irr.note:
        ws.cell(row=last + 4, column=3, value=q.returns.all_in_irr.note)
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 18
    ws.column_dimensions["C"].width = 24


def _vat_sheet(wb: Workbook, q: Quote) -> None:
    ws = wb.create_sheet("VAT")
    _header(ws, 1, ["Date", "What", "Period", "Amount", "Taxable", "Rate", "VAT", "VAT (check)"])
    formula = "=ROUND(E{r}*F{r}/(1+F{r}),2)" if q.vat_inclusive else "=ROUND(E{r}*F{r},2)"
    for r, line in enumerate(q.vat, start=2):
        values: tuple[Any, ...] = (
            line.date,
            line.label,
            line.period,
            line.amount,
            line.taxable,
            line.rate,
            line.vat,
        )
        for column, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=column, value=value)
            if isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
            elif column in (4, 5, 7):
                cell.number_format = MONEY_FORMAT
        ws.cell(row=r, column=8, value=formula.format(r=r)).number_format = MONEY_FORMAT
    ws.cell(
        row=len(q.vat) + 3,
        column=1,
        value="VAT is " + ("inside the amounts" if q.vat_inclusive else "on top"),
    )
