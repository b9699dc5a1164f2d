"""The errors every service function raises: one clear, one-line message each."""

from __future__ import annotations

__all__ = ["Conflict", "Invalid", "NotFound", "ServiceError"]


class ServiceError(Exception):
    """A request that cannot be carried out; ``message`` is one line, safe to show to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ServiceError):
    """The named customer, plan, router, service... does not exist."""


class Conflict(ServiceError):
    """The change clashes with existing data (a duplicate name, login or address; a terminated service)."""


class Invalid(ServiceError):
    """The input is malformed or out of range."""
