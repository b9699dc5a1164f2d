"""The edgebill schema: typed SQLAlchemy models.

Conventions, everywhere:

* Money is an integer count of minor units (``*_minor`` columns) next to a three-letter currency code.
* Rates are integer bits per second (``*_bps``); volumes are integer bytes.
* Every timestamp is a :class:`~daemon.db.types.UTCDateTime` (aware, UTC); calendar days are ``Date``.
* Closed vocabularies are non-native enums (``VARCHAR`` plus a named ``CHECK``), identical on both backends.
* Constraint names come from :data:`NAMING_CONVENTION`, so migrations are stable on PostgreSQL and SQLite.
* History is never deleted: foreign keys restrict deletes, and the ``ledger`` table is insert-only (database
  triggers refuse ``UPDATE`` and ``DELETE``; see the first migration).

The schema is created and changed only by the Alembic migrations in :mod:`daemon.db.migrations`.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from daemon.db.types import ExactDecimal, UTCDateTime
from policies.desired import ConnectionType, ServiceState

__all__ = [
    "MAX_ID",
    "NAMING_CONVENTION",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Customer",
    "CustomerTag",
    "IdempotencyKey",
    "Invoice",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceLineKind",
    "InvoiceSequence",
    "InvoiceStatus",
    "LedgerEntry",
    "LedgerKind",
    "OverQuota",
    "Payment",
    "PaymentMethod",
    "Plan",
    "PlanCycle",
    "Router",
    "RouterKind",
    "RouterOp",
    "RouterOpStatus",
    "RouterStatus",
    "Service",
    "UsageSample",
    "User",
    "UserRole",
    "utcnow",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonObject = dict[str, Any]

#: A 64-bit key for tables that grow without bound (plain ``INTEGER`` on SQLite, where only that is a rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: The largest id an ``Integer`` primary key holds on every backend (PostgreSQL's ``integer`` is 32 bits): ids
#: from users (URLs, query strings, CLI arguments) above it are refused before they reach a query.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the shared naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        JsonObject: JSON(),
    }


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """A portable enum column type: VARCHAR plus a CHECK constraint named ``ck_<table>_<name>``."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in cls),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


# -- vocabularies -------------------------------------------------------------------------------------------


class PlanCycle(enum.StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"


class OverQuota(enum.StrEnum):
    """What happens when a plan's quota is used up: slow to the fair-use rates, or charge the overage."""

    THROTTLE = "throttle"
    CHARGE = "charge"


class RouterKind(enum.StrEnum):
    MIKROTIK = "mikrotik"
    LINUX = "linux"


class RouterStatus(enum.StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class InvoiceKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceLineKind(enum.StrEnum):
    RECURRING = "recurring"
    PRORATION = "proration"
    SETUP = "setup"
    OVERAGE = "overage"
    ADJUSTMENT = "adjustment"
    CREDIT = "credit"


class PaymentMethod(enum.StrEnum):
    CASH = "cash"
    BANK = "bank"
    CARD = "card"
    ONLINE = "online"


class LedgerKind(enum.StrEnum):
    """Why a ledger row exists. ``amount_minor`` is signed: positive means the customer owes more."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class RouterOpStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class UserRole(enum.StrEnum):
    ADMIN = "admin"
    SUPPORT = "support"
    READONLY = "readonly"


# -- customers and plans ------------------------------------------------------------------------------------


class Customer(Base):
    """A subscriber account: who is billed."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tag_rows: Mapped[list[CustomerTag]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerTag.tag", lazy="selectin"
    )

    @property
    def tags(self) -> tuple[str, ...]:
        """The customer's tags, sorted (``never-suspend``, ``vip``...)."""
        return tuple(sorted(row.tag for row in self.tag_rows))


class CustomerTag(Base):
    """A free-form label on a customer; policies look for some (``never-suspend``)."""

    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)

    customer: Mapped[Customer] = relationship(back_populates="tag_rows")

    __table_args__ = (Index(None, "tag"),)


class Plan(Base):
    """A service plan: rates, price, billing cycle, quota and tax."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    download_bps: Mapped[int] = mapped_column(BigInteger)
    upload_bps: Mapped[int] = mapped_column(BigInteger)
    burst_download_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_upload_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_threshold_download_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_threshold_upload_bps: Mapped[int | None] = mapped_column(BigInteger)
    burst_time_s: Mapped[int | None] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    cycle: Mapped[PlanCycle] = mapped_column(_enum(PlanCycle, "cycle"), default=PlanCycle.MONTHLY)
    prepaid: Mapped[bool] = mapped_column(Boolean, default=False)
    setup_fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    over_quota: Mapped[OverQuota] = mapped_column(_enum(OverQuota, "over_quota"), default=OverQuota.THROTTLE)
    fair_use_download_bps: Mapped[int | None] = mapped_column(BigInteger)
    fair_use_upload_bps: Mapped[int | None] = mapped_column(BigInteger)
    #: Price of each started gigabyte (10^9 bytes) beyond the quota, when ``over_quota`` is ``charge``.
    overage_price_minor: Mapped[int | None] = mapped_column(BigInteger)
    tax_rate: Mapped[Decimal] = mapped_column(ExactDecimal(7, 6), default=Decimal(0))
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("download_bps > 0 AND upload_bps > 0", name="rates_positive"),
        CheckConstraint("price_minor >= 0 AND setup_fee_minor >= 0", name="prices_not_negative"),
        CheckConstraint("quota_bytes IS NULL OR quota_bytes > 0", name="quota_positive"),
        CheckConstraint("tax_rate >= 0", name="tax_rate_not_negative"),
    )


# -- routers and services -----------------------------------------------------------------------------------


class Router(Base):
    """A router or gateway, mirrored from the configuration; ``retired_at`` is set when it leaves it."""

    __tablename__ = "routers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[RouterKind] = mapped_column(_enum(RouterKind, "kind"))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    site: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[RouterStatus] = mapped_column(_enum(RouterStatus, "status"), default=RouterStatus.UNKNOWN)
    last_seen_at: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    identity: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class Service(Base):
    """One subscriber connection on one router, on one plan."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    router_id: Mapped[int] = mapped_column(ForeignKey("routers.id"), index=True)
    connection_type: Mapped[ConnectionType] = mapped_column(_enum(ConnectionType, "connection_type"))
    pppoe_login: Mapped[str | None] = mapped_column(String(64))
    #: The PPPoE password, encrypted with the installation's key (see :mod:`daemon.security`).
    pppoe_password: Mapped[bytes | None] = mapped_column(LargeBinary)
    ipv4: Mapped[str | None] = mapped_column(String(15))
    state: Mapped[ServiceState] = mapped_column(_enum(ServiceState, "state"), default=ServiceState.ACTIVE)
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    started_on: Mapped[date] = mapped_column(Date)
    promise_until: Mapped[date | None] = mapped_column(Date)
    terminated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship()
    plan: Mapped[Plan] = relationship()
    router: Mapped[Router] = relationship()

    __table_args__ = (
        UniqueConstraint("router_id", "pppoe_login"),
        UniqueConstraint("router_id", "ipv4"),
        CheckConstraint(
            "(connection_type = 'pppoe' AND pppoe_login IS NOT NULL AND pppoe_password IS NOT NULL)"
            " OR (connection_type = 'static' AND ipv4 IS NOT NULL AND pppoe_login IS NULL)",
            name="connection_fields",
        ),
    )


# -- billing ------------------------------------------------------------------------------------------------


class InvoiceSequence(Base):
    """The last number issued in an invoice series; incremented in the issuing transaction (gapless)."""

    __tablename__ = "invoice_sequences"

    series: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    """An invoice or a credit note (``kind``); a credit note names the invoice it corrects."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[InvoiceKind] = mapped_column(_enum(InvoiceKind, "kind"), default=InvoiceKind.INVOICE)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus, "status"), default=InvoiceStatus.OPEN)
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    corrects_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.id", lazy="selectin", cascade="all"
    )

    __table_args__ = (
        UniqueConstraint("series", "number"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("total_minor = subtotal_minor + tax_minor", name="total_adds_up"),
        CheckConstraint(
            "(kind = 'invoice' AND corrects_invoice_id IS NULL)"
            " OR (kind = 'credit_note' AND corrects_invoice_id IS NOT NULL)",
            name="credit_note_corrects",
        ),
    )


class InvoiceLine(Base):
    """One line of an invoice, with the service period it covers (in the billing time zone)."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"), index=True)
    kind: Mapped[InvoiceLineKind] = mapped_column(_enum(InvoiceLineKind, "kind"))
    description: Mapped[str] = mapped_column(String(500))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger, default=0)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    __table_args__ = (
        CheckConstraint(
            "period_start IS NULL OR period_end IS NULL OR period_start <= period_end", name="period_ordered"
        ),
    )


class Payment(Base):
    """Money received (``amount_minor`` > 0) or refunded (a negative row naming ``refund_of_id``)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[PaymentMethod] = mapped_column(_enum(PaymentMethod, "method"))
    reference: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    #: The payment processor's id, unique, so a repeated webhook records the payment once.
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "(refund_of_id IS NULL AND amount_minor > 0) OR (refund_of_id IS NOT NULL AND amount_minor < 0)",
            name="amount_sign",
        ),
    )


class LedgerEntry(Base):
    """One insert-only movement on a customer's account; the balance is the sum of ``amount_minor``.

    Positive amounts mean the customer owes more (an invoice), negative ones less (a payment). Rows are never
    updated or deleted (enforced by triggers); a correction is a new row.
    """

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[LedgerKind] = mapped_column(_enum(LedgerKind, "kind"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    memo: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageSample(Base):
    """A reading of a service's traffic counters.

    ``bytes_in`` counts traffic delivered to the subscriber (download), ``bytes_out`` traffic they sent
    (upload), as the router's counters read them. ``delta_in``/``delta_out`` are the bytes since the previous
    sample, with counter resets accounted for (``None`` for the first sample).
    """

    __tablename__ = "usage_samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    taken_at: Mapped[datetime]
    bytes_in: Mapped[int] = mapped_column(BigInteger)
    bytes_out: Mapped[int] = mapped_column(BigInteger)
    delta_in: Mapped[int | None] = mapped_column(BigInteger)
    delta_out: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index(None, "service_id", "taken_at"),
        CheckConstraint("bytes_in >= 0 AND bytes_out >= 0", name="counters_not_negative"),
        CheckConstraint(
            "(delta_in IS NULL OR delta_in >= 0) AND (delta_out IS NULL OR delta_out >= 0)",
            name="deltas_not_negative",
        ),
    )


class RouterOp(Base):
    """A durable queue entry: an operation to carry out on a router, processed in ``id`` order."""

    __tablename__ = "router_ops"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    router_id: Mapped[int] = mapped_column(ForeignKey("routers.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"), index=True)
    op: Mapped[str] = mapped_column(String(40))
    payload: Mapped[JsonObject] = mapped_column(default=dict)
    status: Mapped[RouterOpStatus] = mapped_column(_enum(RouterOpStatus, "status"), default=RouterOpStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "router_id", "status", "id"),)


# -- access and audit ---------------------------------------------------------------------------------------


class User(Base):
    """A dashboard or API user; ``password_hash`` is an argon2 hash, never the password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(_enum(UserRole, "role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    #: Signed-in sessions carry the epoch they began in; raising it (sign-out, a new password, disabling the
    #: user) ends every one of them.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """An API token; only the SHA-256 of the token is stored (the token is shown once, at creation)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class AuditEntry(Base):
    """Who changed what: the entity's JSON view before and after the change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[JsonObject | None]
    after: Mapped[JsonObject | None]

    __table_args__ = (Index(None, "entity", "entity_id"),)


class IdempotencyKey(Base):
    """A write request answered once: a dashboard form's one-time token, a CLI ``--idempotency-key`` or an API
    client's ``Idempotency-Key`` header. A repeat of the same ``(scope, key)`` gets ``result``, the first
    answer, and writes nothing; the same key with other request details (``fingerprint``) is refused."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: What was asked, such as ``payment.add``; an API may add the caller (``api:7:payment.add``).
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    #: SHA-256 (hex) of the request's details.
    fingerprint: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    #: The first answer (``{"payment_id": 12}``), written in the same transaction as the work it names.
    result: Mapped[JsonObject | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("scope", "key"),)
