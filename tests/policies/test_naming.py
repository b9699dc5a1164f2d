"""policies.naming: the one rule for each value a router carries, shared by the drivers and the service layer."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from drivers.mikrotik import InvalidRouterInput, validate_name
from drivers.mikrotik.plan import render
from policies.desired import ConnectionType, DesiredState, ProfileSpec, SubscriberSpec
from policies.naming import (
    Carrier,
    NamingError,
    address_problem,
    group_problem,
    pppoe_login,
    pppoe_password,
    router_name,
    subscriber_problem,
)
from policies.rates import RateLimit


@pytest.mark.parametrize("login", ["alice", "alice@isp.example", "CPE-00:11:22", "u" * 64, "a!#$%&()*+-./:;<>?"])
def test_valid_logins(login: str) -> None:
    assert pppoe_login(login) == login


@pytest.mark.parametrize(
    ("login", "reason"),
    [
        ("", "1-64 characters"),
        ("u" * 65, "1-64 characters"),
        ("al ice", "printable ASCII"),
        ("alice\t", "printable ASCII"),
        ("jos\u00e9", "printable ASCII"),
        ('al"ice', "must not contain"),
        ("al'ice", "must not contain"),
        ("al`ice", "must not contain"),
        ("a=b", "must not contain"),
        ("a\\b", "must not contain"),
        ("*1", "must not start with '\\*'"),
        ("x,y", "must not contain ','"),
        ("<pppoe-x>", "looks like a dynamic RouterOS name"),
    ],
)
def test_invalid_logins(login: str, reason: str) -> None:
    with pytest.raises(NamingError, match=reason):
        pppoe_login(login)


@pytest.mark.parametrize("login", ["*1", "x,y", "<pppoe-x>", " lead", "a\x7fb"])
def test_the_routeros_driver_refuses_what_the_login_rule_refuses_with_the_same_words(login: str) -> None:
    with pytest.raises(NamingError) as entry:
        pppoe_login(login)
    with pytest.raises(InvalidRouterInput) as driver:
        validate_name(login, what="PPPoE login")
    if login.isprintable() and login == login.strip():  # past the ASCII checks, the router's rule speaks
        assert str(entry.value) == str(driver.value)
    spec = SubscriberSpec(
        key=login,
        service_id=7,
        connection=ConnectionType.PPPOE,
        profile="home",
        rate=RateLimit(10_000_000, 5_000_000),
        login=login,
        password="pw-1",
    )
    rendered = render(DesiredState(profiles=(ProfileSpec("home", spec.rate),), subscribers=(spec,)))
    assert [c.reason for c in rendered.conflicts] == [str(driver.value)]


def test_router_names_follow_the_routers_encoding() -> None:
    assert router_name("caf\u00e9", encoding="cp1252") == "caf\u00e9"
    with pytest.raises(NamingError, match="cp1252 encoding cannot store: '\u65e5\u672c'"):
        router_name("\u65e5\u672c", what="profile name", encoding="cp1252")
    with pytest.raises(NamingError, match="unknown router encoding"):
        router_name("a", encoding="no-such-codec")


@pytest.mark.parametrize(
    ("password", "reason"),
    [("", "must not be empty"), ("p" * 65, "too long"), ("has space", "printable ASCII"), ("caf\u00e9", "printable")],
)
def test_invalid_passwords(password: str, reason: str) -> None:
    with pytest.raises(NamingError, match=reason):
        pppoe_password(password)
    assert pppoe_password("p" * 64) == "p" * 64


def test_what_each_router_kind_carries() -> None:
    mikrotik = Carrier("mikrotik", encoding="cp1252")
    gateway = Carrier("linux", subnets=(IPv4Network("100.64.0.0/24"),))
    inside, outside = IPv4Address("100.64.0.9"), IPv4Address("100.64.1.9")
    assert subscriber_problem(mikrotik, login="ana", password="pw-1", address=None) is None
    assert subscriber_problem(mikrotik, login="*1", password="pw-1", address=None) == (
        "PPPoE login '*1' must not start with '*' (RouterOS reads it as an item id)"
    )
    assert subscriber_problem(mikrotik, login="ana", password="p w", address=None) == (
        "PPPoE password must be printable ASCII without spaces"
    )
    assert subscriber_problem(gateway, login=None, password=None, address=inside) is None
    assert subscriber_problem(gateway, login=None, password=None, address=outside) == (
        "address 100.64.1.9 is outside this gateway's subnets 100.64.0.0/24"
    )
    assert subscriber_problem(gateway, login="ana", password="pw-1", address=None) == (
        "a linux gateway shapes by address: the service needs an IPv4 address"
    )
    assert subscriber_problem(Carrier("linux"), login=None, password=None, address=outside) is None
    assert address_problem(outside, ()) is None


def test_a_gateways_slash_24s_must_differ_within_their_slash_10() -> None:
    gateway = Carrier("linux")
    taken = [IPv4Address("100.64.0.9")]
    assert group_problem(IPv4Address("100.64.0.10"), taken) is None  # the same /24
    assert group_problem(IPv4Address("100.65.0.10"), taken) is None  # another /24 of the same /10
    assert group_problem(IPv4Address("100.128.0.10"), taken) == (
        "100.128.0.0/24 and 100.64.0.0/24 would share a shaping group: a gateway's /24s must differ within their /10"
    )
    assert subscriber_problem(gateway, login=None, password=None, address=IPv4Address("100.128.0.10"), others=taken)
    assert subscriber_problem(Carrier("mikrotik"), login=None, password=None, address=IPv4Address("100.128.0.10"),
                              others=taken) is None  # fmt: skip
