"""What a run hands out: a JSON-ready summary, an Excel workbook and a self-contained Plotly page.

Money settled by the finance core (schedule principals, interest, fees) is written as exact strings;
projected and simulated figures are floats rounded to the fen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from computelease.economics.montecarlo import McResult
from computelease.economics.projection import LINES, Projection


def financing_rows(projection: Projection) -> list[dict[str, Any]]:
    rows = []
    for tranche in projection.plan.tranches:
        schedule = tranche.schedule
        terms = schedule.terms
        found = tranche.quote.returns.all_in_irr
        rows.append(
            {
                "instrument": tranche.instrument,
                "start": tranche.start.isoformat(),
                "end": schedule.end.isoformat(),
                "principal": str(terms.principal),
                "annual_rate": str(terms.annual_rate),
                "months": terms.months,
                "timing": terms.timing.value,
                "interest": str(schedule.totals.interest),
                "fee": str(terms.fee),
                "deposit": str(terms.deposit),
                "all_in_rate": None if found.rate is None else str(found.rate),
                "all_in_note": found.note,
            }
        )
    return rows


def run_report(projection: Projection, mc: McResult | None = None, *, lines: bool = False) -> dict[str, Any]:
    plan = projection.plan
    scenario = plan.scenario
    out: dict[str, Any] = {
        "scenario": scenario.name,
        "currency": scenario.currency,
        "start": scenario.start.isoformat(),
        "horizon_months": scenario.horizon_months,
        "funding": list(plan.instruments) or ["own"],
        "summary": projection.summary.to_dict(),
        "financing": financing_rows(projection),
        "monte_carlo": None if mc is None else mc.to_dict(),
        "warnings": list(plan.warnings),
    }
    if lines:
        out["months"] = [m.isoformat() for m in plan.months]
        out["lines"] = {name: _round(projection.lines[name]) for name in LINES}
    return out


def _round(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 2) for v in values]


# -------------------------------------------------------------------------------------------- Excel


def write_xlsx(path: str | Path, projection: Projection, mc: McResult | None = None) -> Path:
    """Sheets: Summary, Monthly (one row per month, one column per line), Financing, Monte Carlo."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    path = Path(path)
    report = run_report(projection, mc)
    book = Workbook()
    bold = Font(bold=True)
    money = "#,##0.00;[Red]-#,##0.00"

    sheet = book.active
    sheet.title = "Summary"
    sheet.append(["scenario", report["scenario"]])
    sheet.append(["currency", report["currency"]])
    sheet.append(["funding", ", ".join(report["funding"])])
    for key, value in report["summary"].items():
        if isinstance(value, dict):
            sheet.append([key, value.get("value"), value.get("note")])
        else:
            sheet.append([key, value])
    for warning in report["warnings"]:
        sheet.append(["warning", warning])
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 22

    monthly = book.create_sheet("Monthly")
    monthly.append(["month", *LINES])
    for cell in monthly[1]:
        cell.font = bold
    for m, month in enumerate(projection.months):
        monthly.append([month, *(_cell(projection.lines[name][m]) for name in LINES)])
    for col in range(2, len(LINES) + 2):
        monthly.column_dimensions[get_column_letter(col)].width = 16
        for row in monthly.iter_rows(min_row=2, min_col=col, max_col=col):
            row[0].number_format = money
    monthly.freeze_panes = "B2"

    financing = book.create_sheet("Financing")
    rows = report["financing"]
    if rows:
        financing.append(list(rows[0]))
        for row in rows:
            financing.append(list(row.values()))
    else:
        financing.append(["no financing: the owners fund the fleet"])

    if mc is not None:
        sim = book.create_sheet("Monte Carlo")
        data = mc.to_dict()
        sim.append(["paths", data["paths"]])
        sim.append(["seed", data["seed"]])
        sim.append(["chunk_size", data["chunk_size"]])
        sim.append([])
        sim.append(["figure", "P5", "P50", "P95", "mean"])
        for key in ("npv", "equity_npv", "equity_irr"):
            d = data[key]
            sim.append([key, d["p5"], d["p50"], d["p95"], d["mean"]])
        sim.append([])
        sim.append(["P(DSCR < 1 in any month)", data["p_dscr_below_1"]])
        sim.append(["P(cash shortfall)", data["p_cash_shortfall"]])
        for risk in data["lessor"]:
            sim.append(
                [
                    f"lessor: {risk['instrument']}",
                    "PD",
                    risk["default_probability"],
                    "EL",
                    risk["expected_loss"],
                ]
            )
        sim.append([])
        sim.append(["month", "mean revenue", "mean cash"])
        for m, month in enumerate(projection.months):
            sim.append([month, float(mc.mean_revenue[m]), float(mc.mean_cash[m])])
    book.save(path)
    return path


def _cell(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


# --------------------------------------------------------------------------------------------- HTML


def run_figure(projection: Projection, mc: McResult | None = None) -> Any:
    """Cash and the P&L by month; with a simulation, the mean cash and the NPV distribution."""
    from plotly.subplots import make_subplots

    plan = projection.plan
    months = [m.isoformat() for m in plan.months]
    lines = projection.lines
    scale = 1e6
    rows = 3 if mc is not None and "npv" in mc.samples else 2
    titles = ["cash balance and equity put in", "revenue, opex, EBITDA, net income"]
    if rows == 3:
        titles.append("Monte Carlo: project NPV")
    fig = make_subplots(rows=rows, cols=1, subplot_titles=titles, vertical_spacing=0.09)
    fig.add_scatter(x=months, y=lines["cash"] / scale, name="cash", row=1, col=1)
    fig.add_scatter(x=months, y=np.cumsum(lines["equity_in"]) / scale, name="equity put in", row=1, col=1)
    fig.add_scatter(x=months, y=lines["outstanding"] / scale, name="principal owed", row=1, col=1)
    if mc is not None:
        fig.add_scatter(x=months, y=mc.mean_cash / scale, name="cash, simulated mean", row=1, col=1)
    for name in ("revenue", "opex", "ebitda", "net_income"):
        fig.add_bar(x=months, y=lines[name] / scale, name=name, row=2, col=1)
    if rows == 3:
        fig.add_histogram(x=mc.samples["npv"] / scale, name="project NPV", nbinsx=60, row=3, col=1)
    fig.update_layout(
        title=f"{plan.scenario.name} ({plan.scenario.currency} millions)",
        height=360 * rows,
        template="plotly_white",
        barmode="group",
    )
    return fig


def write_html(path: str | Path, projection: Projection, mc: McResult | None = None) -> Path:
    """A self-contained page: plotly.js is embedded from the installed package, no CDN."""
    path = Path(path)
    run_figure(projection, mc).write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
