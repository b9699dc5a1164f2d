"""Column types that behave the same on PostgreSQL and SQLite.

* :class:`UTCDateTime` stores an instant. It refuses naive datetimes on the way in, stores UTC (SQLite has no
  time zone support, so the UTC wall time is stored there) and always returns an aware datetime in UTC.
* :class:`ExactDecimal` stores a :class:`~decimal.Decimal` without ever passing through ``float``: ``NUMERIC``
  on PostgreSQL, a canonical decimal string on SQLite (whose numeric affinity would otherwise round through a
  double).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ExactDecimal", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """An aware instant, stored as UTC; naive datetimes are refused with ``ValueError``."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: timestamps must be timezone-aware")
        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """A fixed-point decimal with ``precision`` digits, ``scale`` of them after the point; never a float."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # sign, digits and the point
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def _quantize(self, value: Decimal) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"expected a Decimal, got {type(value).__name__}")
        dec = Decimal(value)
        if not dec.is_finite():
            raise ValueError(f"cannot store {value!r}")
        exponent = Decimal(1).scaleb(-self.scale)
        quantized = dec.quantize(exponent)
        if quantized != dec:
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        if len(quantized.as_tuple().digits) > self.precision:
            raise ValueError(f"{value} does not fit {self.precision} digits")
        return quantized

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        quantized = self._quantize(value)
        if dialect.name == "sqlite":
            return str(quantized)
        return quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"stored value {value!r} is not a decimal") from exc
