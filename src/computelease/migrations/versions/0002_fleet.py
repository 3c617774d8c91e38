"""catalog custom entries and fleet: sites, racks, nodes, GPUs, node state history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:55:14.815863
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import computelease.db


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custom_accelerator",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_accelerator")),
    )
    op.create_table(
        "custom_sku",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("accelerator_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_sku")),
    )
    with op.batch_alter_table("custom_sku", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_custom_sku_accelerator_id"), ["accelerator_id"], unique=False)

    op.create_table(
        "site",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("own_center", "colocation", name="site_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("pue", computelease.db.Exact(scale=3), nullable=False),
        # Exact's repr loses its scale, so autogenerate wrote Exact(); tariffs keep 4 decimals, PUE 3.
        sa.Column("power_price_per_kwh", computelease.db.Exact(scale=4), nullable=False),
        sa.Column("rack_price_per_month", computelease.db.Exact(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
        sa.UniqueConstraint("code", name=op.f("uq_site_code")),
        sa.UniqueConstraint("name", name=op.f("uq_site_name")),
    )
    op.create_table(
        "rack",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("power_kw", computelease.db.Exact(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_rack_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rack")),
        sa.UniqueConstraint("site_id", "name", name="uq_rack_site_name"),
    )
    with op.batch_alter_table("rack", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rack_site_id"), ["site_id"], unique=False)

    op.create_table(
        "node",
        sa.Column("serial", sa.String(length=100), nullable=False),
        sa.Column("sku_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("rack_id", sa.Integer(), nullable=True),
        sa.Column("fabric", sa.String(length=100), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "ordered",
                "delivered",
                "accepted",
                "in_service",
                "faulty",
                "repair",
                "maintenance",
                "retired",
                "sold",
                name="node_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("state_since", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purchase_cost", computelease.db.Exact(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purchase_date", sa.Date(), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("purchase_cost >= 0", name=op.f("ck_node_purchase_cost_not_negative")),
        sa.ForeignKeyConstraint(["rack_id"], ["rack.id"], name=op.f("fk_node_rack_id_rack")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_node_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node")),
        sa.UniqueConstraint("serial", name=op.f("uq_node_serial")),
    )
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_node_fabric"), ["fabric"], unique=False)
        batch_op.create_index(batch_op.f("ix_node_model"), ["model"], unique=False)
        batch_op.create_index(batch_op.f("ix_node_rack_id"), ["rack_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_node_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_node_sku_id"), ["sku_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_node_state"), ["state"], unique=False)

    op.create_table(
        "gpu",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=True),
        sa.Column("serial", sa.String(length=100), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.id"], name=op.f("fk_gpu_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu")),
        sa.UniqueConstraint("node_id", "index", name="uq_gpu_node_index"),
        sa.UniqueConstraint("serial", name=op.f("uq_gpu_serial")),
        sa.UniqueConstraint("uuid", name=op.f("uq_gpu_uuid")),
    )
    with op.batch_alter_table("gpu", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_node_id"), ["node_id"], unique=False)

    op.create_table(
        "node_event",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "ordered",
                "delivered",
                "accepted",
                "in_service",
                "faulty",
                "repair",
                "maintenance",
                "retired",
                "sold",
                name="node_state",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "ordered",
                "delivered",
                "accepted",
                "in_service",
                "faulty",
                "repair",
                "maintenance",
                "retired",
                "sold",
                name="node_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.id"], name=op.f("fk_node_event_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_event")),
    )
    with op.batch_alter_table("node_event", schema=None) as batch_op:
        batch_op.create_index("ix_node_event_node_at", ["node_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("node_event", schema=None) as batch_op:
        batch_op.drop_index("ix_node_event_node_at")

    op.drop_table("node_event")
    with op.batch_alter_table("gpu", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_node_id"))

    op.drop_table("gpu")
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_node_state"))
        batch_op.drop_index(batch_op.f("ix_node_sku_id"))
        batch_op.drop_index(batch_op.f("ix_node_site_id"))
        batch_op.drop_index(batch_op.f("ix_node_rack_id"))
        batch_op.drop_index(batch_op.f("ix_node_model"))
        batch_op.drop_index(batch_op.f("ix_node_fabric"))

    op.drop_table("node")
    with op.batch_alter_table("rack", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rack_site_id"))

    op.drop_table("rack")
    op.drop_table("site")
    with op.batch_alter_table("custom_sku", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custom_sku_accelerator_id"))

    op.drop_table("custom_sku")
    op.drop_table("custom_accelerator")
