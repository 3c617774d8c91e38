"""`computelease customer ...`, `computelease contract ...` and `computelease sla-policy ...`.

Commands run as the system principal (an operator at the console) in one transaction each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from computelease.auth.core import SYSTEM
from computelease.contracts import service
from computelease.contracts.core import ContractStatus, Placement
from computelease.contracts.models import Customer, SlaPolicy
from computelease.contracts.schemas import (
    ContractIn,
    CustomerIn,
    CustomerOut,
    SlaPolicyIn,
    SlaPolicyOut,
    TransitionIn,
)
from computelease.errors import Unprocessable
from computelease.kit.cli import echo_json, echo_table, out, transaction

customer_app = typer.Typer(help="Customers.", no_args_is_help=True)
contract_app = typer.Typer(help="Capacity contracts.", no_args_is_help=True)
sla_policy_app = typer.Typer(help="SLA policies (availability target, credit tiers).", no_args_is_help=True)
commands = [("customer", customer_app), ("contract", contract_app), ("sla-policy", sla_policy_app)]

M = TypeVar("M", bound=BaseModel)
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


def validated(model: type[M], data: dict[str, Any]) -> M:
    """The model, or one line naming each bad option (never a traceback)."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise Unprocessable(f"fix these options: {problems}") from None


# ------------------------------------------------------------------------------------- customers


@customer_app.command("list")
def customer_list(as_json: JsonFlag = False) -> None:
    """List customers."""
    with transaction() as session:
        rows = [
            CustomerOut.model_validate(c).model_dump(mode="json")
            for c in session.scalars(service.readable_customers(SYSTEM).order_by(Customer.id))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "name", "segment", "credit limit"),
        ((r["id"], r["name"], r["segment"], f"{r['credit_limit']} {r['currency']}") for r in rows),
    )


@customer_app.command("create")
def customer_create(
    name: Annotated[str, typer.Option(help="unique name")],
    segment: Annotated[
        str, typer.Option(help="model_maker, ai_cloud, enterprise, government_center, research")
    ],
    credit_limit: Annotated[str, typer.Option(help="amount, e.g. 50000000.00")] = "0.00",
    currency: Annotated[str, typer.Option(help="CNY, USD, EUR or HKD")] = "CNY",
    tax_id: Annotated[
        str | None,
        typer.Option(help="统一社会信用代码 (18 characters) for the fapiao; omit for a foreign buyer"),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a customer."""
    fields = {"name": name, "segment": segment, "credit_limit": credit_limit, "currency": currency}
    data = validated(CustomerIn, fields | ({"tax_id": tax_id} if tax_id is not None else {}))
    with transaction() as session:
        row = CustomerOut.model_validate(service.create(session, data)).model_dump(mode="json")
    if as_json:
        echo_json(row)
    else:
        out.print(f"customer {row['id']} created: {row['name']}")


@customer_app.command("show")
def customer_show(customer_id: int, as_json: JsonFlag = False) -> None:
    """Show a customer and its contracts."""
    with transaction() as session:
        customer = service.get(session, SYSTEM, customer_id)
        row = CustomerOut.model_validate(customer).model_dump(mode="json")
        contracts = session.scalars(service.list_contracts(SYSTEM, customer_id=customer_id))
        row["contracts"] = [c.model_dump(mode="json") for c in service.present_many(session, contracts)]
    if as_json:
        echo_json(row)
        return
    echo_table(
        ("field", "value"),
        [(k, row[k]) for k in ("id", "name", "segment", "credit_limit", "currency", "tax_id")],
    )
    _contract_table(row["contracts"])


# ------------------------------------------------------------------------------------- contracts


def _contract_table(rows: list[dict[str, Any]]) -> None:
    echo_table(
        ("id", "name", "customer", "status", "capacity", "start", "end", "total value"),
        (
            (
                r["id"],
                r["name"],
                r["customer_name"],
                r["status"],
                r["capacity_label"],
                r["start_date"],
                r["end_date"],
                f"{r['total_value']} {r['currency']}",
            )
            for r in rows
        ),
    )


@contract_app.command("list")
def contract_list(
    as_json: JsonFlag = False,
    status: Annotated[ContractStatus | None, typer.Option(help="only this status")] = None,
    customer: Annotated[int | None, typer.Option(help="only this customer id")] = None,
) -> None:
    """List contracts, newest start first."""
    with transaction() as session:
        contracts = session.scalars(service.list_contracts(SYSTEM, status=status, customer_id=customer))
        rows = [c.model_dump(mode="json") for c in service.present_many(session, contracts)]
    if as_json:
        echo_json(rows)
    else:
        _contract_table(rows)


def _show(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(row)
        return
    skip = {"events", "sla_policy", "capacity_by_model", "created_at", "updated_at"}
    echo_table(("field", "value"), [(k, v) for k, v in row.items() if k not in skip])
    echo_table(
        ("model", "GPUs", "nodes", "PFLOPS"),
        ((c["model"], c["gpus"], c["nodes"], c["pflops"]) for c in row["capacity_by_model"]),
    )
    echo_table(
        ("at", "from", "to", "reason", "by"),
        ((e["at"], e["from_status"], e["to_status"], e["reason"], e["actor"]) for e in row["events"]),
    )


@contract_app.command("show")
def contract_show(contract_id: int, as_json: JsonFlag = False) -> None:
    """Show a contract: terms, capacity per compatible model, total value, status timeline."""
    with transaction() as session:
        row = service.present_detail(session, service.get_contract(session, SYSTEM, contract_id))
    _show(row.model_dump(mode="json"), as_json)


@contract_app.command("create")
def contract_create(
    customer: Annotated[int, typer.Option(help="customer id")],
    name: Annotated[str, typer.Option(help="a name people recognise")],
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="first day, in the contract's zone")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="last day (inclusive)")],
    pflops: Annotated[str | None, typer.Option(help="capacity in PFLOPS (dense) at --precision")] = None,
    gpus: Annotated[int | None, typer.Option(help="capacity in GPUs")] = None,
    nodes: Annotated[int | None, typer.Option(help="capacity in nodes")] = None,
    precision: Annotated[str, typer.Option(help="precision of --pflops")] = "bf16",
    model: Annotated[str | None, typer.Option(help="accelerator model id from the catalog")] = None,
    min_memory_gb: Annotated[str | None, typer.Option(help="minimum spec: GPU memory, GB")] = None,
    min_tflops: Annotated[str | None, typer.Option(help="minimum spec: dense TFLOPS per GPU")] = None,
    min_tflops_precision: Annotated[str, typer.Option(help="precision of --min-tflops")] = "bf16",
    placement: Annotated[Placement, typer.Option(help="same_fabric, same_site or any")] = Placement.any,
    monthly_fee: Annotated[str | None, typer.Option(help="price: fixed fee per month")] = None,
    price_per_pflops_month: Annotated[str | None, typer.Option(help="price per PFLOPS-month")] = None,
    price_per_gpu_hour: Annotated[str | None, typer.Option(help="price per GPU-hour")] = None,
    om_monthly_fee: Annotated[str, typer.Option(help="O&M fee per month")] = "0",
    deposit: Annotated[str, typer.Option(help="security deposit")] = "0",
    prepayment: Annotated[str, typer.Option(help="prepayment")] = "0",
    payment_terms_days: Annotated[int, typer.Option(help="days to pay an invoice")] = 30,
    currency: Annotated[str, typer.Option(help="CNY, USD, EUR or HKD")] = "CNY",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the dates and billing months")] = (
        "Asia/Shanghai"
    ),
    sla_policy: Annotated[int | None, typer.Option(help="SLA policy id")] = None,
    notes: Annotated[str, typer.Option(help="free text")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a draft contract. Give one of --pflops/--gpus/--nodes, one price option, and --model or a
    minimum spec."""
    capacity = {k: v for k, v in (("pflops", pflops), ("gpus", gpus), ("nodes", nodes)) if v is not None}
    prices = {
        k: v
        for k, v in (
            ("monthly_fee", monthly_fee),
            ("per_pflops_month", price_per_pflops_month),
            ("per_gpu_hour", price_per_gpu_hour),
        )
        if v is not None
    }
    if len(capacity) != 1:
        raise Unprocessable("give exactly one of --pflops, --gpus or --nodes")
    if len(prices) != 1:
        raise Unprocessable(
            "give exactly one of --monthly-fee, --price-per-pflops-month or --price-per-gpu-hour"
        )
    [(unit, value)] = capacity.items()
    [(pricing, price)] = prices.items()
    data = validated(
        ContractIn,
        {
            "customer_id": customer,
            "name": name,
            "capacity_unit": unit,
            "capacity": str(value),
            "precision": precision if unit == "pflops" else None,
            "accelerator_model": model,
            "min_memory_gb": min_memory_gb,
            "min_tflops": min_tflops,
            "min_tflops_precision": min_tflops_precision if min_tflops is not None else None,
            "placement": placement,
            "start_date": start.date(),
            "end_date": end.date(),
            "pricing": pricing,
            "price": price,
            "om_monthly_fee": om_monthly_fee,
            "deposit": deposit,
            "prepayment": prepayment,
            "payment_terms_days": payment_terms_days,
            "currency": currency,
            "timezone": timezone,
            "sla_policy_id": sla_policy,
            "notes": notes,
        },
    )
    with transaction() as session:
        contract = service.create_contract(session, SYSTEM, data)
        row = service.present_detail(session, contract).model_dump(mode="json")
    if as_json:
        echo_json(row)
    else:
        out.print(
            f"contract {row['id']} created in draft: {row['capacity_label']}, "
            f"total value {row['total_value']} {row['currency']}"
        )


@contract_app.command("transition")
def contract_transition(
    contract_id: int,
    to: Annotated[ContractStatus, typer.Option(help="signed, active, ended or terminated")],
    at: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"], help="when, with offset"),
    ] = None,
    reason: Annotated[str, typer.Option(help="why (required to terminate)")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Change a contract's status (draft → signed → active → ended | terminated)."""
    data = validated(TransitionIn, {"to": to, "at": at, "reason": reason})
    with transaction() as session:
        contract = service.transition(session, SYSTEM, contract_id, data)
        row = service.present_detail(session, contract).model_dump(mode="json")
    if as_json:
        echo_json(row)
    else:
        out.print(f"contract {contract_id} is now {row['status']}")


# ---------------------------------------------------------------------------------- SLA policies


def _tier(text: str) -> dict[str, str]:
    below, sep, credit = text.partition(":")
    if not sep:
        raise Unprocessable(f"--tier {text!r} must be BELOW:CREDIT_PCT, e.g. 99.9:10")
    return {"below": below.strip(), "credit_pct": credit.strip()}


@sla_policy_app.command("list")
def sla_policy_list(as_json: JsonFlag = False) -> None:
    """List SLA policies."""
    with transaction() as session:
        rows = [
            SlaPolicyOut.model_validate(p).model_dump(mode="json")
            for p in session.scalars(service.readable_sla_policies(SYSTEM).order_by(SlaPolicy.name))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "name", "target %", "tiers (below: credit %)", "cap %", "maintenance h", "notice h"),
        (
            (
                r["id"],
                r["name"],
                r["target_pct"],
                ", ".join(f"<{t['below']}: {t['credit_pct']}" for t in r["credit_tiers"]),
                r["cap_pct"],
                r["maintenance_allowance_hours"],
                r["notice_hours"],
            )
            for r in rows
        ),
    )


@sla_policy_app.command("create")
def sla_policy_create(
    name: Annotated[str, typer.Option(help="unique name")],
    target: Annotated[str, typer.Option(help="availability target %, e.g. 99.9")],
    tier: Annotated[
        list[str] | None, typer.Option(help="BELOW:CREDIT_PCT, repeat from the highest threshold down")
    ] = None,
    cap: Annotated[str, typer.Option(help="credit cap, % of the month's fee")] = "100",
    maintenance_hours: Annotated[str, typer.Option(help="monthly maintenance allowance, hours")] = "0",
    notice_hours: Annotated[str, typer.Option(help="notice needed for maintenance, hours")] = "72",
    description: str = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an SLA policy."""
    data = validated(
        SlaPolicyIn,
        {
            "name": name,
            "target_pct": target,
            "credit_tiers": [_tier(t) for t in tier or []],
            "cap_pct": cap,
            "maintenance_allowance_hours": maintenance_hours,
            "notice_hours": notice_hours,
            "description": description,
        },
    )
    with transaction() as session:
        row = SlaPolicyOut.model_validate(service.create_sla_policy(session, data)).model_dump(mode="json")
    if as_json:
        echo_json(row)
    else:
        out.print(f"SLA policy {row['id']} created: {row['name']}")


__all__ = ["commands", "validated"]
