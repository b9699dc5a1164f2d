"""The edgebill dashboard and REST API: a Flask application factory with one blueprint per area.

The web process calls :mod:`daemon` services over the shared database; it never runs the scheduler. Settings come
from the same TOML file as the daemon (:func:`daemon.config.load_settings`); the session-signing key is read from
``[web] secret_key_file`` and there is no fallback key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from daemon.config import Settings, default_config_path, load_settings
from daemon.db import make_engine, session_factory
from web import api, auth, billing, dashboard, errors, filters, guards
from web.context import SESSIONS_KEY, SETTINGS_KEY, close_db

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    sessions: sessionmaker[Session] | None = None,
    test_config: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the application.

    ``settings`` defaults to the file named by ``EDGEBILL_CONFIG`` (or the default path); ``sessions`` defaults to
    a session factory over ``settings.database.url``. ``test_config`` overrides Flask settings in tests.
    """
    if settings is None:
        settings = load_settings(default_config_path())
    if sessions is None:
        sessions = session_factory(make_engine(settings.database.url))

    app = Flask(__name__)
    if settings.web.trusted_proxies:
        hops = settings.web.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=settings.web.secret_key(),  # ConfigError naming the file when it cannot be used
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=settings.web.session_lifetime,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[SESSIONS_KEY] = sessions
    app.teardown_appcontext(close_db)
    guards.install(app, settings.web)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(billing.bp)
    auth.init_throttling(app, settings.web)
    filters.register(app)
    errors.register(app)
    log.info("web application ready for %s", settings.web.base_url)
    return app
