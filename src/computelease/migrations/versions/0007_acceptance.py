"""acceptance runs of the probe: acceptance_run, acceptance_gpu

sla_share carries its scale explicitly: autogenerate renders every Exact as Exact() (scale 2), which would
round a share to the percent.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-26 15:48:46.221198
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import computelease.db


revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NODE_STATES = (
    "ordered",
    "delivered",
    "accepted",
    "in_service",
    "faulty",
    "repair",
    "maintenance",
    "retired",
    "sold",
)


def _verdict() -> sa.Enum:
    return sa.Enum("pass", "warn", "fail", "skip", name="probe_verdict", native_enum=False, length=10)


def upgrade() -> None:
    op.create_table(
        "acceptance_run",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("received_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("verdict", _verdict(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("driver", sa.String(length=50), nullable=True),
        sa.Column("cuda_driver", sa.String(length=50), nullable=True),
        sa.Column("cuda_runtime", sa.String(length=50), nullable=True),
        sa.Column("torch", sa.String(length=100), nullable=True),
        sa.Column("computelease", sa.String(length=50), nullable=True),
        sa.Column(
            "state_before",
            sa.Enum(*NODE_STATES, name="node_state", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "state_after",
            sa.Enum(*NODE_STATES, name="node_state", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.id"], name=op.f("fk_acceptance_run_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_run")),
    )
    with op.batch_alter_table("acceptance_run", schema=None) as batch_op:
        batch_op.create_index("ix_acceptance_run_node_finished", ["node_id", "finished_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_acceptance_run_verdict"), ["verdict"], unique=False)

    op.create_table(
        "acceptance_gpu",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=True),
        sa.Column("gpu_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("bf16_tflops", computelease.db.Exact(2), nullable=True),
        sa.Column("rating_tflops", computelease.db.Exact(2), nullable=True),
        sa.Column("sla_share", computelease.db.Exact(4), nullable=True),
        sa.Column("verdict", _verdict(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gpu_id"], ["gpu.id"], name=op.f("fk_acceptance_gpu_gpu_id_gpu"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["acceptance_run.id"],
            name=op.f("fk_acceptance_gpu_run_id_acceptance_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_gpu")),
        sa.UniqueConstraint("run_id", "index", name="uq_acceptance_gpu_run_index"),
    )
    with op.batch_alter_table("acceptance_gpu", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acceptance_gpu_gpu_id"), ["gpu_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acceptance_gpu_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acceptance_gpu_uuid"), ["uuid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("acceptance_gpu", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acceptance_gpu_uuid"))
        batch_op.drop_index(batch_op.f("ix_acceptance_gpu_run_id"))
        batch_op.drop_index(batch_op.f("ix_acceptance_gpu_gpu_id"))

    op.drop_table("acceptance_gpu")
    with op.batch_alter_table("acceptance_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acceptance_run_verdict"))
        batch_op.drop_index("ix_acceptance_run_node_finished")

    op.drop_table("acceptance_run")
