from __future__ import annotations

from typing import Annotated

import typer

from computelease.auth.core import SYSTEM
from computelease.finance.models import Lessor
from computelease.finance.schemas import LessorOut
from computelease.finance.service import readable_lessors
from computelease.kit.cli import echo_json, echo_table, transaction

lessor_app = typer.Typer(help="Lessor organisations.", no_args_is_help=True)
commands = [("lessor", lessor_app)]


@lessor_app.command("list")
def lessor_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List lessor organisations."""
    with transaction() as session:
        rows = [
            LessorOut.model_validate(x).model_dump(mode="json")
            for x in session.scalars(readable_lessors(SYSTEM).order_by(Lessor.id))
        ]
    if as_json:
        echo_json(rows)
        return
    echo_table(("id", "name", "kind"), ((r["id"], r["name"], r["kind"]) for r in rows))
