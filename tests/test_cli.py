"""The command line, run in-process against a throwaway SQLite file."""

from __future__ import annotations

import pytest

from computelease.cli import main
from computelease.config import get_settings


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    get_settings.cache_clear()


def test_commands_refuse_an_unmigrated_database(cli) -> None:
    code, _out, err = cli("token", "list")
    assert code == 1
    assert err.strip() == "error: the database schema is not current; run `computelease db upgrade` first"


def test_upgrade_then_demo_then_token(cli, tmp_path) -> None:
    assert cli("db", "upgrade")[0] == 0
    code, out, _ = cli("db", "current")
    current, latest = out.split()[1], out.split()[3]
    assert code == 0 and current == latest != "empty"

    code, out, _ = cli("demo")
    assert code == 0
    for role in ("admin", "operator", "customer", "lessor"):
        assert f"  {role}" in out
    assert out.count("token cl_") == 4
    assert (tmp_path / ".computelease-demo.txt").stat().st_mode & 0o077 == 0

    code, out, _ = cli("demo")  # a second run seeds nothing and shows the kept logins
    assert code == 0 and "already holds the demo" in out

    code, out, err = cli("token", "create", "--role", "customer", "--name", "portal", "--customer", "1")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("cl_") and " " not in token
    assert "shown once" in err

    code, out, _ = cli("token", "list", "--json")
    assert code == 0 and "portal" in out and token not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "create", "--role", "customer", "--name", "x"), "needs --customer ID"),
        (
            ("token", "create", "--role", "lessor", "--name", "x", "--lessor", "42"),
            "lessor 42 does not exist",
        ),
        (("token", "revoke", "999"), "token 999 does not exist"),
    ],
)
def test_bad_input_is_one_line(cli, args, message) -> None:
    cli("db", "upgrade")
    code, out, err = cli(*args)
    assert code == 1
    assert err.count("\n") == 1 and message in err and "Traceback" not in err + out


def test_usage_errors_do_not_trace(cli) -> None:
    code, _out, err = cli("token", "create", "--role", "king", "--name", "x")
    assert code == 2 and "king" in err and "Traceback" not in err


def test_unreachable_database(cli, monkeypatch) -> None:
    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    code, _out, err = cli("customer", "list")
    assert code == 1 and err.startswith("error: the database refused the command")
    assert err.count("\n") == 1


def test_user_create_from_stdin(cli, monkeypatch) -> None:
    import io

    cli("db", "upgrade")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    code, out, _ = cli("user", "create", "alice", "--role", "operator", "--password-stdin")
    assert code == 0 and "alice" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _out, err = cli("user", "passwd", "alice", "--password-stdin")
    assert code == 1 and "at least 10" in err
