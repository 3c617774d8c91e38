"""billing: invoices, credit notes, numbering, closes, payments, ledger; contract on-demand rate

Exact columns carry their scale by hand: autogenerate renders every Exact as Exact() (scale 2).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 17:46:55.125976
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import computelease.db


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_period",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("closes", sa.Integer(), nullable=False),
        sa.Column("last_closed_at", computelease.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_closed_by", sa.String(length=200), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_billing_period")),
    )
    op.create_table(
        "billing_vat_rate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "compute_service",
                "om_service",
                "equipment_lease",
                name="tax_category",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("rate", computelease.db.Exact(4), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_vat_rate")),
    )
    op.create_table(
        "document_sequence",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("invoice", "credit_note", name="doc_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "kind", "year", name=op.f("pk_document_sequence")),
    )
    op.create_table(
        "payment",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", computelease.db.Exact(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("unapplied", computelease.db.Exact(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_payment_customer_id_customer"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment")),
        sa.UniqueConstraint("customer_id", "reference", name="uq_payment_reference"),
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "invoice",
        sa.Column(
            "kind",
            sa.Enum("invoice", "credit_note", name="doc_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "finalized",
                "partially_paid",
                "paid",
                "overdue",
                "void",
                name="invoice_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("net", computelease.db.Exact(), nullable=False),
        sa.Column("tax", computelease.db.Exact(), nullable=False),
        sa.Column("gross", computelease.db.Exact(), nullable=False),
        sa.Column("paid", computelease.db.Exact(), nullable=False),
        sa.Column("credited", computelease.db.Exact(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("finalized_at", computelease.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", computelease.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contract.id"],
            name=op.f("fk_invoice_contract_id_contract"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"], ["invoice.id"], name=op.f("fk_invoice_corrects_id_invoice")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_invoice_customer_id_customer"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice")),
        sa.UniqueConstraint("number", name=op.f("uq_invoice_number")),
    )
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoice_corrects_id"), ["corrects_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoice_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_invoice_customer_status", ["customer_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoice_period"), ["period"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoice_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_invoice_original",
            ["contract_id", "period"],
            unique=True,
            sqlite_where=sa.text("kind = 'invoice' AND corrects_id IS NULL AND status <> 'void'"),
            postgresql_where=sa.text("kind = 'invoice' AND corrects_id IS NULL AND status <> 'void'"),
        )

    op.create_table(
        "invoice_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "compute",
                "om",
                "usage",
                "sla_credit",
                "manual",
                name="line_kind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "category",
            sa.Enum(
                "compute_service",
                "om_service",
                "equipment_lease",
                name="tax_category",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", computelease.db.Exact(6), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("unit_price", computelease.db.Exact(6), nullable=False),
        sa.Column("net", computelease.db.Exact(), nullable=False),
        sa.Column("rate", computelease.db.Exact(4), nullable=False),
        sa.Column("tax", computelease.db.Exact(), nullable=False),
        sa.Column("gross", computelease.db.Exact(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoice.id"],
            name=op.f("fk_invoice_line_invoice_id_invoice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_line")),
    )
    with op.batch_alter_table("invoice_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoice_line_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journal", sa.String(length=80), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("account", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", computelease.db.Exact(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("created_at", computelease.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_ledger_entry_customer_id_customer"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoice.id"],
            name=op.f("fk_ledger_entry_invoice_id_invoice"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("fk_ledger_entry_payment_id_payment"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry")),
    )
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entry_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_journal"), ["journal"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_posted_on"), ["posted_on"], unique=False)

    op.create_table(
        "invoice_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount", computelease.db.Exact(), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoice.id"],
            name=op.f("fk_invoice_payment_invoice_id_invoice"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("fk_invoice_payment_payment_id_payment"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_payment")),
    )
    with op.batch_alter_table("invoice_payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoice_payment_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoice_payment_payment_id"), ["payment_id"], unique=False)

    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_demand_rate", computelease.db.Exact(4), nullable=True))
        batch_op.add_column(
            sa.Column("prices_include_vat", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("prices_include_vat")
        batch_op.drop_column("on_demand_rate")

    with op.batch_alter_table("invoice_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_payment_payment_id"))
        batch_op.drop_index(batch_op.f("ix_invoice_payment_invoice_id"))

    op.drop_table("invoice_payment")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entry_posted_on"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_payment_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_journal"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_customer_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_account"))

    op.drop_table("ledger_entry")
    with op.batch_alter_table("invoice_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_line_invoice_id"))

    op.drop_table("invoice_line")
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invoice_original",
            sqlite_where=sa.text("kind = 'invoice' AND corrects_id IS NULL AND status <> 'void'"),
            postgresql_where=sa.text("kind = 'invoice' AND corrects_id IS NULL AND status <> 'void'"),
        )
        batch_op.drop_index(batch_op.f("ix_invoice_status"))
        batch_op.drop_index(batch_op.f("ix_invoice_period"))
        batch_op.drop_index("ix_invoice_customer_status")
        batch_op.drop_index(batch_op.f("ix_invoice_customer_id"))
        batch_op.drop_index(batch_op.f("ix_invoice_corrects_id"))

    op.drop_table("invoice")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_customer_id"))

    op.drop_table("payment")
    op.drop_table("document_sequence")
    op.drop_table("billing_vat_rate")
    op.drop_table("billing_period")
