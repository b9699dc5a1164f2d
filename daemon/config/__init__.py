"""Settings: one TOML file, read once, validated completely, returned as frozen typed values.

:func:`load_settings` is the only way a TOML file becomes :class:`Settings`. It either returns settings in
which every value has been checked, or raises :class:`ConfigError` with one line naming the file, the dotted
key (list entries by index, counting from 0: ``routers[1].port``) and the reason, quoting the offending value
as it was written::

    /etc/edgebill/edgebill.toml: routers[1].port: must be 1..65535, got "abc"

The rules, exactly:

* Unknown keys and sections are refused, with the closest known key suggested. Keys that belong to the other
  kind of router (``interface`` on a ``mikrotik`` router) are refused too: nothing in the file is ignored.
* Values must have the TOML type their key documents: ``port = "8728"`` is refused, amounts and rates are
  quoted strings, and a TOML float is never accepted where money or a tax rate is expected.
* Relative file paths and relative SQLite paths resolve against the folder holding the configuration file,
  not against the working directory.
* Secret files (``web.secret_key_file``, ``security.secret_key_file``, ``smtp.password_file`` and each
  router's ``password_file`` or ``ssh_key_file``) must exist, be regular readable files, and must not be
  readable or writable by all users (any of the ``o=rw`` mode bits): such a file is refused with the
  ``chmod`` that fixes it. A file readable by its group is accepted with a logged warning, so a service group
  can share it. Their contents are never echoed; messages name only the file.
* A database URL holding a password is refused when the configuration file itself is readable by all users.
* Durations are strings such as ``"90s"``, ``"5m"``, ``"1h30m"`` or ``"1d"`` (:func:`parse_duration`).

The package, one module per job:

* :mod:`~daemon.config.schema`: the settings classes; each field is one key, declared there only.
* :mod:`~daemon.config.loader`: the TOML file to settings, and the rule each value follows.
* :mod:`~daemon.config.tables`: the typed reader of one TOML table, naming the dotted key in its messages.
* :mod:`~daemon.config.secrets`: secret files, their permission checks, reading them at call time.
* :mod:`~daemon.config.durations`: ``"1h30m"`` and back.
* :mod:`~daemon.config.render`: settings back to TOML.
* :mod:`~daemon.config.values` and :mod:`~daemon.config.errors`: value checks, the error, quoting in messages.
"""

from __future__ import annotations

from daemon.config.durations import format_duration, parse_duration
from daemon.config.errors import ConfigError
from daemon.config.loader import CONFIG_ENV, SYSTEM_CONFIG, default_config_path, load_settings
from daemon.config.render import render_settings
from daemon.config.schema import (
    ACTIONS,
    ANCHORS,
    LEAF_QDISCS,
    MIN_WEB_KEY_BYTES,
    SUSPEND_MODES,
    BillingSettings,
    DaemonSettings,
    DatabaseSettings,
    DunningStepSettings,
    EnforcementSettings,
    LoggingSettings,
    PaymentSettings,
    RouterKind,
    RouterSettings,
    SchedulerSettings,
    SecuritySettings,
    Settings,
    SmtpSettings,
    WebSettings,
)

__all__ = [
    "ACTIONS",
    "ANCHORS",
    "CONFIG_ENV",
    "LEAF_QDISCS",
    "MIN_WEB_KEY_BYTES",
    "SUSPEND_MODES",
    "SYSTEM_CONFIG",
    "BillingSettings",
    "ConfigError",
    "DaemonSettings",
    "DatabaseSettings",
    "DunningStepSettings",
    "EnforcementSettings",
    "LoggingSettings",
    "PaymentSettings",
    "RouterKind",
    "RouterSettings",
    "SchedulerSettings",
    "SecuritySettings",
    "Settings",
    "SmtpSettings",
    "WebSettings",
    "default_config_path",
    "format_duration",
    "load_settings",
    "parse_duration",
    "render_settings",
]
