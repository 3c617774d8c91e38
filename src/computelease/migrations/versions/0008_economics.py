"""economics: stored scenarios and their runs

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-26 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import computelease.db


revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scenario",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "source",
            sa.Enum("upload", "example", "live", name="scenario_source", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario")),
    )
    op.create_table(
        "scenario_run",
        sa.Column("scenario_id", sa.Integer(), nullable=False),
        sa.Column("paths", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("done", "failed", name="scenario_run_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenario.id"],
            name=op.f("fk_scenario_run_scenario_id_scenario"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_run")),
    )
    with op.batch_alter_table("scenario_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scenario_run_scenario_id"), ["scenario_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scenario_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scenario_run_scenario_id"))

    op.drop_table("scenario_run")
    op.drop_table("scenario")
