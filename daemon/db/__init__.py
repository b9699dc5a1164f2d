"""The edgebill database: engine and session helpers, typed models and migrations.

Typical use::

    engine = make_engine(settings.database.url)
    upgrade(engine)
    factory = session_factory(engine)
    with factory.begin() as session:
        ...
"""

from daemon.db.engine import make_engine, normalize_url, session_factory
from daemon.db.migrate import current_revision, head_revision, schema_is_current, upgrade
from daemon.db.models import (
    NAMING_CONVENTION,
    ApiToken,
    AuditEntry,
    Base,
    Customer,
    CustomerTag,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceSequence,
    InvoiceStatus,
    LedgerEntry,
    LedgerKind,
    OverQuota,
    Payment,
    PaymentMethod,
    Plan,
    PlanCycle,
    Router,
    RouterKind,
    RouterOp,
    RouterOpStatus,
    RouterStatus,
    Service,
    UsageSample,
    User,
    UserRole,
    utcnow,
)
from daemon.db.types import ExactDecimal, UTCDateTime

__all__ = [
    "NAMING_CONVENTION",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Customer",
    "CustomerTag",
    "ExactDecimal",
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
    "UTCDateTime",
    "UsageSample",
    "User",
    "UserRole",
    "current_revision",
    "head_revision",
    "make_engine",
    "normalize_url",
    "schema_is_current",
    "session_factory",
    "upgrade",
    "utcnow",
]
