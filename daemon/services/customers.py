"""Customers: the accounts that are billed, with free-form tags (``never-suspend``...)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from daemon.db.models import MAX_ID, Customer, CustomerTag
from daemon.services import _validate as check
from daemon.services import audit
from daemon.services.errors import Invalid, NotFound

__all__ = [
    "NEVER_SUSPEND",
    "UNSET",
    "CustomerRecord",
    "Unset",
    "add_customer",
    "add_tag",
    "count_customers",
    "customer_ids",
    "exists",
    "get_customer",
    "list_customers",
    "lock",
    "lock_many",
    "remove_tag",
    "search_customers",
    "update_customer",
]

log = logging.getLogger(__name__)

#: Customers with this tag are never throttled or suspended for non-payment.
NEVER_SUSPEND: Final = "never-suspend"
#: The longest text a customer search accepts.
SEARCH_MAX_LENGTH: Final = 200
_CUSTOMER_NUMBER: Final = re.compile(r"[0-9]{1,10}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

JsonDict = dict[str, Any]


class Unset:
    """The type of :data:`UNSET`: "leave this field as it is"."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


@dataclass(frozen=True)
class CustomerRecord:
    id: int
    name: str
    email: str | None
    phone: str | None
    address: str | None
    notes: str | None
    tags: tuple[str, ...]
    created_at: datetime

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "address": self.address,
            "notes": self.notes,
            "tags": list(self.tags),
            "created_at": self.created_at.isoformat(),
        }


def record_of(row: Customer) -> CustomerRecord:
    return CustomerRecord(
        id=row.id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        address=row.address,
        notes=row.notes,
        tags=row.tags,
        created_at=row.created_at,
    )


def load(session: Session, customer_id: int) -> Customer:
    """The customer row, or :class:`NotFound`."""
    row = session.get(Customer, customer_id)
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    return row


def exists(session: Session, customer_id: int) -> bool:
    return session.get(Customer, customer_id) is not None


def lock(session: Session, customer_id: int) -> Customer:
    """The customer row, locked for this transaction on PostgreSQL (SQLite transactions already hold the
    write lock), so two writers never allocate or bill one account at once. :class:`NotFound` if absent."""
    row = session.scalars(select(Customer).where(Customer.id == customer_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    return row


def lock_many(session: Session, customer_ids: Sequence[int]) -> None:
    """Lock these customers' rows for this transaction, in id order (PostgreSQL; SQLite transactions hold the
    write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Customer.id).where(Customer.id.in_(customer_ids)).order_by(Customer.id).with_for_update()
        ).all()


def customer_ids(session: Session, *, after: int = 0, limit: int | None = None) -> list[int]:
    """Customer ids above ``after``, in order; the first ``limit`` of them when given (for batches)."""
    query = select(Customer.id).where(Customer.id > after).order_by(Customer.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def _clean_tags(tags: Iterable[str]) -> list[str]:
    return sorted({check.tag(tag) for tag in tags})


def add_customer(
    session: Session,
    actor: str,
    *,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    notes: str | None = None,
    tags: Iterable[str] = (),
) -> CustomerRecord:
    """Create a customer and return it (with its new ``id``)."""
    row = Customer(
        name=check.required_text(name, "customer name", max_len=200),
        email=check.email(email),
        phone=check.phone(phone),
        address=check.text(address, "address", max_len=1000, multiline=True),
        notes=check.text(notes, "notes", max_len=10_000, multiline=True),
    )
    row.tag_rows = [CustomerTag(tag=tag) for tag in _clean_tags(tags)]
    session.add(row)
    session.flush()
    result = record_of(row)
    audit.record(session, actor, "customer.add", "customer", None, result.to_json())
    log.info("customer %s added by %s", row.id, actor)
    return result


def get_customer(session: Session, customer_id: int) -> CustomerRecord:
    return record_of(load(session, customer_id))


def _containing(text: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching ``text`` anywhere, lower-cased, with ``%`` and ``_`` literal.

    Refuses (:class:`Invalid`) text over :data:`SEARCH_MAX_LENGTH` characters or with control characters."""
    if len(text) > SEARCH_MAX_LENGTH:
        raise Invalid(f"search text must be at most {SEARCH_MAX_LENGTH} characters, got {len(text)}")
    if _CONTROL.search(text):
        raise Invalid("search text must not contain control characters")
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _name_matches(pattern: str) -> ColumnElement[bool]:
    return func.lower(Customer.name).like(pattern, escape="\\")


def _text_matches(pattern: str) -> ColumnElement[bool]:
    return or_(
        _name_matches(pattern),
        func.lower(Customer.email).like(pattern, escape="\\"),
        Customer.phone.like(pattern, escape="\\"),
    )


def list_customers(session: Session, *, tag: str | None = None, search: str | None = None) -> list[CustomerRecord]:
    """Customers by ``id``; ``tag`` keeps those carrying it, ``search`` matches name, email or phone."""
    query = select(Customer).order_by(Customer.id)
    if tag is not None:
        query = query.where(Customer.tag_rows.any(CustomerTag.tag == check.tag(tag)))
    if search is not None and search.strip():
        query = query.where(_text_matches(_containing(search.strip())))
    return [record_of(row) for row in session.scalars(query)]


def search_customers(session: Session, text: str, *, limit: int) -> list[CustomerRecord]:
    """At most ``limit`` customers by name, for a search box: ``text`` matches the name, e-mail or phone
    (``%`` and ``_`` are plain characters); all digits, it matches the customer number or the name. Text over
    :data:`SEARCH_MAX_LENGTH` characters is refused (:class:`Invalid`)."""
    query = select(Customer).order_by(Customer.name).limit(max(1, limit))
    text = text.strip()
    if _CUSTOMER_NUMBER.fullmatch(text) and int(text) <= MAX_ID:
        query = query.where(or_(Customer.id == int(text), _name_matches(_containing(text))))
    elif text:
        query = query.where(_text_matches(_containing(text)))
    return [record_of(row) for row in session.scalars(query)]


def count_customers(session: Session) -> int:
    return int(session.scalar(select(func.count(Customer.id))) or 0)


def update_customer(
    session: Session,
    actor: str,
    customer_id: int,
    *,
    name: str | Unset = UNSET,
    email: str | Unset | None = UNSET,
    phone: str | Unset | None = UNSET,
    address: str | Unset | None = UNSET,
    notes: str | Unset | None = UNSET,
    tags: Iterable[str] | Unset = UNSET,
) -> CustomerRecord:
    """Change the given fields (``None`` clears an optional one); unchanged input writes nothing."""
    row = load(session, customer_id)
    before = record_of(row)
    if not isinstance(name, Unset):
        row.name = check.required_text(name, "customer name", max_len=200)
    if not isinstance(email, Unset):
        row.email = check.email(email)
    if not isinstance(phone, Unset):
        row.phone = check.phone(phone)
    if not isinstance(address, Unset):
        row.address = check.text(address, "address", max_len=1000, multiline=True)
    if not isinstance(notes, Unset):
        row.notes = check.text(notes, "notes", max_len=10_000, multiline=True)
    if not isinstance(tags, Unset):
        _set_tags(row, _clean_tags(tags))
    session.flush()
    after = record_of(row)
    if after != before:
        audit.record(session, actor, "customer.update", "customer", before.to_json(), after.to_json())
    return after


def _set_tags(row: Customer, wanted: list[str]) -> None:
    have = {tag_row.tag: tag_row for tag_row in row.tag_rows}
    for tag, tag_row in have.items():
        if tag not in wanted:
            row.tag_rows.remove(tag_row)
    for tag in wanted:
        if tag not in have:
            row.tag_rows.append(CustomerTag(tag=tag))


def add_tag(session: Session, actor: str, customer_id: int, tag: str) -> CustomerRecord:
    """Put ``tag`` on the customer (no change if it is already there)."""
    row = load(session, customer_id)
    return update_customer(session, actor, customer_id, tags=[*row.tags, check.tag(tag)])


def remove_tag(session: Session, actor: str, customer_id: int, tag: str) -> CustomerRecord:
    """Take ``tag`` off the customer; refused if the customer does not carry it."""
    row = load(session, customer_id)
    cleaned = check.tag(tag)
    if cleaned not in row.tags:
        raise Invalid(f"customer {customer_id} has no tag {cleaned!r}")
    return update_customer(session, actor, customer_id, tags=[t for t in row.tags if t != cleaned])
