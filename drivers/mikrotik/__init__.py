"""MikroTik RouterOS: PPP profiles and secrets, simple queues and an enforcement address list, over the API.

:class:`MikrotikDriver` implements :class:`drivers.base.Driver`. :func:`validate_name` and
:func:`validate_rate` are the pure checks the CLI and dashboard call to refuse, when it is entered, input a
router could not hold.
"""

from drivers.mikrotik.driver import MikrotikDriver, tls_context
from drivers.mikrotik.menus import (
    MAX_NAME_LENGTH,
    MAX_ROUTEROS_RATE,
    InvalidRouterInput,
    normalise_rate_limit,
    rate_limit_text,
    validate_name,
    validate_rate,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_ROUTEROS_RATE",
    "InvalidRouterInput",
    "MikrotikDriver",
    "normalise_rate_limit",
    "rate_limit_text",
    "tls_context",
    "validate_name",
    "validate_rate",
]
