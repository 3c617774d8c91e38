"""Schema migrations (Alembic), shipped inside the package so ``pip install`` users can migrate."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from computelease.db import Database


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "computelease:migrations")
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "heads") -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(db: Database) -> str | None:
    """The database's revision(s), comma-separated; None when it was never migrated."""
    with db.engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


def head(db: Database) -> str | None:
    """The latest revision(s) shipped, comma-separated (several only while branches await a merge)."""
    return ",".join(sorted(ScriptDirectory.from_config(alembic_config(db)).get_heads())) or None


def is_current(db: Database) -> bool:
    return current(db) == head(db)
