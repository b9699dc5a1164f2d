"""Signing in and out: where sign-in may send the browser, how failed sign-ins are throttled, when sessions end."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from daemon.services import users
from tests.web.conftest import ADMIN_PASSWORD, SUPPORT_PASSWORD, Seeded, csrf_of, make_app, sign_in

# -- where sign-in sends the browser -----------------------------------------------------------------------------


def _as_a_browser_reads_it(location: str) -> str:
    """What a browser makes of a Location: tabs and newlines dropped, backslashes read as slashes."""
    return "".join(c for c in location if c not in "\t\r\n").replace("\\", "/").lstrip(" ")


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example/x",
        "/%0a/evil.example/x",
        "/%0d%0a/evil.example/x",
        "//evil.example/x",
        "/\\evil.example/x",
        "\\\\evil.example/x",
        "/%5Cevil.example",
        "https://evil.example/x",
        "http:/evil.example",
        "javascript:alert(1)",
        "%20//evil.example",
        "evil.example",
        "/%E2%80%8B/evil.example",
        "/" + "a" * 3000,
    ],
)
def test_sign_in_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    token = csrf_of(client)
    response = client.post(
        f"/login?next={target}", data={"csrf": token, "username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 302
    seen = _as_a_browser_reads_it(response.headers["Location"])
    parts = urlsplit(seen)
    assert not parts.scheme and not parts.netloc and seen.startswith("/") and not seen.startswith("//")
    assert "evil.example" not in parts.netloc


@pytest.mark.parametrize("target", ["/routers", "/services?state=suspended", "/customers/1", "/"])
def test_sign_in_returns_to_a_local_path(client: FlaskClient, target: str) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login", query_string={"next": target}, data={"csrf": token, "username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.headers["Location"] == target


# -- throttling of failed sign-ins -------------------------------------------------------------------------------


def _attempt(client: FlaskClient, username: str, password: str, address: str = "192.0.2.10") -> int:
    environ = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=environ).get_data(as_text=True)
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    token = page[start : page.index('"', start)]
    response = client.post(
        "/login", data={"csrf": token, "username": username, "password": password}, environ_base=environ
    )
    if response.status_code == 302:
        client.post("/logout", data={"csrf": csrf_of(client, "/")}, environ_base=environ)
    return response.status_code


def test_failed_sign_ins_are_throttled_per_account(seeded: Seeded) -> None:
    client = make_app(seeded, login_limit_per_account="3 per minute", login_limit_per_address="100 per minute")
    c = client.test_client()
    assert _attempt(c, "admin", ADMIN_PASSWORD) == 302  # a successful sign-in does not count
    assert [_attempt(c, "admin", "wrong") for _ in range(3)] == [200, 200, 200]
    # The fourth attempt on this account is refused, even with the right password and from another address.
    response_code = _attempt(c, "admin", ADMIN_PASSWORD, address="198.51.100.7")
    assert response_code == 429
    # Case and spaces do not make another account.
    assert _attempt(c, " ADMIN ", ADMIN_PASSWORD, address="198.51.100.8") == 429
    # Other accounts are not affected.
    assert _attempt(c, "support", SUPPORT_PASSWORD) == 302


def test_failed_sign_ins_are_throttled_per_address_with_a_clear_429(seeded: Seeded) -> None:
    client = make_app(seeded, login_limit_per_account="100 per minute", login_limit_per_address="4 per minute")
    c = client.test_client()
    for name in ("a", "b", "c", "d"):
        assert _attempt(c, name, "guess") == 200
    token = csrf_of(c)
    refused = c.post(
        "/login",
        data={"csrf": token, "username": "support", "password": SUPPORT_PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.10"},
    )
    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert f"Too many failed sign-ins. Try again in {retry} seconds." in refused.get_data(as_text=True)
    assert refused.headers["Content-Security-Policy"]
    # Another address may still sign in; the page itself still loads for the throttled one.
    assert _attempt(c, "support", SUPPORT_PASSWORD, address="192.0.2.11") == 302
    assert c.get("/login", environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 200


# -- when a session ends -----------------------------------------------------------------------------------------


def _stolen_copy(client: FlaskClient, other: FlaskClient) -> None:
    """Give ``other`` the session cookie of ``client``, as a thief would."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    other.set_cookie("session", cookie.value)


def test_sign_out_ends_a_stolen_copy_of_the_session(app_clients: tuple[FlaskClient, FlaskClient]) -> None:
    victim, thief = app_clients
    sign_in(victim)
    _stolen_copy(victim, thief)
    assert thief.get("/routers").status_code == 200
    victim.post("/logout", data={"csrf": csrf_of(victim, "/")})
    assert thief.get("/routers").status_code == 302
    # The thief's cookie stays dead after the victim signs in again.
    sign_in(victim)
    assert victim.get("/routers").status_code == 200
    assert thief.get("/routers").status_code == 302


@pytest.mark.parametrize("change", ["password", "disable"])
def test_a_new_password_or_disabling_ends_every_session(
    app_clients: tuple[FlaskClient, FlaskClient], seeded: Seeded, change: str
) -> None:
    first, second = app_clients
    sign_in(first, "support", SUPPORT_PASSWORD)
    sign_in(second, "support", SUPPORT_PASSWORD)
    with seeded.sessions.begin() as s:
        if change == "password":
            users.set_password(s, "test", "support", "a brand new password")
        else:
            users.set_user_active(s, "test", "support", False)
            users.set_user_active(s, "test", "support", True)
    assert first.get("/").status_code == 302
    assert second.get("/").status_code == 302


def test_an_idle_session_ends(seeded: Seeded) -> None:
    client = make_app(seeded, session_idle_timeout=timedelta(minutes=5)).test_client()
    sign_in(client)
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - 4 * 60
    assert client.get("/").status_code == 200  # four idle minutes: still signed in, and the clock restarts
    with client.session_transaction() as session:
        assert int(time.time()) - session["seen"] < 5
        session["seen"] = int(time.time()) - 6 * 60
    assert client.get("/").status_code == 302


def test_a_session_ends_at_its_lifetime_however_active(seeded: Seeded) -> None:
    app = make_app(seeded, session_lifetime=timedelta(hours=1))
    assert app.permanent_session_lifetime == timedelta(hours=1)  # the cookie's signature expires with it too
    client = app.test_client()
    sign_in(client)
    with client.session_transaction() as session:
        session["began"] = int(time.time()) - 3601
    assert client.get("/").status_code == 302


def test_a_session_cookie_without_times_is_not_accepted(client: FlaskClient, seeded: Seeded) -> None:
    sign_in(client)
    with client.session_transaction() as session:
        del session["began"]
    assert client.get("/").status_code == 302


@pytest.fixture
def app_clients(seeded: Seeded) -> tuple[FlaskClient, FlaskClient]:
    app = make_app(seeded)
    return app.test_client(), app.test_client()


@pytest.mark.parametrize("username", ["ad\x00min", "\x00", "a" * 1000, "admin\u202e", "\uff21dmin"])
def test_a_user_name_no_user_can_have_is_a_plain_failed_sign_in(client: FlaskClient, username: str) -> None:
    response = client.post("/login", data={"csrf": csrf_of(client), "username": username, "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    assert "Unknown user name or wrong password." in response.get_data(as_text=True)


def _forwarded_attempt(client: FlaskClient, username: str, forwarded: str) -> int:
    """A failed sign-in from 192.0.2.10 whose request says it was forwarded for ``forwarded``."""
    environ = {"REMOTE_ADDR": "192.0.2.10"}
    headers = {"X-Forwarded-For": forwarded}
    token = csrf_of(client)
    return client.post(
        "/login", data={"csrf": token, "username": username, "password": "guess"}, environ_base=environ, headers=headers
    ).status_code


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(seeded: Seeded) -> None:
    limits = {"login_limit_per_account": "100 per minute", "login_limit_per_address": "2 per minute"}
    # No proxy configured: a client that forges X-Forwarded-For is still counted under its own address.
    direct = make_app(seeded, **limits).test_client()
    assert [_forwarded_attempt(direct, f"user{n}", f"198.51.100.{n}") for n in range(3)] == [200, 200, 429]
    # Behind one trusted proxy, every client is counted under the address the proxy forwards.
    proxied = make_app(seeded, trusted_proxies=1, **limits).test_client()
    assert [_forwarded_attempt(proxied, f"user{n}", "198.51.100.7") for n in range(3)] == [200, 200, 429]
    assert _forwarded_attempt(proxied, "user9", "198.51.100.8") == 200
