"""One run of a scenario as plain JSON: the projection, the funding routes side by side and the Monte Carlo
distributions; and that JSON as an Excel workbook. No database here.

A stored run keeps this document, so its page and its workbook show exactly what was computed then,
whatever the catalog or the engine became since.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from computelease.economics.scenario import INSTRUMENTS, Scenario, parse_scenario, parse_yaml

API_MAX_PATHS = 200_000
DEFAULT_PATHS = 10_000
HISTOGRAM_BINS = 40


# ----------------------------------------------------------------------------------------- examples


@dataclass(frozen=True, slots=True)
class Example:
    key: str  # the file's stem, e.g. lianhua_zixing
    name: str
    description: str
    text: str


def _example_files() -> list[tuple[str, str]]:
    # Shipped as package data (economics/data/*.yaml, copies of the repository's examples/), so an
    # installed package offers them too.
    folder = files("computelease.economics") / "data"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            out.append((Path(entry.name).stem, entry.read_text(encoding="utf-8")))
    return sorted(out)


def examples() -> list[Example]:
    found = []
    for key, text in _example_files():
        data = parse_yaml(text, source=key)
        found.append(Example(key, str(data.get("name", key)), str(data.get("description", "")).strip(), text))
    return found


def example(key: str) -> Example:
    from computelease.errors import NotFound

    for item in examples():
        if item.key == key:
            return item
    known = ", ".join(e.key for e in examples())
    raise NotFound(f"no example named {key!r}; the examples are {known}")


# ---------------------------------------------------------------------------------------------- run


def parse_text(text: str, *, catalog: Any = None, source: str | None = None) -> Scenario:
    return parse_scenario(parse_yaml(text, source=source), source=source, catalog=catalog)


def default_routes(scenario: Scenario) -> tuple[str, ...]:
    """``own`` and every instrument the file describes terms for."""
    return ("own", *(name for name in INSTRUMENTS if getattr(scenario.funding, name) is not None))


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def histogram(
    values: np.ndarray,
    *,
    bins: int = HISTOGRAM_BINS,
    lo: float | None = None,
    hi: float | None = None,
    places: int = 2,
) -> dict[str, list]:
    """Counts in ``bins`` equal bins between the finite extremes (strictly inside ``lo``/``hi``)."""
    values = values[np.isfinite(values)]
    if lo is not None:
        values = values[values > lo]
    if hi is not None:
        values = values[values < hi]
    if not values.size:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(values, bins=bins)
    return {"edges": [round(float(e), places) for e in edges], "counts": [int(c) for c in counts]}


def execute(
    scenario: Scenario,
    *,
    paths: int = DEFAULT_PATHS,
    seed: int = 0,
    routes: tuple[str, ...] | None = None,
    catalog: Any = None,
    workers: int = 1,
    backend: str = "numpy",
) -> dict[str, Any]:
    """Projection, comparison of ``routes`` (default :func:`default_routes`) and, with ``paths``, the
    Monte Carlo percentiles and histograms of project NPV, equity NPV and equity IRR."""
    from computelease.economics import montecarlo, report
    from computelease.economics.compare import compare, parse_routes
    from computelease.economics.plan import prepare
    from computelease.economics.projection import project

    began = time.perf_counter()
    chosen = parse_routes(routes) if routes else default_routes(scenario)
    comparison = compare(scenario, chosen, catalog=catalog)
    plan = prepare(scenario, catalog=catalog)
    projection = project(plan)
    mc = None
    if paths:
        mc = montecarlo.simulate(
            plan, paths=paths, seed=seed, workers=workers, keep_samples=True, backend=backend
        )
    out = report.run_report(projection, mc, lines=True)
    out["routes"] = comparison.to_dict()["routes"]
    out["distributions"] = {}
    if mc is not None:
        out["distributions"] = {
            "npv": histogram(mc.samples["npv"]),
            "equity_npv": histogram(mc.samples["equity_npv"]),
            "equity_irr": histogram(
                mc.samples["equity_irr"], lo=montecarlo.IRR_FLOOR, hi=montecarlo.IRR_CAP, places=6
            ),
        }
    out["elapsed_s"] = round(time.perf_counter() - began, 3)
    return _clean(out)


# -------------------------------------------------------------------------------------------- Excel


def workbook(result: dict[str, Any]) -> bytes:
    """Sheets: Summary, Monthly, Funding routes, Financing, Monte Carlo; from a stored run's document."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    money = "#,##0.00;[Red]-#,##0.00"
    book = Workbook()

    sheet = book.active
    sheet.title = "Summary"
    sheet.append(["scenario", result.get("scenario")])
    sheet.append(["currency", result.get("currency")])
    sheet.append(["start", result.get("start")])
    sheet.append(["horizon_months", result.get("horizon_months")])
    sheet.append(["funding", ", ".join(result.get("funding") or [])])
    for key, value in (result.get("summary") or {}).items():
        if isinstance(value, dict):
            sheet.append([key, value.get("value"), value.get("note")])
        else:
            sheet.append([key, value])
    for warning in result.get("warnings") or []:
        sheet.append(["warning", warning])
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 22

    monthly = book.create_sheet("Monthly")
    lines: dict[str, list] = result.get("lines") or {}
    names = list(lines)
    monthly.append(["month", *names])
    for cell in monthly[1]:
        cell.font = bold
    for m, month in enumerate(result.get("months") or []):
        monthly.append([month, *(lines[name][m] for name in names)])
    for col in range(2, len(names) + 2):
        monthly.column_dimensions[get_column_letter(col)].width = 16
        for row in monthly.iter_rows(min_row=2, min_col=col, max_col=col):
            row[0].number_format = money
    monthly.freeze_panes = "B2"

    routes = book.create_sheet("Funding routes")
    head = [
        "route",
        "lender",
        "equity_needed",
        "financing_cost",
        "all_in_cost",
        "equity_npv",
        "project_npv",
        "equity_irr",
        "min_dscr",
        "peak_funding_need",
    ]
    routes.append(head)
    for cell in routes[1]:
        cell.font = bold
    for row in result.get("routes") or []:
        routes.append(
            [
                row["route"],
                row.get("lender"),
                row["equity_needed"],
                row["financing_cost"],
                (row.get("all_in_cost") or {}).get("value"),
                row["npv"],
                row["project_npv"],
                (row.get("equity_irr") or {}).get("value"),
                row.get("min_dscr"),
                row["peak_funding_need"],
            ]
        )

    financing = book.create_sheet("Financing")
    rows = result.get("financing") or []
    if rows:
        financing.append(list(rows[0]))
        for row in rows:
            financing.append(list(row.values()))
    else:
        financing.append(["no financing: the owners fund the fleet"])

    mc = result.get("monte_carlo")
    if mc:
        sim = book.create_sheet("Monte Carlo")
        sim.append(["paths", mc["paths"]])
        sim.append(["seed", mc["seed"]])
        sim.append([])
        sim.append(["figure", "P5", "P50", "P95", "mean"])
        for key in ("npv", "equity_npv", "equity_irr"):
            d = mc[key]
            sim.append([key, d["p5"], d["p50"], d["p95"], d["mean"]])
        sim.append([])
        sim.append(["P(DSCR < 1 in any month)", mc["p_dscr_below_1"]])
        sim.append(["P(cash shortfall)", mc["p_cash_shortfall"]])
        for risk in mc.get("lessor") or []:
            sim.append(
                [
                    f"lessor: {risk['instrument']}",
                    "PD",
                    risk["default_probability"],
                    "EL",
                    risk["expected_loss"],
                ]
            )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
