"""The `computelease` command. Commands parse arguments and call services; they never write SQL.

Each command runs in one transaction (``Database.transaction``); errors print one line that says what
to fix and exit non-zero, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from computelease import __version__
from computelease.auth.core import Role
from computelease.config import get_settings
from computelease.db import Database
from computelease.errors import AppError
from computelease.kit.cli import SchemaNotCurrent, database, echo_json, echo_table, err, out, transaction

app = typer.Typer(
    name="computelease",
    help="Run and finance a GPU compute-leasing business.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
user_app = typer.Typer(help="Web logins.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Migrate the database schema to the latest revision."""
    from computelease import migrate

    db = database()
    try:
        migrate.upgrade(db, revision)
        out.print(f"database at revision {migrate.current(db)}")
    finally:
        db.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the latest one."""
    from computelease import migrate

    db = database()
    try:
        out.print(f"current: {migrate.current(db) or 'empty'}  latest: {migrate.head(db)}")
    finally:
        db.dispose()


def _print_credentials(creds: list, base_url: str) -> None:
    # Plain lines, not a table: tokens must stay whole to be copied.
    out.print("demo logins, one per role (web password, then API token):")
    for c in creds:
        scope = f"  [{c.scope}]" if c.scope else ""
        out.print(f"  {c.role.value:<9} user {c.username:<9} password {c.password}  token {c.token}{scope}")
    out.print(f"log in at {base_url}/login   API: {base_url}/docs   health: {base_url}/healthz")


def _seed_demo(base_url: str) -> None:
    from computelease import demo

    with transaction() as session:
        world = demo.seed(session)
    if world is not None:
        demo.save_credentials(world)
        _print_credentials(world.credentials, base_url)
        return
    saved = demo.load_credentials()
    if saved:
        out.print(f"the database already holds the demo; logins kept in {demo.CREDENTIALS_FILE}:")
        _print_credentials(saved, base_url)
    else:
        out.print(
            "the database already has users; not seeding. Reset a password with "
            "`computelease user passwd USERNAME`."
        )


@app.command("demo")
def demo_cmd() -> None:
    """Seed an empty database with the demo and print one login and one token per role."""
    _seed_demo("http://127.0.0.1:8000")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="seed the demo when the database is empty")] = False,
) -> None:
    """Serve the API and web pages. The embedded SQLite database is migrated on start."""
    import uvicorn

    from computelease import migrate
    from computelease.app import create_app

    settings = get_settings()
    db = Database(settings.database_url)
    if db.url.startswith("sqlite"):
        migrate.upgrade(db)
    elif not migrate.is_current(db):
        # Several API processes share a server database; one explicit upgrade avoids racing migrations.
        raise SchemaNotCurrent("the database schema is not current; run `computelease db upgrade` first")
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    if demo:
        _seed_demo(base_url)
    else:
        out.print(f"serving on {base_url}  (log in at {base_url}/login)")
    uvicorn.run(create_app(settings, db), host=host, port=port, log_level="info")


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="admin, operator, customer or lessor")],
    name: Annotated[str, typer.Option(help="who or what uses the token")],
    customer: Annotated[int | None, typer.Option(help="customer id (role customer)")] = None,
    lessor: Annotated[int | None, typer.Option(help="lessor id (role lessor)")] = None,
) -> None:
    """Create an API token. The token is printed once, alone on the last line."""
    from computelease.auth import service

    with transaction() as session:
        token, raw = service.create_token(
            session, role=role, name=name, customer_id=customer, lessor_id=lessor
        )
        token_id = token.id
    err.print(f"token {token_id} ({role.value}) created; it is shown once, store it now:")
    print(raw)


@token_app.command("list")
def token_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tokens (never their secrets)."""
    from computelease.auth import service
    from computelease.auth.schemas import TokenOut

    with transaction() as session:
        rows = [TokenOut.model_validate(t).model_dump(mode="json") for t in service.list_tokens(session)]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "name", "role", "customer", "lessor", "hint", "revoked"),
        (
            (
                r["id"],
                r["name"],
                r["role"],
                r["customer_id"],
                r["lessor_id"],
                r["hint"] + "…",
                r["revoked_at"],
            )
            for r in rows
        ),
    )


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token; requests with it are refused from now on."""
    from computelease.auth import service

    with transaction() as session:
        service.revoke_token(session, token_id)
    out.print(f"token {token_id} revoked")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, operator, customer or lessor")],
    customer: Annotated[int | None, typer.Option(help="customer id (role customer)")] = None,
    lessor: Annotated[int | None, typer.Option(help="lessor id (role lessor)")] = None,
    display_name: str = "",
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
) -> None:
    """Create a web login."""
    from computelease.auth import service

    password = _read_password(password_stdin)
    with transaction() as session:
        service.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            customer_id=customer,
            lessor_id=lessor,
        )
    out.print(f"user {username} created")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
) -> None:
    """Set a web login's password."""
    from computelease.auth import service

    password = _read_password(password_stdin)
    with transaction() as session:
        service.set_password(session, username, password)
    out.print(f"password of {username} changed")


def _domain_commands() -> None:
    from computelease.registry import parts

    for module in parts("cli"):
        if hasattr(module, "app"):
            app.add_typer(module.app, name=module.__name__.split(".")[1])
        for name, group in getattr(module, "commands", []):
            app.add_typer(group, name=name)


_domain_commands()


def main(argv: list[str] | None = None) -> int:
    """Runs the command and turns every expected failure into one line on stderr."""
    try:
        result = app(args=argv, prog_name="computelease", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:
        exc.show()
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        return 130
    except AppError as exc:
        err.print(f"error: {exc.detail}", markup=False)
        return 1
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        err.print(
            f"error: the database refused the command ({reason}); check COMPUTELEASE_DATABASE_URL "
            "and run `computelease db upgrade`",
            markup=False,
        )
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
