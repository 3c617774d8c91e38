"""The command line on a throwaway SQLite file, migrated once per session and copied per test."""

from __future__ import annotations

import shutil

import pytest

from computelease import migrate
from computelease.cli import main
from computelease.config import get_settings
from computelease.db import Database


@pytest.fixture(scope="session")
def migrated_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys, migrated_file):
    shutil.copy(migrated_file, tmp_path / "cli.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    get_settings.cache_clear()
