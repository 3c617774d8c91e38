from __future__ import annotations

from typing import Annotated

import typer

from computelease.auth.core import SYSTEM
from computelease.contracts.models import Customer
from computelease.contracts.schemas import CustomerOut
from computelease.contracts.service import readable_customers
from computelease.kit.cli import echo_json, echo_table, transaction

customer_app = typer.Typer(help="Customers.", no_args_is_help=True)
commands = [("customer", customer_app)]


@customer_app.command("list")
def customer_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List customers."""
    with transaction() as session:
        rows = [
            CustomerOut.model_validate(c).model_dump(mode="json")
            for c in session.scalars(readable_customers(SYSTEM).order_by(Customer.id))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "name", "segment", "credit limit"),
        ((r["id"], r["name"], r["segment"], f"{r['credit_limit']} {r['currency']}") for r in rows),
    )
