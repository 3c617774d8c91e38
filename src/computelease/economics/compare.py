"""Funding routes side by side: the same fleet and contracts funded by equity alone (``own``), a bank
loan, a direct lease (直租) or a sale-and-leaseback (售后回租). The article's "上市公司 PK 融资租赁".

Each route keeps only its own instrument from the scenario's ``funding`` section (with that
instrument's ``share`` or ``amount``); the owners fund the rest. Per route:

* **equity needed**: everything the owners put in over the horizon (``Σ equity in``);
* **financing cost**: interest, fees and purchase options over each schedule's whole term (exact, from the
  finance core), with the lessee's all-in annual cost of the first draw (XIRR of its flows);
* **NPV** and **equity IRR** of the free cash flow to equity (with no debt they equal the project's);
* **minimum DSCR** on the trailing test; **peak funding need**: ``max_m (Σ equity in + principal
  owed)``, the most money raised from all sources at any one time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from computelease.economics.plan import prepare
from computelease.economics.projection import Projection, Rate, project
from computelease.economics.scenario import ROUTES, Scenario, ScenarioInvalid

ROUTE_LABELS = {
    "own": "own (equity)",
    "bank": "bank loan",
    "direct_lease": "direct lease 直租",
    "sale_leaseback": "sale-and-leaseback 售后回租",
}


@dataclass(frozen=True, slots=True)
class RouteRow:
    route: str
    lender: str | None
    equity_needed: float
    financing_cost: Decimal
    all_in_cost: Rate
    npv: float  # equity NPV
    project_npv: float
    equity_irr: Rate
    min_dscr: float | None
    peak_funding_need: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "lender": self.lender,
            "equity_needed": round(self.equity_needed, 2),
            "financing_cost": str(self.financing_cost),
            "all_in_cost": self.all_in_cost.to_dict(),
            "npv": round(self.npv, 2),
            "project_npv": round(self.project_npv, 2),
            "equity_irr": self.equity_irr.to_dict(),
            "min_dscr": None if self.min_dscr is None else round(self.min_dscr, 4),
            "peak_funding_need": round(self.peak_funding_need, 2),
        }


@dataclass(frozen=True, eq=False)
class Comparison:
    scenario: Scenario
    rows: tuple[RouteRow, ...]
    projections: tuple[Projection, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "currency": self.scenario.currency,
            "routes": [row.to_dict() for row in self.rows],
        }

    def figure(self) -> Any:
        return comparison_figure(self)


def parse_routes(text: str | Sequence[str]) -> tuple[str, ...]:
    names = [r.strip() for r in (text.split(",") if isinstance(text, str) else text) if r.strip()]
    unknown = [r for r in names if r not in ROUTES]
    if unknown or not names:
        raise ScenarioInvalid(
            [f"routes: {', '.join(unknown) or 'none given'} not known; use some of {', '.join(ROUTES)}"]
        )
    return tuple(dict.fromkeys(names))


def compare(scenario: Scenario, routes: Sequence[str] = ROUTES, *, catalog: Any = None) -> Comparison:
    """Project ``scenario`` once per route. A route whose instrument the file does not describe is an
    error naming the missing section."""
    rows = []
    projections = []
    for route in parse_routes(routes):
        variant = scenario.with_route(route)
        result = project(prepare(variant, catalog=catalog), solve=False)
        s = result.summary
        tranches = result.plan.tranches
        if tranches:
            found = tranches[0].quote.returns.all_in_irr
            all_in = Rate(None if found.rate is None else float(found.rate), found.note)
        else:
            all_in = Rate(None, "no financing")
        terms = getattr(scenario.funding, route, None) if route != "own" else None
        rows.append(
            RouteRow(
                route=route,
                lender=terms.lender if terms is not None else None,
                equity_needed=s.equity_needed,
                financing_cost=s.financing_cost,
                all_in_cost=all_in,
                npv=s.equity_npv,
                project_npv=s.npv,
                equity_irr=s.equity_irr,
                min_dscr=s.min_dscr,
                peak_funding_need=s.peak_funding_need,
            )
        )
        projections.append(result)
    return Comparison(scenario, tuple(rows), tuple(projections))


def comparison_figure(comparison: Comparison) -> Any:
    """Grouped bars: money figures (millions) on the left, equity IRR and minimum DSCR on the right."""
    from plotly.subplots import make_subplots

    currency = comparison.scenario.currency
    labels = [ROUTE_LABELS[row.route] for row in comparison.rows]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.65, 0.35],
        subplot_titles=(f"money, {currency} millions", "equity IRR and minimum DSCR"),
    )
    money = (
        ("equity needed", [row.equity_needed for row in comparison.rows]),
        ("financing cost", [float(row.financing_cost) for row in comparison.rows]),
        ("equity NPV", [row.npv for row in comparison.rows]),
        ("peak funding need", [row.peak_funding_need for row in comparison.rows]),
    )
    for name, values in money:
        fig.add_bar(name=name, x=labels, y=[v / 1e6 for v in values], row=1, col=1)
    fig.add_bar(
        name="equity IRR",
        x=labels,
        y=[row.equity_irr.value for row in comparison.rows],
        row=1,
        col=2,
    )
    fig.add_bar(name="min DSCR", x=labels, y=[row.min_dscr for row in comparison.rows], row=1, col=2)
    fig.update_layout(
        title=f"Funding routes: {comparison.scenario.name}",
        barmode="group",
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
    )
    return fig


def write_html(figure: Any, path: str | Path) -> Path:
    """A self-contained page: plotly.js is embedded from the installed package, no CDN."""
    path = Path(path)
    figure.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
