"""What every command shares: consoles, the command's transaction, JSON output, tables."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from computelease.config import get_settings
from computelease.db import Database
from computelease.errors import AppError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class SchemaNotCurrent(AppError):
    pass


def database() -> Database:
    return Database(get_settings().database_url)


@contextmanager
def transaction() -> Iterator[Session]:
    """One CLI command, one transaction, on a database whose schema is current."""
    from computelease import migrate

    db = database()
    try:
        if not migrate.is_current(db):
            raise SchemaNotCurrent("the database schema is not current; run `computelease db upgrade` first")
        with db.transaction(actor=f"cli:{getpass.getuser()}") as session:
            yield session
    finally:
        db.dispose()


def echo_json(data: object) -> None:
    """Machine-readable output: plain JSON on stdout, CJK kept readable, Decimals as strings."""
    print(json.dumps(data, ensure_ascii=False, default=str, indent=2))


def echo_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    table = Table()
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)
