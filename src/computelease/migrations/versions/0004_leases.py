"""leases, payments and credit lines: lease, lease_instalment, lease_asset, lease_payment,
lease_payment_allocation, credit_line

Rates carry their scale explicitly: autogenerate renders every Exact as Exact() (scale 2), which would
round a 0.0005 daily penalty rate to nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:06:53.587390
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import computelease.db


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_line",
        sa.Column("lessor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("borrower", sa.String(length=200), nullable=False),
        sa.Column("limit_amount", computelease.db.Exact(), nullable=False),
        sa.Column("drawn", computelease.db.Exact(), nullable=False),
        sa.Column("rate", computelease.db.Exact(6), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("drawn <= limit_amount", name=op.f("ck_credit_line_drawn_within_limit")),
        sa.CheckConstraint("drawn >= 0", name=op.f("ck_credit_line_drawn_not_negative")),
        sa.ForeignKeyConstraint(
            ["lessor_id"], ["lessor.id"], name=op.f("fk_credit_line_lessor_id_lessor"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_line")),
    )
    with op.batch_alter_table("credit_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_line_lessor_id"), ["lessor_id"], unique=False)

    op.create_table(
        "lease",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("direct", "sale_leaseback", name="lease_kind", native_enum=False, length=30),
            nullable=False,
        ),
        sa.Column("lessor_id", sa.Integer(), nullable=False),
        sa.Column("lessee", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "terminated", "closed", name="lease_status", native_enum=False, length=30),
            nullable=False,
        ),
        sa.Column("principal", computelease.db.Exact(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("penalty_daily_rate", computelease.db.Exact(6), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lessor_id"], ["lessor.id"], name=op.f("fk_lease_lessor_id_lessor"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease")),
        sa.UniqueConstraint("code", name=op.f("uq_lease_code")),
    )
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lease_lessor_id"), ["lessor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lease_status"), ["status"], unique=False)

    op.create_table(
        "lease_instalment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lease_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("opening", computelease.db.Exact(), nullable=False),
        sa.Column("payment", computelease.db.Exact(), nullable=False),
        sa.Column("interest", computelease.db.Exact(), nullable=False),
        sa.Column("principal", computelease.db.Exact(), nullable=False),
        sa.Column("closing", computelease.db.Exact(), nullable=False),
        sa.Column("balloon", computelease.db.Exact(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lease_id"], ["lease.id"], name=op.f("fk_lease_instalment_lease_id_lease"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_instalment")),
        sa.UniqueConstraint("lease_id", "period", name="uq_lease_instalment_period"),
    )
    with op.batch_alter_table("lease_instalment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lease_instalment_lease_id"), ["lease_id"], unique=False)

    op.create_table(
        "lease_payment",
        sa.Column("lease_id", sa.Integer(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("amount", computelease.db.Exact(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("unapplied", computelease.db.Exact(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_lease_payment_amount_positive")),
        sa.ForeignKeyConstraint(
            ["lease_id"], ["lease.id"], name=op.f("fk_lease_payment_lease_id_lease"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_payment")),
    )
    with op.batch_alter_table("lease_payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lease_payment_lease_id"), ["lease_id"], unique=False)

    op.create_table(
        "lease_asset",
        sa.Column("lease_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lease_id"], ["lease.id"], name=op.f("fk_lease_asset_lease_id_lease"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.id"], name=op.f("fk_lease_asset_node_id_node"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_asset")),
        sa.UniqueConstraint("lease_id", "node_id", name="uq_lease_asset_node"),
    )
    with op.batch_alter_table("lease_asset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lease_asset_lease_id"), ["lease_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lease_asset_node_id"), ["node_id"], unique=False)

    op.create_table(
        "lease_payment_allocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("instalment_id", sa.Integer(), nullable=False),
        sa.Column("penalty", computelease.db.Exact(), nullable=False),
        sa.Column("interest", computelease.db.Exact(), nullable=False),
        sa.Column("principal", computelease.db.Exact(), nullable=False),
        sa.Column("days_late", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instalment_id"],
            ["lease_instalment.id"],
            name=op.f("fk_lease_payment_allocation_instalment_id_lease_instalment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["lease_payment.id"],
            name=op.f("fk_lease_payment_allocation_payment_id_lease_payment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_payment_allocation")),
    )
    with op.batch_alter_table("lease_payment_allocation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lease_payment_allocation_instalment_id"), ["instalment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lease_payment_allocation_payment_id"), ["payment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lease_payment_allocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lease_payment_allocation_payment_id"))
        batch_op.drop_index(batch_op.f("ix_lease_payment_allocation_instalment_id"))

    op.drop_table("lease_payment_allocation")
    with op.batch_alter_table("lease_asset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lease_asset_node_id"))
        batch_op.drop_index(batch_op.f("ix_lease_asset_lease_id"))

    op.drop_table("lease_asset")
    with op.batch_alter_table("lease_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lease_payment_lease_id"))

    op.drop_table("lease_payment")
    with op.batch_alter_table("lease_instalment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lease_instalment_lease_id"))

    op.drop_table("lease_instalment")
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lease_status"))
        batch_op.drop_index(batch_op.f("ix_lease_lessor_id"))

    op.drop_table("lease")
    with op.batch_alter_table("credit_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_line_lessor_id"))

    op.drop_table("credit_line")
