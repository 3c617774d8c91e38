"""contracts and sla policies: sla_policy, contract, contract_event

Exact columns carry their scale explicitly: autogenerate renders every Exact as Exact() (scale 2),
which on PostgreSQL would round unit prices and PFLOPS.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:52:02.118671
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import computelease.db


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_policy",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("target_pct", computelease.db.Exact(4), nullable=False),
        sa.Column("credit_tiers", sa.JSON(), nullable=False),
        sa.Column("cap_pct", computelease.db.Exact(2), nullable=False),
        sa.Column("maintenance_allowance_hours", computelease.db.Exact(2), nullable=False),
        sa.Column("notice_hours", computelease.db.Exact(2), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policy")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policy_name")),
    )
    op.create_table(
        "contract",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "signed",
                "active",
                "ended",
                "terminated",
                name="contract_status",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column(
            "capacity_unit",
            sa.Enum("pflops", "gpus", "nodes", name="capacity_unit", native_enum=False, length=30),
            nullable=False,
        ),
        sa.Column("capacity", computelease.db.Exact(4), nullable=False),
        sa.Column("precision", sa.String(length=8), nullable=True),
        sa.Column("accelerator_model", sa.String(length=64), nullable=True),
        sa.Column("min_memory_gb", computelease.db.Exact(2), nullable=True),
        sa.Column("min_tflops", computelease.db.Exact(3), nullable=True),
        sa.Column("min_tflops_precision", sa.String(length=8), nullable=True),
        sa.Column(
            "placement",
            sa.Enum("same_fabric", "same_site", "any", name="placement", native_enum=False, length=30),
            nullable=False,
        ),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("starts_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "pricing",
            sa.Enum(
                "monthly_fee",
                "per_pflops_month",
                "per_gpu_hour",
                name="pricing",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("price", computelease.db.Exact(4), nullable=False),
        sa.Column("om_monthly_fee", computelease.db.Exact(2), nullable=False),
        sa.Column("deposit", computelease.db.Exact(2), nullable=False),
        sa.Column("prepayment", computelease.db.Exact(2), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("sla_policy_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("billable_gpus", sa.Integer(), nullable=True),
        sa.Column("billable_pflops", computelease.db.Exact(6), nullable=True),
        sa.Column("total_value", computelease.db.Exact(2), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_contract_customer_id_customer"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sla_policy_id"],
            ["sla_policy.id"],
            name=op.f("fk_contract_sla_policy_id_sla_policy"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract")),
    )
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_contract_period", ["starts_at", "ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_contract_sla_policy_id"), ["sla_policy_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contract_status"), ["status"], unique=False)

    op.create_table(
        "contract_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum(
                "draft",
                "signed",
                "active",
                "ended",
                "terminated",
                name="contract_status",
                native_enum=False,
                length=30,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_status",
            sa.Enum(
                "draft",
                "signed",
                "active",
                "ended",
                "terminated",
                name="contract_status",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contract.id"],
            name=op.f("fk_contract_event_contract_id_contract"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_event")),
    )
    with op.batch_alter_table("contract_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_event_contract_id"), ["contract_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contract_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_event_contract_id"))

    op.drop_table("contract_event")
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_status"))
        batch_op.drop_index(batch_op.f("ix_contract_sla_policy_id"))
        batch_op.drop_index("ix_contract_period")
        batch_op.drop_index(batch_op.f("ix_contract_customer_id"))

    op.drop_table("contract")
    op.drop_table("sla_policy")
