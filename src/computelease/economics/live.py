"""A scenario built from the live database: "my fleet and contracts as they are today".

The database holds facts; a scenario also needs forecasts. Facts come from the records the caller may
read (staff only); every forecast is a default with its source stated in the file's header and in
``assumptions``, so the analyst edits the YAML and runs it again. The mapping, one section at a time:

* ``start``: the first day of the month of the earliest purchase (or contract start), since the
  engine models purchases inside its horizon; ``horizon_months`` runs ``horizon_months`` (default 60)
  months past ``as_of``.
* ``sites``: each site with nodes: power price and PUE as stored; the stored rack price is taken per node
  (one node per cabinet: an assumption); O&M per node is an assumption.
* ``fleet``: nodes not retired or sold, grouped by SKU, site, purchase date, cost and currency:
  ``unit_price`` is the recorded purchase cost, ``in_service_months`` 0 (they are bought as racked).
* ``contracts``: signed, active and ended contracts that name an accelerator the fleet holds, with
  their capacity and their whole value (``price.total``, spread evenly over their months); drafts as
  ``pipeline`` with an assumed win probability.
* ``funding``: each finance lease (direct → ``direct_lease``, sale-and-leaseback → ``sale_leaseback``) with
  its stored terms; several of one kind are summed under the first one's terms (with a warning). Drawn
  credit lines become one interest-only ``bank`` loan until the line expires.
* ``market``, ``accounting``, ``discount_rate``: defaults below, each with its source.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import yaml

from computelease.economics.lessor import DEFAULT_RESIDUAL
from computelease.economics.scenario import month_index, month_start

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from computelease.auth.core import Principal

DEFAULT_HORIZON = 60

# Each default names where it comes from (shared/design/DOMAIN.md, the project's digest of public facts).
ASSUMPTIONS = {
    "discount_rate": (Decimal("0.08"), "ASSUMPTION: the owners' annual cost of capital"),
    "market_price": (
        Decimal("12.00"),
        "DOMAIN.md 'Market and finance facts': an 8×H100 server rents for ≈RMB 70k a month "
        "(≈RMB 12 per GPU-hour); used for every accelerator the contracts do not price",
    ),
    "occupancy": (
        Decimal("0.85"),
        "DOMAIN.md 'Operations facts': well-run GPU clouds achieve 85–95% occupancy; the bottom of the range",
    ),
    "failures": (
        Decimal("0.47"),
        "DOMAIN.md 'Operations facts': ≈0.47 unexpected interruptions per 1,000 GPUs per day (Llama 3)",
    ),
    "repair_hours": (Decimal("24"), "ASSUMPTION: a day to replace a failed part"),
    "kw_per_node": (
        Decimal("6.2"),
        "DOMAIN.md 'Market and finance facts': ≈6.2 kW IT load per 8×H100 node; used for SKUs the "
        "catalog gives no typical power for",
    ),
    "om_per_node_month": (Decimal("4000"), "ASSUMPTION: on-site O&M staff and spares per node and month"),
    "rack": (Decimal("1"), "ASSUMPTION: one node per cabinet, so a site's rack price is per node"),
    "depreciation_months": (60, "DOMAIN.md: GPU server lives of 5–6 years (Amazon 5, Meta 5.5)"),
    "income_tax_rate": (Decimal("0.25"), "ASSUMPTION: the PRC standard enterprise income tax rate"),
    "win_probability": (Decimal("0.5"), "ASSUMPTION: a draft contract's chance of being signed"),
    "residual": (None, "DOMAIN.md (weak source) residual values 62.5%/42.5%/30% at 12/24/36 months"),
}


def _num(value: Decimal | int) -> Any:
    """Decimals as plain YAML numbers without float noise (``0.06``, ``2300000``)."""
    if isinstance(value, int):
        return value
    normal = value.normalize()
    return int(normal) if normal == normal.to_integral_value() else float(str(normal))


def _months_between(start: date, end_inclusive: date) -> int:
    from computelease.contracts.core import term_length

    length = term_length(start, end_inclusive)
    return max(1, length.whole_months + (1 if length.extra_days else 0))


def scenario_data(
    session: Session, principal: Principal, *, as_of: date, horizon_months: int | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The scenario document (a mapping ready for YAML) and the warnings met building it."""

    from computelease.catalog import service as catalog_service
    from computelease.contracts.core import ContractStatus
    from computelease.contracts.models import Contract
    from computelease.contracts.service import readable_contracts
    from computelease.errors import Unprocessable
    from computelease.finance import service as finance
    from computelease.finance.models import Lease, LeaseStatus
    from computelease.fleet.core import NodeState
    from computelease.fleet.models import Node
    from computelease.fleet.service import readable_nodes

    warnings: list[str] = []
    catalog = catalog_service.catalog(session)
    nodes = list(
        session.scalars(
            readable_nodes(principal)
            .where(Node.state.notin_([NodeState.retired, NodeState.sold]))
            .order_by(Node.purchase_date, Node.id)
        )
    )
    if not nodes:
        raise Unprocessable("the fleet has no nodes in service or on order, so there is nothing to model")
    currency = max({n.currency for n in nodes}, key=lambda c: sum(1 for n in nodes if n.currency == c))
    accelerators: set[str] = set()
    no_power: set[str] = set()
    for n in nodes:
        accelerators.add(n.model)
        try:
            sku = catalog.sku(n.sku_id)
        except Exception:  # noqa: S112 - an unknown SKU is reported by the scenario check with its field
            continue
        if sku.typical_kw is None or sku.typical_kw.value is None:
            no_power.add(n.sku_id)
    for sku_id in sorted(no_power):
        warnings.append(
            f"the catalog has no typical power for {sku_id}; assumed {ASSUMPTIONS['kw_per_node'][0]} kW"
        )

    contracts = []
    first = min(n.purchase_date for n in nodes)
    for c in session.scalars(readable_contracts(principal).order_by(Contract.start_date, Contract.id)):
        if c.status == ContractStatus.terminated:
            warnings.append(f"contract {c.name!r} was terminated early; left out")
            continue
        if c.accelerator_model is None or c.accelerator_model not in accelerators:
            warnings.append(f"contract {c.name!r} names no accelerator the fleet holds; left out")
            continue
        if c.currency != currency:
            warnings.append(f"contract {c.name!r} is in {c.currency}, not {currency}; left out")
            continue
        capacity: dict[str, Any] = {str(c.capacity_unit.value): _num(c.capacity)}
        if c.capacity_unit.value == "pflops":
            capacity["precision"] = c.precision or "bf16"
        entry: dict[str, Any] = {
            "name": c.name,
            "accelerator": c.accelerator_model,
            "capacity": capacity,
            "price": {"total": _num(c.total_value)},
            "start": c.start_date,
            "months": _months_between(c.start_date, c.end_date),
        }
        if c.status == ContractStatus.draft:
            entry["status"] = "pipeline"
            entry["win_probability"] = _num(ASSUMPTIONS["win_probability"][0])
        contracts.append(entry)
        first = min(first, c.start_date)

    start = first.replace(day=1)
    horizon = month_index(start, as_of) + 1 + (horizon_months or DEFAULT_HORIZON)
    if horizon > 600:
        raise Unprocessable(
            f"the fleet's history from {start} plus the horizon is {horizon} months, more than 600; "
            "give a shorter horizon_months"
        )
    end = month_start(start, horizon)
    contracts = [c for c in contracts if c["start"] < end]

    sites: dict[str, dict[str, Any]] = {}
    groups: dict[tuple, int] = defaultdict(int)
    for n in nodes:
        site = n.site
        sites.setdefault(
            site.code,
            {
                "id": site.code,
                "rack_per_node_month": _num(site.rack_price_per_month),
                "power_price_kwh": _num(site.power_price_per_kwh),
                "pue": _num(site.pue),
                "om_per_node_month": _num(ASSUMPTIONS["om_per_node_month"][0]),
            },
        )
        groups[(n.sku_id, site.code, n.purchase_date, n.purchase_cost, n.currency)] += 1
    fleet = [
        {
            "sku": sku,
            "count": count,
            "unit_price": _num(cost),
            **({"currency": cur} if cur != currency else {}),
            "date": bought,
            "site": site,
            "in_service_months": 0,
            **({"kw_per_node": _num(ASSUMPTIONS["kw_per_node"][0])} if sku in no_power else {}),
        }
        for (sku, site, bought, cost, cur), count in sorted(
            groups.items(), key=lambda kv: (kv[0][2], kv[0][0])
        )
    ]

    funding: dict[str, Any] = {}
    kinds = {"direct": "direct_lease", "sale_leaseback": "sale_leaseback"}
    for lease in session.scalars(finance.readable_leases(principal).order_by(Lease.start_date, Lease.id)):
        if lease.status == LeaseStatus.closed:
            continue
        name = kinds.get(str(getattr(lease.kind, "value", lease.kind)))
        if name is None or lease.currency != currency:
            warnings.append(
                f"lease {lease.code} cannot be modelled ({lease.kind}, {lease.currency}); left out"
            )
            continue
        terms = finance.terms_from_json(lease.terms)
        if name in funding:
            funding[name]["amount"] = _num(Decimal(str(funding[name]["amount"])) + terms.principal)
            warnings.append(f"lease {lease.code} is added to the {name} under the terms of the first one")
            continue
        method = str(getattr(terms.method, "value", terms.method))
        if method == "custom":
            warnings.append(f"lease {lease.code} repays on a custom plan; modelled as equal instalments")
            method = "annuity"
        funding[name] = {
            "amount": _num(terms.principal),
            "date": max(terms.start, start),
            "rate": _num(terms.annual_rate),
            "months": terms.months,
            "method": method,
            "timing": str(getattr(terms.timing, "value", terms.timing)),
            "frequency": str(getattr(terms.frequency, "value", terms.frequency)),
            "grace_months": terms.grace_months,
            "fee_rate": _num(terms.fee_rate),
            "deposit_rate": _num(terms.deposit_rate),
            "deposit_use": str(getattr(terms.deposit_use, "value", terms.deposit_use)),
            "balloon_rate": _num((terms.balloon / terms.principal).quantize(Decimal("0.000001"))),
            "purchase_option": _num(terms.purchase_option),
            "lender": lease.lessor.name,
        }
    drawn = [
        line
        for line in session.scalars(finance.readable_credit_lines(principal))
        if line.drawn > 0 and line.currency == currency and line.expires_on > as_of
    ]
    if drawn:
        amount = sum((line.drawn for line in drawn), Decimal(0))
        line = max(drawn, key=lambda x: x.drawn)
        funding["bank"] = {
            "amount": _num(amount),
            "date": as_of.replace(day=1),
            "rate": _num(line.rate),
            "months": _months_between(as_of, line.expires_on),
            "method": "interest_only",
            "lender": line.lessor.name,
        }
        if len(drawn) > 1:
            warnings.append("several drawn credit lines are one bank loan at the largest line's rate")

    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    data: dict[str, Any] = {
        "name": f"live fleet and contracts as of {as_of}",
        "description": (
            f"Built from the database on {as_of}: {len(nodes)} nodes, {len(contracts)} contracts, "
            f"{len(funding)} funding instruments. Market, costs not stored and taxes are assumptions "
            "(see the header); edit them and run again."
        ),
        "currency": currency,
        "start": start,
        "horizon_months": horizon,
        "discount_rate": _num(a["discount_rate"]),
        "sites": list(sites.values()),
        "fleet": fleet,
        "contracts": contracts,
        "market": {
            "prices": [
                {"accelerator": acc, "per_gpu_hour": _num(a["market_price"])} for acc in sorted(accelerators)
            ],
            "occupancy": _num(a["occupancy"]),
            "failures_per_1000_gpu_days": _num(a["failures"]),
            "repair_hours": _num(a["repair_hours"]),
            "residual": [{"age_months": age, "value": _num(v)} for age, v in DEFAULT_RESIDUAL if age > 0],
        },
        "funding": funding,
        "accounting": {
            "depreciation": {"months": a["depreciation_months"]},
            "income_tax_rate": _num(a["income_tax_rate"]),
        },
    }
    return data, warnings


def assumptions() -> list[str]:
    return [f"{key}: {note}" for key, (_, note) in ASSUMPTIONS.items()]


def live_yaml(
    session: Session, principal: Principal, *, as_of: date, horizon_months: int | None = None
) -> str:
    """The scenario as YAML text, its assumptions and warnings in a comment header."""
    data, warnings = scenario_data(session, principal, as_of=as_of, horizon_months=horizon_months)
    header = ["# Built by computelease from the live database. Facts come from the records; these are not:"]
    header += [f"#   {line}" for line in assumptions()]
    header += [f"# WARNING: {w}" for w in warnings]
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)
    return "\n".join(header) + "\n" + body


def scenario_from_database(
    session: Session,
    principal: Principal,
    *,
    as_of: date,
    horizon_months: int | None = None,
) -> Any:
    """The checked :class:`~computelease.economics.scenario.Scenario` of what ``principal`` reads."""
    from computelease.catalog import service as catalog_service
    from computelease.economics.runs import parse_text

    text = live_yaml(session, principal, as_of=as_of, horizon_months=horizon_months)
    return parse_text(text, catalog=catalog_service.catalog(session), source="live database")
