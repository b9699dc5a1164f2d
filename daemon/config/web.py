"""The value rules of the ``[web]`` keys that bound what a client may do: request size, sign-in rate limits,
session lifetimes, the proxies believed about a client's address. The socket, key file and base URL are read by
the loader, which calls :func:`web_settings`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Final

import limits

from daemon.config.errors import show
from daemon.config.schema import WebSettings
from daemon.config.tables import Table
from daemon.config.values import mask_url

__all__ = ["STORAGE_SCHEMES", "web_settings"]

#: The storage schemes of the ``limits`` library a rate-limit storage URI may name (Redis and Memcached need
#: their client package installed).
STORAGE_SCHEMES: Final = (
    "memory",
    "redis",
    "rediss",
    "redis+unix",
    "redis+sentinel",
    "redis+cluster",
    "valkey",
    "valkeys",
    "memcached",
)
_MIN_REQUEST: Final = 1024
_MAX_REQUEST: Final = 64 * 1024 * 1024
_MIN_IDLE: Final = timedelta(minutes=1)
_MAX_IDLE: Final = timedelta(days=1)
_MIN_LIFETIME: Final = timedelta(minutes=5)
_MAX_LIFETIME: Final = timedelta(days=31)
_MAX_PROXIES: Final = 5


def _rate_limits(sec: Table, key: str, default: str) -> str:
    text = sec.string(key, default)
    try:
        parsed = limits.parse_many(text)
    except ValueError:
        parsed = []
    if not parsed:
        sec.fail(key, f'must be rate limits such as "5 per minute; 20 per hour", got {show(text)}')
    return text


def web_settings(sec: Table, *, host: str, port: int, secret_key_file: Path, base_url: str) -> WebSettings:
    """The ``[web]`` settings, given the values the loader already read and checked."""
    defaults = WebSettings(host, port, secret_key_file, base_url)
    max_bytes = sec.integer("max_request_bytes", _MIN_REQUEST, _MAX_REQUEST, defaults.max_request_bytes)
    per_account = _rate_limits(sec, "login_limit_per_account", defaults.login_limit_per_account)
    per_address = _rate_limits(sec, "login_limit_per_address", defaults.login_limit_per_address)
    storage = sec.string("rate_limit_storage_uri", defaults.rate_limit_storage_uri)
    scheme, sep, _ = storage.partition("://")
    if not sep or scheme not in STORAGE_SCHEMES:
        sec.fail(
            "rate_limit_storage_uri",
            f'must be a storage URI such as "memory://" or "redis://host:6379", got {show(mask_url(storage))}',
        )
    idle = sec.duration("session_idle_timeout", defaults.session_idle_timeout, _MIN_IDLE, _MAX_IDLE)
    lifetime = sec.duration("session_lifetime", defaults.session_lifetime, _MIN_LIFETIME, _MAX_LIFETIME)
    if idle > lifetime:
        sec.fail(
            "session_idle_timeout",
            f"must not be longer than web.session_lifetime, got {show(sec.get('session_idle_timeout'))}",
        )
    proxies = sec.integer("trusted_proxies", 0, _MAX_PROXIES, defaults.trusted_proxies)
    return WebSettings(
        host=host,
        port=port,
        secret_key_file=secret_key_file,
        base_url=base_url,
        max_request_bytes=max_bytes,
        login_limit_per_account=per_account,
        login_limit_per_address=per_address,
        rate_limit_storage_uri=storage,
        session_idle_timeout=idle,
        session_lifetime=lifetime,
        trusted_proxies=proxies,
    )
