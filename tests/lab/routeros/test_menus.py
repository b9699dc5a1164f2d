"""Menu semantics: field names, value formats and errors, as a RouterOS client sees them."""

from __future__ import annotations

import librouteros
import pytest
from librouteros.api import Api
from librouteros.exceptions import TrapError

from lab.routeros import Quirks, RouterOSEmulator
from lab.routeros.testing import running_router
from tests.lab.routeros.conftest import PASSWORD, USER


def _trap(call: object, *args: object, **kwargs: object) -> TrapError:
    assert callable(call)
    with pytest.raises(TrapError) as caught:
        result = call(*args, **kwargs)
        if result is not None and not isinstance(result, str):
            tuple(result)
    return caught.value


def test_builtin_profiles(api: Api) -> None:
    profiles = api.path("ppp", "profile")
    rows = {row["name"]: row for row in profiles}
    assert rows["default"][".id"] == "*0"
    assert rows["default-encryption"][".id"] == "*FFFFFFFE"
    assert rows["default"]["default"] is True
    assert rows["default"]["use-compression"] == "default"  # tri-state stays yes/no/default
    assert _trap(profiles.remove, "*0").message == "failure: can not remove default profile"
    assert _trap(profiles.remove, "default-encryption").message == "failure: can not remove default profile"
    profiles.update(**{".id": "default", "rate-limit": "1M/2M"})
    assert next(iter(profiles.select().where(librouteros.query.Key("name") == "default")))["rate-limit"] == "1M/2M"


def test_profile_fields_and_rate_limit_validation(api: Api) -> None:
    profiles = api.path("ppp", "profile")
    api.path("ip", "pool").add(name="subs", ranges="10.10.0.2-10.10.0.254")
    new = profiles.add(
        name="gold",
        **{
            "rate-limit": "10M/50M",
            "local-address": "10.10.0.1",
            "remote-address": "subs",
            "only-one": "yes",
            "change-tcp-mss": True,
        },
    )
    row = next(row for row in profiles if row[".id"] == new)
    assert row["rate-limit"] == "10M/50M" and row["remote-address"] == "subs"
    assert row["only-one"] is True and row["change-tcp-mss"] is True and row["default"] is False
    assert _trap(profiles.add, name="bad", **{"rate-limit": "fast"}).message == "invalid value for argument rate-limit"
    assert _trap(profiles.add, name="bad", **{"remote-address": "nopool"}).category == 1
    assert _trap(profiles.add, name="gold").message == "failure: already have such name"
    assert _trap(profiles.update, **{".id": new, "default": True}).message == "unknown parameter default"


def test_rate_limit_can_be_normalised_by_quirk() -> None:
    with running_router(users={USER: PASSWORD}, quirks=Quirks(normalise_rate_limit=True)) as router:
        router.call("/ppp/profile/add", {"name": "p", "rate-limit": "5M/10M"})
        assert router.items("/ppp/profile")[-1]["rate-limit"] == "5000000/10000000"


def test_secret_defaults_booleans_and_omitted_properties(api: Api, router: RouterOSEmulator) -> None:
    secrets = api.path("ppp", "secret")
    secrets.add(name="u1", password="pw", disabled="yes")
    raw = router.items("/ppp/secret")[0]
    assert raw["disabled"] == "true"  # booleans print true/false whatever the input spelling
    assert raw["service"] == "any" and raw["profile"] == "default"
    assert "remote-address" not in raw and "comment" not in raw and "last-logged-out" not in raw
    secrets.update(**{".id": "u1", "disabled": "false", "remote-address": "10.0.0.9"})
    raw = router.items("/ppp/secret")[0]
    assert raw["disabled"] == "false" and raw["remote-address"] == "10.0.0.9"
    tuple(api("/ppp/secret/unset", **{".id": "u1", "value-name": "remote-address"}))
    assert "remote-address" not in router.items("/ppp/secret")[0]
    assert _trap(secrets.add, name="u2", disabled="maybe").category == 1
    assert (
        _trap(secrets.add, name="u2", service="carrier-pigeon").message == "input does not match any value of service"
    )
    assert _trap(secrets.update, **{".id": "u1", "last-logged-out": "x"}).message == "unknown parameter last-logged-out"


def test_secret_profile_follows_rename_and_dangles_after_removal(api: Api, router: RouterOSEmulator) -> None:
    profile_id = api.path("ppp", "profile").add(name="bronze")
    api.path("ppp", "secret").add(name="u1", profile="bronze")
    api.path("ppp", "profile").update(**{".id": profile_id, "name": "copper"})
    assert router.items("/ppp/secret")[0]["profile"] == "copper"
    api.path("ppp", "profile").remove(profile_id)
    assert router.items("/ppp/secret")[0]["profile"] == profile_id


def test_set_and_remove_by_name_and_comma_lists(api: Api, router: RouterOSEmulator) -> None:
    pools = api.path("ip", "pool")
    for index in range(4):
        pools.add(name=f"p{index}", ranges=f"10.0.{index}.1-10.0.{index}.9")
    pools.update(**{".id": "p1", "comment": "by name"})
    assert router.items("/ip/pool")[1]["comment"] == "by name"
    pools.remove("*1,p2")
    assert [row["name"] for row in pools] == ["p1", "p3"]
    before = router.items("/ip/pool")
    assert _trap(pools.remove, "p1", "*99").message == "no such item (4)"
    assert router.items("/ip/pool") == before  # bad input changes nothing


def test_ids_monotonic_never_reused(api: Api) -> None:
    pools = api.path("ip", "pool")
    first = pools.add(name="a", ranges="10.0.0.1")
    pools.remove(first)
    second = pools.add(name="b", ranges="10.0.0.1")
    assert (first, second) == ("*1", "*2")


def test_simple_queue_formats(api: Api, router: RouterOSEmulator) -> None:
    queues = api.path("queue", "simple")
    new = queues.add(name="sub", target="10.0.0.5", **{"max-limit": "5M/10M", "limit-at": "1M/2M"})
    row = router.items("/queue/simple")[0]
    assert row[".id"] == new
    assert row["target"] == "10.0.0.5/32"
    assert row["max-limit"] == "5000000/10000000" and row["limit-at"] == "1000000/2000000"
    for stat in ("bytes", "packets", "dropped", "rate", "packet-rate", "queued-bytes", "queued-packets"):
        assert row[stat] == "0/0"
    assert row["total-bytes"] == "0" and row["dynamic"] == "false" and row["invalid"] == "false"
    assert row["parent"] == "none" and row["burst-time"] == "0s/0s" and row["priority"] == "8/8"
    assert _trap(queues.add, name="q2", target="10.0.0.6", **{"max-limit": "5M/10M", "limit-at": "6M/1M"}).message == (
        "failure: upload-max-limit less than upload-limit"
    )
    assert _trap(queues.update, **{".id": new, "limit-at": "1M/20M"}).message == (
        "failure: download-max-limit less than download-limit"
    )
    assert _trap(queues.add, name="sub", target="10.0.0.7").message == "failure: already have such name"
    assert _trap(queues.add, name="q3", target="999.1.1.1").category == 1
    assert _trap(queues.add, name="q3", target="10.0.0.8", **{"max-limit": "lots"}).category == 1
    assert _trap(queues.add, name="q3").message == "missing value(s) of argument(s) target"
    auto = queues.add(target="10.1.0.0/24")
    assert next(row for row in router.items("/queue/simple") if row[".id"] == auto)["name"] == "queue1"


def test_queue_parent_reference(api: Api, router: RouterOSEmulator) -> None:
    queues = api.path("queue", "simple")
    queues.add(name="all", target="10.0.0.0/16")
    queues.add(name="one", target="10.0.0.5", parent="all")
    assert router.items("/queue/simple")[1]["parent"] == "all"
    assert _trap(queues.update, **{".id": "all", "parent": "one"}).message.startswith("failure:")
    assert _trap(queues.add, name="x", target="10.0.0.6", parent="ghost").message == (
        "input does not match any value of parent"
    )


def test_queue_counters_reset_commands(router: RouterOSEmulator, api: Api) -> None:
    router.call("/ppp/profile/add", {"name": "p", "rate-limit": "2M/4M", "remote-address": "10.5.5.5"})
    router.call("/ppp/secret/add", {"name": "u1", "profile": "p"})
    router.advance(120)
    queue = router.items("/queue/simple")[0]
    assert queue["bytes"] != "0/0"
    tuple(api("/queue/simple/reset-counters", **{".id": queue[".id"]}))
    assert router.items("/queue/simple")[0]["bytes"] == "0/0"
    router.advance(60)
    tuple(api("/queue/simple/reset-counters-all"))
    assert router.items("/queue/simple")[0]["bytes"] == "0/0"


def test_address_list(api: Api, router: RouterOSEmulator) -> None:
    lists = api.path("ip", "firewall", "address-list")
    lists.add(list="blocked", address="10.0.0.5")
    lists.add(list="blocked", address="10.1.0.0/16", comment="range")
    assert _trap(lists.add, list="blocked", address="10.0.0.5").message == "failure: already have such entry"
    assert _trap(lists.add, list="blocked", address="10.0.0.300").category == 1
    lists.add(list="other", address="10.0.0.5")
    lists.add(list="temp", address="10.9.9.9", timeout="1m")
    rows = {(row["list"], row["address"]): row for row in router.items("/ip/firewall/address-list")}
    assert rows[("blocked", "10.0.0.5")]["dynamic"] == "false" and "timeout" not in rows[("blocked", "10.0.0.5")]
    temp = rows[("temp", "10.9.9.9")]
    assert temp["dynamic"] == "true" and temp["timeout"] == "1m"
    assert len(temp["creation-time"]) == len("2024-05-01 12:00:00")
    router.advance(59)
    assert [r["timeout"] for r in router.items("/ip/firewall/address-list") if r["list"] == "temp"] == ["1s"]
    router.advance(1)
    assert not [r for r in router.items("/ip/firewall/address-list") if r["list"] == "temp"]


def test_interfaces(api: Api, router: RouterOSEmulator) -> None:
    rows = list(api.path("interface"))
    assert [row["name"] for row in rows] == ["ether1", "ether2", "ether3", "ether4", "ether5"]
    ether = rows[0]
    for key in (
        "rx-byte",
        "tx-byte",
        "rx-packet",
        "tx-packet",
        "rx-drop",
        "tx-drop",
        "tx-queue-drop",
        "mtu",
        "actual-mtu",
        "mac-address",
        "running",
        "disabled",
        "dynamic",
        "type",
        "default-name",
    ):
        assert key in ether
    assert ether["type"] == "ether" and ether["dynamic"] is False
    api.path("interface").update(**{".id": "ether2", "name": "uplink", "comment": "to core"})
    renamed = router.items("/interface")[1]
    assert (renamed["name"], renamed["default-name"]) == ("uplink", "ether2")
    assert _trap(api.path("interface").update, **{".id": "ether1", "type": "vlan"}).message == "unknown parameter type"
    assert _trap(api.path("interface").add, name="x").message == "no such command"


def test_identity_and_resource(api: Api, router: RouterOSEmulator) -> None:
    tuple(api("/system/identity/set", name="edge-1"))
    assert list(api.path("system", "identity")) == [{"name": "edge-1"}]
    resource = list(api.path("system", "resource"))
    assert len(resource) == 1 and ".id" not in resource[0]
    assert resource[0]["version"] == "7.16 (stable)"
    router.advance(3725)
    assert router.items("/system/resource")[0]["uptime"] == "1h2m5s"


def test_active_only_print_and_remove(api: Api) -> None:
    assert _trap(api.path("ppp", "active").add, name="x").message == "no such command"
    assert _trap(api("/ppp/active/set", **{".id": "*1"}).__next__).message == "no such command"


def test_dynamic_queue_cannot_be_edited(router: RouterOSEmulator, api: Api) -> None:
    router.call("/ppp/profile/add", {"name": "p", "rate-limit": "2M/4M", "remote-address": "10.5.5.5"})
    router.call("/ppp/secret/add", {"name": "u1", "profile": "p"})
    router.advance(1)
    queue = router.items("/queue/simple")[0]
    assert queue["dynamic"] == "true"
    assert _trap(api.path("queue", "simple").remove, queue[".id"]).message.startswith("failure:")
    assert _trap(api.path("queue", "simple").update, **{".id": queue[".id"], "max-limit": "1M/1M"}).message.startswith(
        "failure:"
    )


def test_version_6_error_texts() -> None:
    with running_router(users={USER: PASSWORD}, version="6.49.10") as router:
        api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=5)
        assert _trap(api.path("ip", "pool").remove, "*5").message == "no such item"
        router.call("/ip/firewall/address-list/add", {"list": "l", "address": "10.0.0.1"})
        created = router.items("/ip/firewall/address-list")[0]["creation-time"]
        assert created[:3].isalpha() and created[3] == "/"  # may/01/2023 20:52:13
        api.close()


def test_unverified_behaviours_are_configurable() -> None:
    quirks = Quirks(
        reset_counters_on_edit=True,
        empty_reply=True,
        error_codes=False,
        default_encryption_profile_id=0xFFFFFFFD,
        secret_duplicate_message="failure: already have user with this name for this service",
    )
    with running_router(users={USER: PASSWORD}, quirks=quirks) as router:
        api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=5)
        assert [row[".id"] for row in api.path("ppp", "profile")] == ["*0", "*FFFFFFFD"]
        assert _trap(api.path("ip", "pool").remove, "*9").message == "no such item"
        api.path("ppp", "secret").add(name="a", **{"remote-address": "10.0.0.2"})
        assert "already" in _trap(api.path("ppp", "secret").add, name="a").message
        router.call("/queue/simple/add", {"name": "q", "target": "10.0.0.2", "max-limit": "1M/1M"})
        router.advance(60)
        assert router.items("/queue/simple")[0]["bytes"] != "0/0"
        api.path("queue", "simple").update(**{".id": "q", "comment": "edited"})
        assert router.items("/queue/simple")[0]["bytes"] == "0/0"
        api.close()
