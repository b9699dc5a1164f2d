"""Conformance with two independent clients: librouteros and routeros_api."""

from __future__ import annotations

import socket
import ssl

import librouteros
import pytest
import routeros_api
from librouteros.exceptions import FatalError, TrapError
from librouteros.login import token
from librouteros.query import Key, Or
from routeros_api.exceptions import RouterOsApiCommunicationError

from lab.routeros import RouterOSEmulator
from lab.routeros.testing import running_router
from tests.lab.routeros.conftest import PASSWORD, USER


def test_librouteros_plain_login_and_identity(api: librouteros.api.Api) -> None:
    assert list(api.path("system", "identity")) == [{"name": "MikroTik"}]


def test_librouteros_wrong_password(router: RouterOSEmulator) -> None:
    with pytest.raises(TrapError) as caught:
        librouteros.connect("127.0.0.1", USER, "nope", port=router.port, timeout=5)
    assert caught.value.message == "invalid user name or password (6)"


def test_librouteros_legacy_challenge_login() -> None:
    with running_router(users={USER: PASSWORD}, version="6.44") as router:
        api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, login_method=token, timeout=5)
        assert list(api.path("system", "identity")) == [{"name": "MikroTik"}]
        api.close()
        with pytest.raises(TrapError) as caught:
            librouteros.connect("127.0.0.1", USER, "wrong", port=router.port, login_method=token, timeout=5)
        assert caught.value.message == "cannot log in"


def test_legacy_login_refused_on_7(router: RouterOSEmulator) -> None:
    with pytest.raises((TrapError, KeyError)):
        librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, login_method=token, timeout=5)


def test_librouteros_add_set_remove(api: librouteros.api.Api, router: RouterOSEmulator) -> None:
    secrets = api.path("ppp", "secret")
    first = secrets.add(name="u1", password="p", profile="default", disabled=False)
    second = secrets.add(name="u2", password="p", service="pppoe")
    assert (first, second) == ("*1", "*2")
    secrets.update(**{".id": first, "disabled": True, "comment": "late payer"})
    rows = {row["name"]: row for row in secrets}
    assert rows["u1"]["disabled"] is True and rows["u1"]["comment"] == "late payer"
    assert rows["u2"]["disabled"] is False and "comment" not in rows["u2"]
    secrets.remove(first, second)
    assert list(secrets) == []
    assert router.write_count == 4


def test_librouteros_select_where(api: librouteros.api.Api) -> None:
    secrets = api.path("ppp", "secret")
    for name, profile, disabled in (
        ("a", "default", False),
        ("b", "default-encryption", False),
        ("c", "default", True),
    ):
        secrets.add(name=name, profile=profile, disabled=disabled)
    name, profile, disabled = Key("name"), Key("profile"), Key("disabled")
    assert [row["name"] for row in secrets.select(name).where(profile == "default", disabled == False)] == ["a"]  # noqa: E712
    assert [row["name"] for row in secrets.select(name).where(name != "a")] == ["b", "c"]
    assert sorted(row["name"] for row in secrets.select(name).where(name.In("a", "c", "z"))) == ["a", "c"]
    picked = secrets.select(Key(".id"), name).where(Or(name == "b", disabled == True))  # noqa: E712
    assert [(row[".id"], row["name"]) for row in picked] == [("*2", "b"), ("*3", "c")]


def test_librouteros_traps(api: librouteros.api.Api) -> None:
    secrets = api.path("ppp", "secret")
    secrets.add(name="dup")
    with pytest.raises(TrapError) as caught:
        secrets.add(name="dup")
    assert "already" in caught.value.message
    with pytest.raises(TrapError) as caught:
        secrets.add(name="x", profile="gold")
    assert (caught.value.message, caught.value.category) == ("input does not match any value of profile", 1)
    with pytest.raises(TrapError) as caught:
        secrets.remove("*77")
    assert caught.value.message == "no such item (4)"
    with pytest.raises(TrapError) as caught:
        tuple(api("/ppp/nothing/print"))
    assert caught.value.message == "no such command prefix"


def test_librouteros_quit_raises_fatal(api: librouteros.api.Api) -> None:
    with pytest.raises(FatalError, match="session terminated on request"):
        tuple(api("/quit"))


def test_librouteros_over_tls() -> None:
    with running_router(users={USER: PASSWORD}, tls_port=0) as router:
        assert router.tls_port is not None
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        api = librouteros.connect(
            "127.0.0.1", USER, PASSWORD, port=router.tls_port, ssl_wrapper=context.wrap_socket, timeout=5
        )
        api.path("ppp", "secret").add(name="tls-user")
        assert [row["name"] for row in api.path("ppp", "secret")] == ["tls-user"]
        api.close()


def _pool(router: RouterOSEmulator, **options: object) -> routeros_api.RouterOsApiPool:
    return routeros_api.RouterOsApiPool(
        "127.0.0.1", username=USER, password=PASSWORD, port=router.port, plaintext_login=True, **options
    )


def test_routeros_api_client_crud(router: RouterOSEmulator) -> None:
    pool = _pool(router)
    api = pool.get_api()
    try:
        queues = api.get_resource("/queue/simple")
        queues.add(name="sub1", target="10.0.0.5", max_limit="5M/10M")
        rows = queues.get(name="sub1")
        assert rows[0]["max-limit"] == "5000000/10000000" and rows[0]["target"] == "10.0.0.5/32"
        queues.set(id=rows[0]["id"], max_limit="10M/20M")
        assert queues.get()[0]["max-limit"] == "10000000/20000000"
        with pytest.raises(RouterOsApiCommunicationError, match="upload-max-limit less than upload-limit"):
            queues.set(id=rows[0]["id"], limit_at="50M/1M")
        queues.remove(id=rows[0]["id"])
        assert queues.get() == []
    finally:
        pool.disconnect()


def test_routeros_api_legacy_login() -> None:
    with running_router(users={USER: PASSWORD}, version="6.40") as router:
        pool = routeros_api.RouterOsApiPool("127.0.0.1", username=USER, password=PASSWORD, port=router.port)
        try:
            assert pool.get_api().get_resource("/system/identity").get() == [{"name": "MikroTik"}]
        finally:
            pool.disconnect()


def test_routeros_api_over_tls() -> None:
    with running_router(users={USER: PASSWORD}, tls_port=0) as router:
        pool = routeros_api.RouterOsApiPool(
            "127.0.0.1",
            username=USER,
            password=PASSWORD,
            port=router.tls_port,
            plaintext_login=True,
            use_ssl=True,
            ssl_verify=False,
            ssl_verify_hostname=False,
        )
        try:
            assert pool.get_api().get_resource("/system/identity").get() == [{"name": "MikroTik"}]
        finally:
            pool.disconnect()


def test_a_silent_tls_client_does_not_block_the_others() -> None:
    with running_router(users={USER: PASSWORD}, tls_port=0) as router:
        assert router.tls_port is not None
        with socket.create_connection(("127.0.0.1", router.tls_port), timeout=5):  # never says hello
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            api = librouteros.connect(
                "127.0.0.1", USER, PASSWORD, port=router.tls_port, ssl_wrapper=context.wrap_socket, timeout=5
            )
            assert list(api.path("system", "identity")) == [{"name": "MikroTik"}]
            api.close()
