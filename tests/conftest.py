"""Shared fixtures. Database tests run once per backend: SQLite always, PostgreSQL when
COMPUTELEASE_TEST_POSTGRES_URL is set (each run in its own schema, dropped at the end)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

try:
    import time_machine
except ImportError:  # the GPU machine's image: its tests read no calendar
    time_machine = None
from sqlalchemy import create_engine, delete, text
from sqlalchemy.orm import Session

from computelease import migrate
from computelease.allocation.models import Allocation
from computelease.app import create_app
from computelease.auth import service as auth
from computelease.auth.core import SYSTEM, Role
from computelease.billing.models import Invoice, Payment
from computelease.config import Settings
from computelease.contracts import service as contracts
from computelease.contracts.models import Customer, Segment
from computelease.contracts.schemas import ContractIn, SlaPolicyIn
from computelease.db import Base, Database
from computelease.finance import service as finance
from computelease.finance.models import Lessor, LessorKind
from computelease.finance.schemas import CreditLineIn, LeaseIn, TermsIn
from computelease.fleet import service as fleet
from computelease.fleet.core import NodeState
from computelease.fleet.schemas import NodeIn, RackIn, SiteIn
from computelease.probe.models import AcceptanceRun
from computelease.probe.schemas import Verdict
from computelease.telemetry import service as telemetry

PG_URL = os.environ.get("COMPUTELEASE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def _pg_database(schema: str) -> Database:
    assert PG_URL
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return Database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")


def _drop_pg_schema(schema: str) -> None:
    assert PG_URL
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


# The fixtures are dated in 2026: contracts run through the year, a month of October telemetry,
# invoices numbered CL-2026-…, "last month" and "this month" read off the clock. Every test runs on
# one day of that year, the clock ticking from there, so the suite means the same on any day it runs.
SUITE_NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _suite_clock() -> Iterator[None]:
    if time_machine is None:
        yield
        return
    with time_machine.travel(SUITE_NOW, tick=True):
        yield


@pytest.fixture(scope="session", params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
        migrate.upgrade(db)
        yield db
        db.dispose()
        return
    schema = f"cl_test_{uuid.uuid4().hex[:10]}"
    db = _pg_database(schema)
    try:
        migrate.upgrade(db)
        yield db
    finally:
        db.dispose()
        _drop_pg_schema(schema)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """A migrated, empty database; emptied again after the test."""
    yield database
    with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.transaction(actor="test") as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url="sqlite://", secret_key="test-secret-key-" + "x" * 32, default_locale="en")


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as c:
        yield c


@dataclass
class World:
    """Two of every tenant, so every test can check that one never sees the other."""

    customer_a: Customer
    customer_b: Customer
    lessor_x: Lessor
    lessor_y: Lessor
    tokens: dict[str, str]
    site: Any = None
    node: Any = None
    contract_a: Any = None
    contract_b: Any = None
    sla_policy_a: Any = None
    sla_policy_b: Any = None
    lease_y: Any = None
    acceptance_run: Any = None
    incident: Any = None
    credit_line_y: Any = None

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def world(db: Database) -> World:
    with db.transaction(actor="test") as s:
        a = Customer(name="Customer A own", segment=Segment.model_maker, credit_limit="1000.00")
        b = Customer(name="Customer B FOREIGN-TO-A", segment=Segment.ai_cloud, credit_limit="2000.00")
        x = Lessor(name="Lessor X own", kind=LessorKind.financial_leasing)
        y = Lessor(name="Lessor Y FOREIGN-TO-X", kind=LessorKind.finance_leasing)
        s.add_all([a, b, x, y])
        s.flush()
        tokens = {
            "admin": auth.create_token(s, role=Role.admin, name="t-admin")[1],
            "operator": auth.create_token(s, role=Role.operator, name="t-operator")[1],
            "customer_a": auth.create_token(s, role=Role.customer, name="t-ca", customer_id=a.id)[1],
            "customer_b": auth.create_token(s, role=Role.customer, name="t-cb", customer_id=b.id)[1],
            "lessor_x": auth.create_token(s, role=Role.lessor, name="t-lx", lessor_id=x.id)[1],
            "lessor_y": auth.create_token(s, role=Role.lessor, name="t-ly", lessor_id=y.id)[1],
        }
    return World(a, b, x, y, tokens)


@pytest.fixture
def matrix_world(db: Database, world: World) -> World:
    """``world`` plus one record of every scoped kind, for the scoping matrix.

    Kept apart from ``world`` so that domain tests count only their own records. A new domain adds its
    records here, named so that the matrix can spot them in a response (FOREIGN-TO-A, FOREIGN-TO-X,
    FOREIGN-TO-ALL).
    """
    a, b, y = world.customer_a, world.customer_b, world.lessor_y
    with db.transaction(actor="test") as s:
        site = fleet.create_site(
            s,
            SiteIn(
                code="site-foreign",
                name="Site FOREIGN-TO-ALL",
                kind="colocation",
                city="上海",
                pue="1.5",
                power_price_per_kwh="0.8",
                racks=[RackIn(name="R-FOREIGN")],
            ),
        )
        node = fleet.create_node(
            s,
            NodeIn(
                serial="NODE-FOREIGN-TO-ALL",
                sku_id="nvidia-hgx-h100-8gpu",
                site_id=site.id,
                purchase_cost="2300000.00",
                purchase_date="2025-01-01",
            ),
        )
        pa = contracts.create_sla_policy(s, SlaPolicyIn(name="Matrix SLA A own", target_pct="99.9"))
        pb = contracts.create_sla_policy(s, SlaPolicyIn(name="Matrix SLA B FOREIGN-TO-A", target_pct="99.5"))
        terms = {
            "capacity_unit": "gpus",
            "capacity": "8",
            "accelerator_model": "nvidia-h100-sxm",
            "start_date": date(2026, 1, 1),
            "end_date": date(2026, 12, 31),
            "pricing": "monthly_fee",
            "price": "70000.00",
        }
        ca = contracts.create_contract(
            s,
            SYSTEM,
            ContractIn(customer_id=a.id, name="Matrix contract A own", sla_policy_id=pa.id, **terms),
        )
        cb = contracts.create_contract(
            s,
            SYSTEM,
            ContractIn(customer_id=b.id, name="Matrix contract B FOREIGN-TO-A", sla_policy_id=pb.id, **terms),
        )
        lease_y = finance.create_lease(
            s,
            SYSTEM,
            LeaseIn(
                code="LEASE-Y-FOREIGN-TO-X",
                kind="direct",
                lessor_id=y.id,
                lessee="Lessee FOREIGN-TO-X",
                terms=TermsIn(principal="2300000", annual_rate="0.06", months="12", start="2025-01-15"),
                node_ids=[node.id],
            ),
        )
        line_y = finance.create_credit_line(
            s,
            SYSTEM,
            CreditLineIn(
                lessor_id=y.id,
                name="Credit line FOREIGN-TO-X",
                limit="50000000",
                rate="0.05",
                expires_on=date(2027, 12, 31),
            ),
        )
        at = datetime(2026, 1, 2, tzinfo=UTC)
        run = AcceptanceRun(
            node_id=node.id,
            received_at=at,
            started_at=at,
            finished_at=at,
            mode="quick",
            verdict=Verdict.PASS,
            exit_code=0,
            schema_version=1,
            summary="Acceptance FOREIGN-TO-ALL",
            hostname="host-FOREIGN-TO-ALL",
            state_before=NodeState.ordered,
            state_after=NodeState.ordered,
            warnings=[],
            report={},
            actor="test",
        )
        s.add(run)
        s.flush()
        world.acceptance_run = run
        world.incident = telemetry.open_incident(
            s, SYSTEM, title="Incident FOREIGN-TO-ALL", node_id=node.id, gpu_indexes=[0]
        )
        telemetry.announce_maintenance(
            s,
            SYSTEM,
            title="Maintenance FOREIGN-TO-ALL",
            node_id=node.id,
            starts_at=datetime(2026, 12, 1, tzinfo=UTC),
            ends_at=datetime(2026, 12, 2, tzinfo=UTC),
        )
        # B's contract runs on the node: customer A must still not see it.
        s.add(
            Allocation(
                node_id=node.id,
                contract_id=cb.id,
                start_at=datetime(2026, 1, 1, tzinfo=UTC),
                end_at=datetime(2026, 6, 1, tzinfo=UTC),
            )
        )
        # B's invoice and payment: customer A and every lessor must not see them.
        invoice_b = Invoice(
            kind="invoice",
            number="CL-2026-FOREIGN-TO-A",
            status="finalized",
            contract_id=cb.id,
            customer_id=b.id,
            period="2026-01",
            currency="CNY",
            issued_on=date(2026, 2, 1),
            due_on=date(2026, 3, 3),
            net="66037.74",
            tax="3962.26",
            gross="70000.00",
        )
        payment_b = Payment(
            customer_id=b.id,
            currency="CNY",
            amount="100.00",
            received_on=date(2026, 2, 5),
            reference="PAY-FOREIGN-TO-A",
            unapplied="100.00",
        )
        s.add_all([invoice_b, payment_b])
        s.flush()
        world.invoice_b, world.payment_b = invoice_b, payment_b
        world.lease_y, world.credit_line_y = lease_y, line_y
        world.site, world.node = site, node
        world.contract_a, world.contract_b, world.sla_policy_a, world.sla_policy_b = ca, cb, pa, pb
    return world


@pytest.fixture(scope="session")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each CLI test: migrating once per session is much faster."""
    path = tmp_path_factory.mktemp("cli-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, migrated_file: Path):
    """Runs ``computelease ...`` in-process on a fresh SQLite file; returns (exit code, stdout, stderr).
    ``cli.db`` is that file's Database, for arranging records before a command."""
    import shutil

    from computelease.cli import main
    from computelease.config import get_settings

    shutil.copy(migrated_file, tmp_path / "cli.db")
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", url)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    run.db = Database(url)  # type: ignore[attr-defined]
    yield run
    run.db.dispose()  # type: ignore[attr-defined]
    get_settings.cache_clear()
