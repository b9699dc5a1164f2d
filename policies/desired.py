"""The desired state of a router: vendor-neutral, compiled from the database, handed to every driver.

This is the one definition of a service's state (:class:`ServiceState`) and connection type
(:class:`ConnectionType`) for the whole project: the database columns, the dunning ladder, provisioning and the
drivers all use these. ``policies.provisioning`` compiles a :class:`DesiredState` per router from its services; a
driver renders it into its native entries and diffs them against what the router has. Pure values, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Literal

from policies.rates import RateLimit

__all__ = [
    "ConnectionType",
    "DesiredState",
    "EnforcementSpec",
    "ProfileSpec",
    "Refused",
    "ServiceState",
    "SubscriberSpec",
]


class ServiceState(enum.StrEnum):
    """Where a service stands. ``terminated`` services are absent from a router's desired state."""

    ACTIVE = "active"
    THROTTLED = "throttled"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class ConnectionType(enum.StrEnum):
    """How a subscriber reaches the router: a PPPoE session (login, password) or a static IPv4 address."""

    PPPOE = "pppoe"
    STATIC = "static"


@dataclass(frozen=True)
class ProfileSpec:
    """A named rate profile: one per plan in use, plus the throttle profiles of the dunning ladder."""

    name: str
    rate: RateLimit


@dataclass(frozen=True)
class SubscriberSpec:
    """One service as it must exist on its router.

    ``key`` is the natural key the driver matches on: the PPPoE login for ``pppoe`` services, ``svc-<id>`` for
    static-IP services. ``profile`` names the :class:`ProfileSpec` in force now (the plan's, or a throttle
    profile); ``rate`` is that profile's rate, repeated so that drivers without profiles need no lookup.
    """

    key: str
    service_id: int
    connection: ConnectionType
    profile: str
    rate: RateLimit
    state: ServiceState = ServiceState.ACTIVE
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    address: IPv4Address | None = None


@dataclass(frozen=True)
class EnforcementSpec:
    """How throttled and suspended subscribers are marked on the router.

    ``address_list`` is the RouterOS address list / nftables set that the router's own firewall uses to redirect
    overdue subscribers to ``payment_page_url``. ``suspend_mode`` is ``disable`` (PPPoE secret disabled) or
    ``block`` (kept connected, but blocked except DNS and the payment page).
    """

    address_list: str = "edgebill-overdue"
    suspend_mode: Literal["disable", "block"] = "disable"
    payment_page_url: str = ""


@dataclass(frozen=True)
class Refused:
    """A service left out of a desired state because it contradicts the others or lacks what it needs; ``reason``
    is one line naming it (``service 12: key 'ana' is already used by service 3``)."""

    service_id: int
    reason: str


@dataclass(frozen=True)
class DesiredState:
    """Everything edgebill wants on one router, and the services it had to leave out (``refused``): those are
    reported as conflicts of their own service, never a reason to stop provisioning the others."""

    profiles: tuple[ProfileSpec, ...] = ()
    subscribers: tuple[SubscriberSpec, ...] = ()
    enforcement: EnforcementSpec = EnforcementSpec()
    refused: tuple[Refused, ...] = ()

    def profile(self, name: str) -> ProfileSpec:
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(name)
