"""The demo: one command seeds an empty database so a person can log in as every role.

Each domain adds its part by appending a seeder to :data:`SEEDERS`; a seeder receives the session and
the :class:`DemoWorld` built so far, and adds what it needs (never committing: the caller does).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from computelease.auth import service as auth
from computelease.auth.core import Role
from computelease.auth.models import User
from computelease.contracts import service as contracts
from computelease.contracts.demo import demo_tax_id
from computelease.contracts.models import Customer, Segment
from computelease.contracts.schemas import CustomerIn
from computelease.finance import service as finance
from computelease.finance.models import Lessor, LessorKind
from computelease.finance.schemas import LessorIn

CREDENTIALS_FILE = Path(".computelease-demo.txt")


@dataclass
class Credential:
    role: Role
    username: str
    password: str
    token: str
    scope: str = ""


@dataclass
class DemoWorld:
    """What the seeders built so far, for the seeders after them."""

    customers: list[Customer] = field(default_factory=list)
    lessors: list[Lessor] = field(default_factory=list)
    credentials: list[Credential] = field(default_factory=list)
    # Filled by later domains (sites, nodes, contracts, leases...), keyed by the domain's name.
    extra: dict[str, Any] = field(default_factory=dict)


Seeder = Callable[[Session, DemoWorld], None]


def _organisations(session: Session, world: DemoWorld) -> None:
    for n, (name, segment, limit) in enumerate(
        (
            ("智源模型科技 (示例)", Segment.model_maker, "80000000.00"),
            ("云帆AI云 (示例)", Segment.ai_cloud, "50000000.00"),
        ),
        start=1,
    ):
        data = CustomerIn(name=name, segment=segment, credit_limit=Decimal(limit), tax_id=demo_tax_id(n))
        world.customers.append(contracts.create(session, data))
    for name in ("信达金融租赁 (示例)", "浙银金融租赁 (示例)"):
        world.lessors.append(finance.create(session, LessorIn(name=name, kind=LessorKind.financial_leasing)))


def _logins(session: Session, world: DemoWorld) -> None:
    bindings: list[tuple[Role, str, int | None, int | None, str]] = [
        (Role.admin, "admin", None, None, ""),
        (Role.operator, "operator", None, None, ""),
        (Role.customer, "customer", world.customers[0].id, None, world.customers[0].name),
        (Role.lessor, "lessor", None, world.lessors[0].id, world.lessors[0].name),
    ]
    for role, username, customer_id, lessor_id, scope in bindings:
        password = secrets.token_urlsafe(12)
        auth.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=f"demo {username}",
            customer_id=customer_id,
            lessor_id=lessor_id,
        )
        _, token = auth.create_token(
            session, role=role, name=f"demo {username}", customer_id=customer_id, lessor_id=lessor_id
        )
        world.credentials.append(Credential(role, username, password, token, scope))


def _fleet(session: Session, world: DemoWorld) -> None:
    from computelease.fleet.demo import seed

    seed(session, world)


def _contracts(session: Session, world: DemoWorld) -> None:
    from computelease.contracts.demo import seed

    seed(session, world)


def _finance(session: Session, world: DemoWorld) -> None:
    from computelease.finance.demo import seed

    seed(session, world)


def _allocation(session: Session, world: DemoWorld) -> None:
    from computelease.allocation.demo import seed

    seed(session, world)


def _telemetry(session: Session, world: DemoWorld) -> None:
    from computelease.telemetry.demo import seed

    seed(session, world)


def _economics(session: Session, world: DemoWorld) -> None:
    from computelease.economics.demo import seed

    seed(session, world)


def _billing(session: Session, world: DemoWorld) -> None:
    from computelease.billing.demo import seed

    seed(session, world)


# Order matters along the chain: telemetry's incidents become SLA credits on the invoices billing issues,
# and the lessor's view reads those invoices.
SEEDERS: list[Seeder] = [
    _organisations,
    _logins,
    _fleet,
    _contracts,
    _allocation,
    _telemetry,
    _finance,
    _billing,
    _economics,
]


def is_empty(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is None


def seed(session: Session) -> DemoWorld | None:
    """Seeds an empty database; returns None (and touches nothing) when it already has users."""
    if not is_empty(session):
        return None
    world = DemoWorld()
    for seeder in SEEDERS:
        seeder(session, world)
    session.flush()
    return world


def save_credentials(world: DemoWorld, path: Path = CREDENTIALS_FILE) -> None:
    """Kept beside the demo database (mode 600) so a second `make run` can show the logins again."""
    lines = [f"{c.role.value}\t{c.username}\t{c.password}\t{c.token}\t{c.scope}" for c in world.credentials]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def load_credentials(path: Path = CREDENTIALS_FILE) -> list[Credential]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        role, username, password, token, scope = (line.split("\t") + [""] * 5)[:5]
        out.append(Credential(Role(role), username, password, token, scope))
    return out
