"""Initial schema: customers, plans, routers, services, billing, ledger, usage, router queue, access, audit.

The ledger is insert-only: triggers on PostgreSQL and SQLite refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL) on ``ledger``; a correction is a new row.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.db.types import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_entity_entity_id"), "audit_log", ["entity", "entity_id"], unique=False)
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "invoice_sequences",
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_invoice_sequences")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("download_bps", sa.BigInteger(), nullable=False),
        sa.Column("upload_bps", sa.BigInteger(), nullable=False),
        sa.Column("burst_download_bps", sa.BigInteger(), nullable=True),
        sa.Column("burst_upload_bps", sa.BigInteger(), nullable=True),
        sa.Column("burst_threshold_download_bps", sa.BigInteger(), nullable=True),
        sa.Column("burst_threshold_upload_bps", sa.BigInteger(), nullable=True),
        sa.Column("burst_time_s", sa.Integer(), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "cycle",
            sa.Enum("monthly", "weekly", name="cycle", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("prepaid", sa.Boolean(), nullable=False),
        sa.Column("setup_fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column(
            "over_quota",
            sa.Enum("throttle", "charge", name="over_quota", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("fair_use_download_bps", sa.BigInteger(), nullable=True),
        sa.Column("fair_use_upload_bps", sa.BigInteger(), nullable=True),
        sa.Column("overage_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("tax_rate", ExactDecimal(precision=7, scale=6), nullable=False),
        sa.Column("tax_inclusive", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("download_bps > 0 AND upload_bps > 0", name=op.f("ck_plans_rates_positive")),
        sa.CheckConstraint("price_minor >= 0 AND setup_fee_minor >= 0", name=op.f("ck_plans_prices_not_negative")),
        sa.CheckConstraint("quota_bytes IS NULL OR quota_bytes > 0", name=op.f("ck_plans_quota_positive")),
        sa.CheckConstraint("tax_rate >= 0", name=op.f("ck_plans_tax_rate_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    op.create_table(
        "routers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "kind", sa.Enum("mikrotik", "linux", name="kind", native_enum=False, create_constraint=True), nullable=False
        ),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=True),
        sa.Column(
            "status",
            sa.Enum("unknown", "up", "down", name="status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("last_sync_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("identity", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routers")),
        sa.UniqueConstraint("name", name=op.f("uq_routers_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "support", "readonly", name="role", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_tags_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("customer_id", "tag", name=op.f("pk_customer_tags")),
    )
    op.create_index(op.f("ix_customer_tags_tag"), "customer_tags", ["tag"], unique=False)
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("invoice", "credit_note", name="kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "paid", "void", name="status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("corrects_invoice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'invoice' AND corrects_invoice_id IS NULL)"
            " OR (kind = 'credit_note' AND corrects_invoice_id IS NOT NULL)",
            name=op.f("ck_invoices_credit_note_corrects"),
        ),
        sa.CheckConstraint("number > 0", name=op.f("ck_invoices_number_positive")),
        sa.CheckConstraint("total_minor = subtotal_minor + tax_minor", name=op.f("ck_invoices_total_adds_up")),
        sa.ForeignKeyConstraint(
            ["corrects_invoice_id"], ["invoices.id"], name=op.f("fk_invoices_corrects_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("series", "number", name=op.f("uq_invoices_series_number")),
    )
    op.create_index(op.f("ix_invoices_customer_id"), "invoices", ["customer_id"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "method",
            sa.Enum("cash", "bank", "card", "online", name="method", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("refund_of_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(refund_of_id IS NULL AND amount_minor > 0) OR (refund_of_id IS NOT NULL AND amount_minor < 0)",
            name=op.f("ck_payments_amount_sign"),
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_payments_customer_id_customers")),
        sa.ForeignKeyConstraint(["refund_of_id"], ["payments.id"], name=op.f("fk_payments_refund_of_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("external_id", name=op.f("uq_payments_external_id")),
    )
    op.create_index(op.f("ix_payments_customer_id"), "payments", ["customer_id"], unique=False)
    op.create_index(op.f("ix_payments_refund_of_id"), "payments", ["refund_of_id"], unique=False)
    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("router_id", sa.Integer(), nullable=False),
        sa.Column(
            "connection_type",
            sa.Enum("pppoe", "static", name="connection_type", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("pppoe_login", sa.String(length=64), nullable=True),
        sa.Column("pppoe_password", sa.LargeBinary(), nullable=True),
        sa.Column("ipv4", sa.String(length=15), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "throttled",
                "suspended",
                "terminated",
                name="state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_since", UTCDateTime(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("promise_until", sa.Date(), nullable=True),
        sa.Column("terminated_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(connection_type = 'pppoe' AND pppoe_login IS NOT NULL AND pppoe_password IS NOT NULL)"
            " OR (connection_type = 'static' AND ipv4 IS NOT NULL AND pppoe_login IS NULL)",
            name=op.f("ck_services_connection_fields"),
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_services_customer_id_customers")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_services_plan_id_plans")),
        sa.ForeignKeyConstraint(["router_id"], ["routers.id"], name=op.f("fk_services_router_id_routers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("router_id", "ipv4", name=op.f("uq_services_router_id_ipv4")),
        sa.UniqueConstraint("router_id", "pppoe_login", name=op.f("uq_services_router_id_pppoe_login")),
    )
    op.create_index(op.f("ix_services_customer_id"), "services", ["customer_id"], unique=False)
    op.create_index(op.f("ix_services_plan_id"), "services", ["plan_id"], unique=False)
    op.create_index(op.f("ix_services_router_id"), "services", ["router_id"], unique=False)
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "recurring",
                "proration",
                "setup",
                "overage",
                "adjustment",
                "credit",
                name="kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "period_start IS NULL OR period_end IS NULL OR period_start <= period_end",
            name=op.f("ck_invoice_lines_period_ordered"),
        ),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_invoice_lines_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    op.create_index(op.f("ix_invoice_lines_invoice_id"), "invoice_lines", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_invoice_lines_service_id"), "invoice_lines", ["service_id"], unique=False)
    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "invoice",
                "credit_note",
                "payment",
                "refund",
                "adjustment",
                name="kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("memo", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_ledger_customer_id_customers")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_ledger_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_ledger_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
    )
    op.create_index(op.f("ix_ledger_customer_id"), "ledger", ["customer_id"], unique=False)
    op.create_index(op.f("ix_ledger_invoice_id"), "ledger", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_ledger_payment_id"), "ledger", ["payment_id"], unique=False)
    op.create_table(
        "router_ops",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("router_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("op", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "done", "failed", name="status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["router_id"], ["routers.id"], name=op.f("fk_router_ops_router_id_routers")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_router_ops_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_router_ops")),
    )
    op.create_index(
        op.f("ix_router_ops_router_id_status_id"), "router_ops", ["router_id", "status", "id"], unique=False
    )
    op.create_index(op.f("ix_router_ops_service_id"), "router_ops", ["service_id"], unique=False)
    op.create_table(
        "usage_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("delta_in", sa.BigInteger(), nullable=True),
        sa.Column("delta_out", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(delta_in IS NULL OR delta_in >= 0) AND (delta_out IS NULL OR delta_out >= 0)",
            name=op.f("ck_usage_samples_deltas_not_negative"),
        ),
        sa.CheckConstraint("bytes_in >= 0 AND bytes_out >= 0", name=op.f("ck_usage_samples_counters_not_negative")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_usage_samples_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_samples")),
    )
    op.create_index(
        op.f("ix_usage_samples_service_id_taken_at"), "usage_samples", ["service_id", "taken_at"], unique=False
    )

    _create_ledger_guard()


_PG_GUARD = """
CREATE FUNCTION ledger_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger is insert-only: % refused', TG_OP USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""


def _create_ledger_guard() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        op.execute(
            "CREATE TRIGGER ledger_insert_only BEFORE UPDATE OR DELETE ON ledger"
            " FOR EACH ROW EXECUTE FUNCTION ledger_insert_only()"
        )
        op.execute(
            "CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger"
            " FOR EACH STATEMENT EXECUTE FUNCTION ledger_insert_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_no_{verb.lower()} BEFORE {verb} ON ledger"
                f" BEGIN SELECT RAISE(ABORT, 'ledger is insert-only: {verb} refused'); END"
            )


def _drop_ledger_guard() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_no_truncate ON ledger")
        op.execute("DROP TRIGGER ledger_insert_only ON ledger")
        op.execute("DROP FUNCTION ledger_insert_only()")
    else:
        op.execute("DROP TRIGGER ledger_no_update")
        op.execute("DROP TRIGGER ledger_no_delete")


def downgrade() -> None:
    _drop_ledger_guard()
    op.drop_index(op.f("ix_usage_samples_service_id_taken_at"), table_name="usage_samples")
    op.drop_table("usage_samples")
    op.drop_index(op.f("ix_router_ops_service_id"), table_name="router_ops")
    op.drop_index(op.f("ix_router_ops_router_id_status_id"), table_name="router_ops")
    op.drop_table("router_ops")
    op.drop_index(op.f("ix_ledger_payment_id"), table_name="ledger")
    op.drop_index(op.f("ix_ledger_invoice_id"), table_name="ledger")
    op.drop_index(op.f("ix_ledger_customer_id"), table_name="ledger")
    op.drop_table("ledger")
    op.drop_index(op.f("ix_invoice_lines_service_id"), table_name="invoice_lines")
    op.drop_index(op.f("ix_invoice_lines_invoice_id"), table_name="invoice_lines")
    op.drop_table("invoice_lines")
    op.drop_index(op.f("ix_services_router_id"), table_name="services")
    op.drop_index(op.f("ix_services_plan_id"), table_name="services")
    op.drop_index(op.f("ix_services_customer_id"), table_name="services")
    op.drop_table("services")
    op.drop_index(op.f("ix_payments_refund_of_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_customer_id"), table_name="payments")
    op.drop_table("payments")
    op.drop_index(op.f("ix_invoices_customer_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_index(op.f("ix_customer_tags_tag"), table_name="customer_tags")
    op.drop_table("customer_tags")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("routers")
    op.drop_table("plans")
    op.drop_table("invoice_sequences")
    op.drop_table("customers")
    op.drop_index(op.f("ix_audit_log_entity_entity_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
