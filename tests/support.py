"""Helpers shared by the test suite."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest


def require_all() -> bool:
    """True when every capability must be present (CI sets ``EDGEBILL_REQUIRE_ALL=1``)."""
    return os.environ.get("EDGEBILL_REQUIRE_ALL", "") not in ("", "0")


def require(available: bool, reason: str) -> None:
    """Skip the calling test when a capability is missing, or fail under ``EDGEBILL_REQUIRE_ALL=1``."""
    if available:
        return
    if require_all():
        pytest.fail(f"required capability missing: {reason}")
    pytest.skip(reason)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Return once ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
