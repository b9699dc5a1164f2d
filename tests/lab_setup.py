"""What points edgebill at an emulated router, for tests and benchmarks (not part of ``lab``, which knows nothing
of the daemon).

Settings are the real configuration classes (:class:`RouterSettings` and the others of :mod:`daemon.config`):
:func:`router_settings`, :func:`write_secret` for their password and key files, and :class:`EngineSettings`, the
part of the settings the reconcile engine reads. :func:`seed_subscriber` adds the one subscriber the daemon tests
and the wake-up bench start from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from daemon.config import DunningStepSettings, EnforcementSettings, RouterSettings, SecuritySettings, Settings
from daemon.security import SecretBox
from daemon.services import customers, plans, routers, services


def write_secret(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only, as edgebill wants its password and key files."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def router_settings(port: int, password_file: Path, *, name: str = "edge1", **options: Any) -> RouterSettings:
    """A ``mikrotik`` router on ``127.0.0.1:port`` logging in as ``admin`` with the password in ``password_file``.

    ``options`` are other :class:`RouterSettings` fields (``timeout``, ``tls``, ``encoding``...).
    """
    return RouterSettings(
        name=name,
        kind="mikrotik",
        host="127.0.0.1",
        port=port,
        username="admin",
        password_file=password_file,
        **options,
    )


#: Where throttled and suspended accounts go unless a test or benchmark says otherwise.
ENFORCEMENT = EnforcementSettings(address_list="edgebill-overdue", suspend_mode="disable", payment_page_url="")


@dataclass(frozen=True)
class EngineSettings:
    """What the reconcile engine reads of :class:`daemon.config.Settings`, built from the same classes."""

    routers: tuple[RouterSettings, ...]
    security: SecuritySettings
    dunning: tuple[DunningStepSettings, ...] = ()
    enforcement: EnforcementSettings = ENFORCEMENT


def seed_subscriber(sessions: sessionmaker[Session], settings: Settings, *, actor: str = "test") -> int:
    """Sync the configured routers and add plan ``home-10`` and one PPPoE service ``ada`` on router ``core1``,
    as an admin would; return the service id (the daemon tests and the wake-up bench start from this)."""
    with sessions.begin() as s:
        routers.sync_routers(s, settings)
        plans.add_plan(s, actor, settings, name="home-10", download="10M", upload="5M", price="30.00")
        customer = customers.add_customer(s, actor, name="Ada Lovelace")
        service = services.add_service(
            s,
            actor,
            SecretBox(settings.security.fernet_keys()),
            customer_id=customer.id,
            plan_name="home-10",
            router_name="core1",
            started_on=date(2026, 1, 1),
            pppoe_login="ada",
            pppoe_password="pppoe-pw",
        )
    return service.id
