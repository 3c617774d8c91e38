"""``computelease scenario validate|run|compare``: business plans from a scenario file, without a database.

numpy, pydantic models and plotly load inside the commands: every ``computelease`` invocation imports
this module to register the group, and should not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from computelease.kit.cli import echo_json, echo_table, err, out

scenario_app = typer.Typer(
    help="Business plans: projection, funding routes, Monte Carlo.", no_args_is_help=True
)
commands = [("scenario", scenario_app)]

File = Annotated[Path, typer.Argument(help="scenario file (YAML; schema in docs/scenarios.md)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the figures as JSON on stdout")]


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _warn(warnings: tuple[str, ...] | list[str]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}")


@scenario_app.command("validate")
def validate(file: File) -> None:
    """Check a scenario file and say what it describes; problems are listed with their field."""
    from computelease.economics.plan import prepare
    from computelease.economics.scenario import load_scenario

    scenario = load_scenario(file)
    plan = prepare(scenario)
    nodes = sum(lot.nodes for lot in plan.lots)
    gpus = sum(lot.nodes * lot.gpus_per_node for lot in plan.lots)
    funding = ", ".join(plan.instruments) or "own (equity)"
    _warn(plan.warnings)
    out.print(
        f"ok: {scenario.name}: {len(plan.lots)} purchases ({nodes:,} nodes, {gpus:,} GPUs), "
        f"{len(scenario.contracts)} contracts, {scenario.horizon_months} months from {scenario.start}, "
        f"funded by {funding}"
    )


@scenario_app.command("run")
def run(
    file: File,
    paths: Annotated[
        int, typer.Option(help="Monte Carlo paths; 0 for the deterministic projection only")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="seed of the simulation (same seed, same figures)")] = 0,
    workers: Annotated[int | None, typer.Option(help="processes (default: every core)")] = None,
    backend: Annotated[str, typer.Option(help="numpy, torch or jax")] = "numpy",
    as_json: AsJson = False,
    xlsx: Annotated[Path | None, typer.Option(help="write an Excel workbook here")] = None,
    html: Annotated[Path | None, typer.Option(help="write a self-contained Plotly page here")] = None,
    lines: Annotated[bool, typer.Option("--lines", help="with --json, add every monthly line")] = False,
) -> None:
    """Project a scenario month by month and simulate it; print the summary figures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from computelease.economics import montecarlo, report
    from computelease.economics.plan import prepare
    from computelease.economics.projection import project
    from computelease.economics.scenario import load_scenario

    montecarlo.require_backend(backend)
    if paths < 0:
        raise typer.BadParameter("must not be negative", param_hint="--paths")
    scenario = load_scenario(file)
    plan = prepare(scenario)
    projection = project(plan)
    mc = None
    if paths:
        # The bar goes to stderr, so `--json` output stays clean; it shows only on a terminal.
        with Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as bar:
            task = bar.add_task("paths", total=paths)
            mc = montecarlo.simulate(
                plan,
                paths=paths,
                seed=seed,
                workers=workers,
                backend=backend,
                keep_samples=html is not None,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    if xlsx is not None:
        report.write_xlsx(xlsx, projection, mc)
    if html is not None:
        report.write_html(html, projection, mc)
    if as_json:
        echo_json(report.run_report(projection, mc, lines=lines))
        return
    _warn(plan.warnings)
    _print_run(projection, mc)
    for path in (xlsx, html):
        if path is not None:
            err.print(f"wrote {path}")


def _print_run(projection, mc) -> None:
    s = projection.summary
    currency = projection.plan.scenario.currency
    out.print(
        f"{projection.plan.scenario.name}  "
        f"({currency}; funding: {', '.join(projection.plan.instruments) or 'own'})"
    )
    rows = [
        ("project NPV", _money(s.npv)),
        ("equity NPV", _money(s.equity_npv)),
        ("project IRR", _pct(s.project_irr.value) or f"none: {s.project_irr.note}"),
        ("equity IRR", _pct(s.equity_irr.value) or f"none: {s.equity_irr.note}"),
        (
            "payback",
            f"month {s.payback_month} ({s.payback_date:%Y-%m})" if s.payback_date else "not in the horizon",
        ),
        ("break-even occupancy", _pct(s.breakeven_occupancy.value) or f"none: {s.breakeven_occupancy.note}"),
        (
            "break-even price / GPU-hour",
            f"{s.breakeven_price.value:,.2f}"
            if s.breakeven_price.value is not None
            else f"none: {s.breakeven_price.note}",
        ),
        ("equity needed", _money(s.equity_needed)),
        ("peak funding need", _money(s.peak_funding_need)),
        ("financing cost", f"{s.financing_cost:,}"),
        ("minimum DSCR", "" if s.min_dscr is None else f"{s.min_dscr:.2f}"),
        (
            "revenue / EBITDA / net income",
            f"{_money(s.revenue)} / {_money(s.ebitda)} / {_money(s.net_income)}",
        ),
    ]
    echo_table(("figure", "value"), rows)
    if mc is None:
        return
    echo_table(
        (f"Monte Carlo, {mc.paths:,} paths (seed {mc.seed})", "P5", "P50", "P95"),
        [
            ("project NPV", _money(mc.npv.p5), _money(mc.npv.p50), _money(mc.npv.p95)),
            ("equity NPV", _money(mc.equity_npv.p5), _money(mc.equity_npv.p50), _money(mc.equity_npv.p95)),
            ("equity IRR", _pct(mc.equity_irr.p5), _pct(mc.equity_irr.p50), _pct(mc.equity_irr.p95)),
        ],
    )
    out.print(
        f"P(DSCR < 1.0 in some month) {mc.p_dscr_below_1:.1%}   P(cash shortfall) {mc.p_cash_shortfall:.1%}"
    )
    for risk in mc.lessor:
        out.print(
            f"lessor, {risk.instrument}: P(default) {risk.default_probability:.1%}, expected loss "
            f"{_money(risk.expected_loss)} on {_money(risk.principal)}"
        )


@scenario_app.command("compare")
def compare_cmd(
    file: File,
    routes: Annotated[str, typer.Option(help="comma-separated: own, bank, direct_lease, sale_leaseback")] = (
        "own,bank,direct_lease,sale_leaseback"
    ),
    as_json: AsJson = False,
    html: Annotated[Path | None, typer.Option(help="write the chart as a self-contained page here")] = None,
) -> None:
    """Fund the same fleet and contracts each way and compare them in one table (and chart)."""
    from computelease.economics import compare as compare_mod
    from computelease.economics.scenario import load_scenario

    scenario = load_scenario(file)
    comparison = compare_mod.compare(scenario, compare_mod.parse_routes(routes))
    if html is not None:
        compare_mod.write_html(comparison.figure(), html)
    if as_json:
        echo_json(comparison.to_dict())
        return
    out.print(f"{scenario.name}  ({scenario.currency})")
    echo_table(
        (
            "route",
            "equity needed",
            "financing cost",
            "all-in cost",
            "equity NPV",
            "equity IRR",
            "min DSCR",
            "peak funding",
        ),
        [
            (
                compare_mod.ROUTE_LABELS[row.route],
                _money(row.equity_needed),
                f"{row.financing_cost:,.0f}",
                _pct(row.all_in_cost.value),
                _money(row.npv),
                _pct(row.equity_irr.value) or "none",
                "" if row.min_dscr is None else f"{row.min_dscr:.2f}",
                _money(row.peak_funding_need),
            )
            for row in comparison.rows
        ],
    )
    if html is not None:
        err.print(f"wrote {html}")


@scenario_app.command("live")
def live_cmd(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the YAML here, to edit and run again")
    ] = None,
    as_json: AsJson = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default today)")] = None,
    horizon_months: Annotated[
        int | None, typer.Option(help="months past --as-of to project (default 60)", min=1, max=600)
    ] = None,
) -> None:
    """The scenario of the fleet, contracts and leases in the database as they are today."""
    from datetime import date

    from computelease.auth.core import SYSTEM
    from computelease.economics import live
    from computelease.economics.service import today
    from computelease.kit.cli import transaction

    try:
        day = date.fromisoformat(as_of) if as_of else today()
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date; use YYYY-MM-DD", param_hint="--as-of") from None
    with transaction() as session:
        data, warnings = live.scenario_data(session, SYSTEM, as_of=day, horizon_months=horizon_months)
        text = live.live_yaml(session, SYSTEM, as_of=day, horizon_months=horizon_months)
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
    if as_json:
        echo_json({"scenario": data, "assumptions": live.assumptions(), "warnings": warnings})
        return
    if out_file is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    _warn(warnings)
    err.print(f"wrote {out_file}; edit the assumptions, then `computelease scenario run {out_file}`")
