"""Provisioning: what one router must carry, compiled from its services. Pure; no I/O.

The rules, exactly:

* Input is one frozen :class:`ServiceRecord` per service of the router, as the database holds it.
* A ``terminated`` service is absent from the desired state (its router entries are removed).
* Every other service becomes one :class:`~policies.desired.SubscriberSpec` keyed by its PPPoE login
  (``pppoe``) or ``svc-<id>`` (``static``), with the profile and rate in force now:

  - ``active``: the plan's profile (named as the plan) at the plan's rate;
  - ``throttled``: the throttle profile :func:`throttle_profile_name` (``edgebill-throttle-1M-512k``) at the
    throttle rate, capped per direction by the plan's rate (throttling never speeds a subscriber up) and
    without burst;
  - ``suspended``: with ``suspend_mode="disable"`` a PPPoE service keeps its plan's profile (the driver
    disables its secret); with ``"block"``, and for every static-IP service, the blocking profile
    :data:`BLOCKED_PROFILE` at :data:`BLOCK_RATE` (capped by the plan's rate). Throttled and suspended
    subscribers are also placed in ``enforcement.address_list`` by the driver.

* ``profiles`` holds, once each and sorted by name, the profile of every plan in use (whatever its services'
  state, so that resuming a service changes nothing else) and every throttle or blocking profile in use;
  subscribers are sorted by key.
* Left out of the desired state and listed in its ``refused`` (one line each, naming the service), so that one
  bad service never stops the others: a service whose key or address an earlier service (by id) already uses,
  a PPPoE service without login or password, a static-IP service without address, a plan whose name starts
  with the reserved ``edgebill-`` prefix, and a profile name used with two different rates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Final

from policies.desired import (
    ConnectionType,
    DesiredState,
    EnforcementSpec,
    ProfileSpec,
    Refused,
    ServiceState,
    SubscriberSpec,
)
from policies.naming import RESERVED_PREFIX
from policies.rates import RateLimit, format_rate

__all__ = [
    "BLOCKED_PROFILE",
    "BLOCK_RATE",
    "DEFAULT_THROTTLE_RATE",
    "RESERVED_PREFIX",
    "ProvisioningError",
    "ServiceRecord",
    "compile_desired",
    "subscriber_key",
    "throttle_profile_name",
]

#: The profile of blocked (suspended) subscribers: enough for DNS and the payment page, nothing more.
BLOCKED_PROFILE: Final = "edgebill-blocked"
BLOCK_RATE: Final = RateLimit(download=64_000, upload=64_000)
#: The throttle rate when the dunning ladder names none (a service throttled by hand).
DEFAULT_THROTTLE_RATE: Final = RateLimit(download=1_000_000, upload=512_000)


class ProvisioningError(ValueError):
    """Services that cannot be compiled into one consistent router state."""


@dataclass(frozen=True)
class ServiceRecord:
    """One service as provisioning needs it. ``password`` is the PPPoE password in clear (never logged)."""

    service_id: int
    connection: ConnectionType
    login: str | None
    password: str | None = field(repr=False)
    address: IPv4Address | None
    plan_name: str
    plan_rate: RateLimit
    state: ServiceState = ServiceState.ACTIVE
    state_reason: str | None = None

    def __post_init__(self) -> None:
        if self.state not in tuple(ServiceState):
            raise ProvisioningError(f"service {self.service_id}: unknown state {self.state!r}")
        if self.connection not in tuple(ConnectionType):
            raise ProvisioningError(f"service {self.service_id}: unknown connection type {self.connection!r}")


def subscriber_key(record: ServiceRecord) -> str:
    """The natural key on the router: the PPPoE login, or ``svc-<id>`` for a static-IP service."""
    if record.connection == "pppoe":
        if not record.login:
            raise ProvisioningError(f"service {record.service_id}: a PPPoE service needs a login")
        return record.login
    return f"svc-{record.service_id}"


def throttle_profile_name(rate: RateLimit) -> str:
    """``edgebill-throttle-<down>-<up>``, e.g. ``edgebill-throttle-1M-512k``."""
    return f"{RESERVED_PREFIX}throttle-{format_rate(rate.download)}-{format_rate(rate.upload)}"


def _capped(rate: RateLimit, plan: RateLimit) -> RateLimit:
    return RateLimit(download=min(rate.download, plan.download), upload=min(rate.upload, plan.upload))


def _profile_and_rate(
    record: ServiceRecord, throttle_rate: RateLimit, enforcement: EnforcementSpec
) -> tuple[str, RateLimit]:
    if record.state == "throttled":
        rate = _capped(throttle_rate, record.plan_rate)
        return throttle_profile_name(rate), rate
    if record.state == "suspended" and (enforcement.suspend_mode == "block" or record.connection == "static"):
        rate = _capped(BLOCK_RATE, record.plan_rate)
        name = BLOCKED_PROFILE if rate == BLOCK_RATE else f"{BLOCKED_PROFILE}-{format_rate(rate.download)}"
        return name, rate
    return record.plan_name, record.plan_rate


def compile_desired(
    services: Iterable[ServiceRecord],
    *,
    throttle_rate: RateLimit = DEFAULT_THROTTLE_RATE,
    enforcement: EnforcementSpec = EnforcementSpec(),  # noqa: B008 - frozen value
) -> DesiredState:
    """The desired state of one router carrying ``services`` (see the module rules)."""
    profiles: dict[str, RateLimit] = {}
    subscribers: dict[str, SubscriberSpec] = {}
    addresses: dict[IPv4Address, int] = {}
    refused: list[Refused] = []
    for record in services:
        if record.state == "terminated":
            continue
        try:
            spec, wanted = _subscriber(record, throttle_rate, enforcement, subscribers, addresses, profiles)
        except ProvisioningError as exc:
            refused.append(Refused(record.service_id, str(exc)))
            continue
        profiles.update(wanted)
        if spec.address is not None:
            addresses[spec.address] = spec.service_id
        subscribers[spec.key] = spec
    return DesiredState(
        profiles=tuple(ProfileSpec(name, profiles[name]) for name in sorted(profiles)),
        subscribers=tuple(subscribers[key] for key in sorted(subscribers)),
        enforcement=enforcement,
        refused=tuple(refused),
    )


def _subscriber(
    record: ServiceRecord,
    throttle_rate: RateLimit,
    enforcement: EnforcementSpec,
    subscribers: dict[str, SubscriberSpec],
    addresses: dict[IPv4Address, int],
    profiles: dict[str, RateLimit],
) -> tuple[SubscriberSpec, dict[str, RateLimit]]:
    """One service's subscriber and the profiles it needs, or :class:`ProvisioningError` when it cannot join the
    ones compiled so far."""
    where = f"service {record.service_id}"
    if record.plan_name.startswith(RESERVED_PREFIX):
        raise ProvisioningError(
            f"{where}: plan name {record.plan_name!r} starts with the reserved prefix {RESERVED_PREFIX!r}"
        )
    key = subscriber_key(record)
    if record.connection == "pppoe" and not record.password:
        raise ProvisioningError(f"{where}: a PPPoE service needs a password")
    if record.connection == "static" and record.address is None:
        raise ProvisioningError(f"{where}: a static-IP service needs an address")
    if key in subscribers:
        raise ProvisioningError(f"{where}: key {key!r} is already used by service {subscribers[key].service_id}")
    if record.address is not None and record.address in addresses:
        raise ProvisioningError(
            f"{where}: address {record.address} is already used by service {addresses[record.address]}"
        )
    profile, rate = _profile_and_rate(record, throttle_rate, enforcement)
    # The plan's own profile is declared even while a service is throttled or blocked: no churn on resume.
    wanted: dict[str, RateLimit] = {}
    for name, value in ((record.plan_name, record.plan_rate), (profile, rate)):
        known = profiles.get(name, wanted.get(name, value))
        if known != value:
            raise ProvisioningError(f"{where}: profile {name!r} is used with two different rates")
        wanted[name] = value
    spec = SubscriberSpec(
        key=key,
        service_id=record.service_id,
        connection=record.connection,
        profile=profile,
        rate=rate,
        state=record.state,
        login=record.login if record.connection == "pppoe" else None,
        password=record.password if record.connection == "pppoe" else None,
        address=record.address,
    )
    return spec, wanted
