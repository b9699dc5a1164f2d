"""A service its router does not carry says so on its page, in the API and on the routers page.

The conflict is found by the real reconcile engine against the RouterOS emulator; the service is one stored
before the login rule (written straight to the database).
"""

from __future__ import annotations

import html
from dataclasses import replace

from flask.testing import FlaskClient
from sqlalchemy import update

from daemon.db import Service
from daemon.reconcile import reconcile_router
from lab.routeros import RouterOSEmulator
from tests.routeros import POOL
from tests.web.conftest import Seeded


def test_a_conflict_shows_on_the_service_the_api_and_the_routers_page(admin: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions.begin() as s:  # the seeded PPPoE service, its login made one RouterOS refuses
        s.execute(update(Service).where(Service.id == seeded.service_id).values(pppoe_login="<pppoe-x>"))
    reason = "ppp/secret <pppoe-x>: PPPoE login '<pppoe-x>' looks like a dynamic RouterOS name ('<...>')"
    with RouterOSEmulator(users={"edgebill": "router-api-password"}, port=0, default_remote_range=POOL) as emu:
        core1 = replace(seeded.settings.router("core1"), port=emu.port)
        report = reconcile_router(seeded.sessions, replace(seeded.settings, routers=(core1,)), "core1")
    assert report.ok and report.conflicts == (reason,)

    page = html.unescape(admin.get(f"/services/{seeded.service_id}").get_data(as_text=True))
    assert f'<p class="headline problem" data-testid="headline">Not on the router: {reason}</p>' in page
    assert "Not on router core1" in page and "Active on plan" not in page

    token = {"Authorization": f"Bearer {seeded.token}"}
    body = admin.get(f"/api/v1/services/{seeded.service_id}", headers=token).get_json()
    assert body["state"] == "active" and body["diagnosis"]["conflict"] == reason
    assert body["diagnosis"]["headline"] == f"Not on the router: {reason}"

    routers_page = html.unescape(admin.get("/routers").get_data(as_text=True))
    assert f'class="problem" title="services the router does not carry: {seeded.service_id}">1</td>' in routers_page
    assert f"1 conflict (not on the router): {reason}" in routers_page

    # The static service on another router is untouched by it.
    other = admin.get(f"/api/v1/services/{seeded.static_service_id}", headers=token).get_json()
    assert other["diagnosis"]["conflict"] is None
