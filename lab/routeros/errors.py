"""Errors the emulated router reports to API clients as ``!trap`` sentences."""

from __future__ import annotations


class Trap(Exception):
    """A command failed: sent to the client as ``!trap =message=... [=category=N]`` then ``!done``."""

    def __init__(self, message: str, category: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category

    def words(self) -> list[str]:
        words = ["!trap"]
        if self.category is not None:
            words.append(f"=category={self.category}")
        words.append(f"=message={self.message}")
        return words

    @classmethod
    def bad_value(cls, name: str) -> Trap:
        """A value outside an enumeration or a reference to an item that does not exist."""
        return cls(f"input does not match any value of {name}", category=1)

    @classmethod
    def invalid_argument(cls, name: str) -> Trap:
        """A value that does not parse as the property's type."""
        return cls(f"invalid value for argument {name}", category=1)

    @classmethod
    def unknown_parameter(cls, name: str) -> Trap:
        return cls(f"unknown parameter {name}")
