"""Wire-level behaviour over real TCP with a raw socket client."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from lab.routeros import RouterOSEmulator
from lab.routeros.testing import running_router
from lab.routeros.wire import PeerClosed, encode_length
from tests.lab.routeros.conftest import PASSWORD, USER
from tests.lab.routeros.rawclient import RawClient, attrs


def _client(router: RouterOSEmulator) -> RawClient:
    client = RawClient(router.port)
    client.login(USER, PASSWORD)
    return client


def test_command_before_login_is_fatal_plain_word(router: RouterOSEmulator) -> None:
    with RawClient(router.port) as client:
        client.send("/ppp/secret/print")
        assert client.read() == ["!fatal", "not logged in"]
        assert client.closed_by_peer()


def test_wrong_password_gets_trap_then_done(router: RouterOSEmulator) -> None:
    with RawClient(router.port) as client:
        reply = client.call("/login", f"=name={USER}", "=password=wrong")
        assert reply == [["!trap", "=message=invalid user name or password (6)"], ["!done"]]
        client.login(USER, PASSWORD)  # the connection stays usable


def test_quit_is_fatal_plain_word(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.send("/quit")
        assert client.read() == ["!fatal", "session terminated on request"]
        assert client.closed_by_peer()


def test_tags_only_when_requested(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        tagged = client.call("/system/identity/print", ".tag=abc")
        assert all(sentence[-1] == ".tag=abc" for sentence in tagged)
        untagged = client.call("/system/identity/print")
        assert untagged == [["!re", "=name=MikroTik"], ["!done"]]
        trap = client.call("/ppp/secret/remove", "=.id=*99", ".tag=7")
        assert trap == [["!trap", "=message=no such item (4)", ".tag=7"], ["!done", ".tag=7"]]


def test_trap_is_followed_by_done(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        reply = client.call("/ppp/secret/add", "=name=u1", "=profile=missing")
        assert reply == [["!trap", "=category=1", "=message=input does not match any value of profile"], ["!done"]]
        assert client.call("/nowhere/print") == [["!trap", "=message=no such command prefix"], ["!done"]]
        assert client.call("/ppp/secret/frobnicate") == [["!trap", "=message=no such command"], ["!done"]]
        reply = client.call("/ppp/secret/add", "=name=u1", "=colour=blue")
        assert reply == [["!trap", "=message=unknown parameter colour"], ["!done"]]


@pytest.mark.parametrize("size", [127, 128, 255, 256, 16383, 16384, 20000, 70000, 2_200_000])
def test_long_words_round_trip(router: RouterOSEmulator, size: int) -> None:
    comment = ("0123456789abcdef" * (size // 16 + 1))[:size]
    with _client(router) as client:
        reply = client.call("/ip/pool/add", "=name=p", "=ranges=10.0.0.1-10.0.0.9", f"=comment={comment}")
        assert reply[0][0] == "!done"
        rows = client.call("/ip/pool/print", "=.proplist=comment")
        assert rows[0] == ["!re", f"=comment={comment}"]


def test_length_256_prefix_contains_zero_byte(router: RouterOSEmulator) -> None:
    word = "=comment=" + "x" * (256 - len("=comment="))
    assert encode_length(len(word)) == b"\x81\x00"
    with _client(router) as client:
        assert client.call("/ip/pool/add", "=name=p", "=ranges=10.0.0.1", word)[0][0] == "!done"
        assert client.call("/ip/pool/print", "=.proplist=comment")[0] == ["!re", word]


def test_five_byte_length_prefix_is_decoded(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        word = b"/system/identity/print"
        client.send_bytes(b"\xf0" + len(word).to_bytes(4, "big") + word + b"\x00")
        assert client.until_done() == [["!re", "=name=MikroTik"], ["!done"]]


def test_raw_bytes_round_trip_unchanged(router: RouterOSEmulator) -> None:
    comment = bytes(range(0x80, 0x100)).decode("latin-1")  # a Windows codepage comment, not UTF-8
    with _client(router) as client:
        assert client.call("/ip/pool/add", "=name=p", "=ranges=10.0.0.1", f"=comment={comment}")[0][0] == "!done"
        assert client.call("/ip/pool/print", "=.proplist=comment")[0] == ["!re", f"=comment={comment}"]


def test_attribute_value_split_on_second_equals_only(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.call("/ppp/secret/add", "=name=u1", "=password=iu=c3Eeg")
        rows = client.call("/ppp/secret/print", "=.proplist=password")
        assert rows[0] == ["!re", "=password=iu=c3Eeg"]


def test_proplist_missing_property_gives_empty_re_and_no_id(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.call("/ip/pool/add", "=name=p", "=ranges=10.0.0.1")
        assert client.call("/ip/pool/print", "=.proplist=comment") == [["!re"], ["!done"]]
        assert client.call("/ip/pool/print", "=.proplist=name") == [["!re", "=name=p"], ["!done"]]


def test_queries_on_the_wire(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        for name, kind in (("a", "pppoe"), ("b", "l2tp"), ("c", "any")):
            client.call("/ppp/secret/add", f"=name={name}", f"=service={kind}")
        client.call("/ppp/secret/set", "=.id=c", "=comment=vip")

        def names(*words: str) -> list[str]:
            return [attrs(s)["name"] for s in client.call("/ppp/secret/print", *words) if s[0] == "!re"]

        assert names("?service=pppoe") == ["a"]
        assert names("?=service=pppoe", "?=service=l2tp", "?#|") == ["a", "b"]
        assert names("?comment") == ["c"]
        assert names("?-comment") == ["a", "b"]
        assert names("?=disabled=no") == ["a", "b", "c"]
        assert names("?=name=b", "?#!") == ["a", "c"]
        assert names("?>name=a") == ["b", "c"]
        assert names("?<name=b") == ["a"]


def test_count_only(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.call("/ppp/secret/add", "=name=a")
        client.call("/ppp/secret/add", "=name=b")
        assert client.call("/ppp/secret/print", "=count-only=") == [["!done", "=ret=2"]]
        assert client.call("/ppp/secret/print", "=count-only=", "?name=b") == [["!done", "=ret=1"]]


def test_flag_arguments_accept_any_value(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        for word in ("=stats=yes", "=stats=", "=detail=no", "=stats-detail=x", "=detail"):
            reply = client.call("/interface/print", word, "=.proplist=name", "?name=ether1")
            assert reply == [["!re", "=name=ether1"], ["!done"]]


def test_no_empty_sentence_before_7_18(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        assert client.call("/ppp/secret/print") == [["!done"]]


def test_empty_sentence_on_7_18() -> None:
    with running_router(users={USER: PASSWORD}, version="7.18") as router, _client(router) as client:
        assert client.call("/ppp/secret/print", ".tag=t") == [["!empty", ".tag=t"], ["!done", ".tag=t"]]
        client.call("/ppp/secret/add", "=name=a")
        reply = client.call("/ppp/secret/print", "=.proplist=name")
        assert reply == [["!re", "=name=a"], ["!done"]]


def test_listen_and_cancel_by_tag(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.send("/ppp/secret/listen", ".tag=L")
        time.sleep(0.1)
        client.send("/ppp/secret/add", "=name=u1", ".tag=A")
        seen: list[list[str]] = []
        while not (seen and seen[-1] == ["!done", "=ret=*1", ".tag=A"]):
            seen.append(client.read())
        events = [s for s in seen if s[-1] == ".tag=L"]
        assert events and attrs(events[0])["name"] == "u1"
        client.send("/cancel", "=tag=L", ".tag=C")
        assert client.read() == ["!trap", "=category=2", "=message=interrupted", ".tag=L"]
        assert client.read() == ["!done", ".tag=C"]
        assert client.read() == ["!done", ".tag=L"]
        # Nothing more arrives for L after the cancel.
        client.call("/ppp/secret/remove", "=.id=*1")
        assert client.call("/system/identity/print") == [["!re", "=name=MikroTik"], ["!done"]]


def test_listen_reports_removal_as_dead(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.call("/ip/pool/add", "=name=p", "=ranges=10.0.0.1")
        client.send("/ip/pool/listen", ".tag=L")
        time.sleep(0.1)
        client.send("/ip/pool/remove", "=.id=p", ".tag=R")
        seen = [client.read(), client.read()]
        assert ["!re", "=.id=*1", "=.dead=yes", ".tag=L"] in seen
        assert ["!done", ".tag=R"] in seen


def test_cancel_without_tag_cancels_everything(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.send("/ppp/secret/listen", ".tag=1")
        client.send("/queue/simple/listen", ".tag=2")
        time.sleep(0.1)
        client.send("/cancel", ".tag=9")
        replies = [client.read() for _ in range(5)]
        assert ["!trap", "=category=2", "=message=interrupted", ".tag=1"] in replies
        assert ["!trap", "=category=2", "=message=interrupted", ".tag=2"] in replies
        assert ["!done", ".tag=9"] in replies
        assert replies.index(["!done", ".tag=9"]) < replies.index(["!done", ".tag=1"])
        assert ["!done", ".tag=2"] in replies


def test_print_follow_sends_rows_then_changes(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        client.call("/ip/pool/add", "=name=p1", "=ranges=10.0.0.1")
        client.send("/ip/pool/print", "=follow=", "=.proplist=name", ".tag=F")
        assert client.read() == ["!re", "=name=p1", ".tag=F"]
        client.send("/ip/pool/add", "=name=p2", "=ranges=10.0.0.2")
        replies = [client.read(), client.read()]
        assert ["!re", "=name=p2", ".tag=F"] in replies


def test_control_byte_closes_only_that_connection(router: RouterOSEmulator) -> None:
    with _client(router) as bad, _client(router) as good:
        bad.send_bytes(b"\xf8junk")
        assert bad.closed_by_peer()
        assert good.call("/system/identity/print") == [["!re", "=name=MikroTik"], ["!done"]]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff\xff\xff",
        b"\x05/log",  # truncated word, then EOF
        b"\x03abc\x00",  # a sentence that is not a command, before login
        b"\xf0\xff\xff\xff\xff",  # a 4 GiB word
        b"\x00" * 1000,  # empty sentences are ignored
        bytes(range(256)) * 20,
    ],
)
def test_malformed_input_never_wedges_the_server(router: RouterOSEmulator, garbage: bytes) -> None:
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as raw:
        with contextlib.suppress(OSError):  # the server may hang up before it has read everything
            raw.sendall(garbage)
            raw.shutdown(socket.SHUT_WR)
        with _client(router) as other:
            assert other.call("/system/identity/print") == [["!re", "=name=MikroTik"], ["!done"]]


def test_malformed_sentence_after_login_gets_trap(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        assert client.call("=name=x")[0][0] == "!trap"
        assert client.call("/ppp/secret/print", "bogus")[0] == ["!trap", "=message=unknown parameter bogus"]
        assert client.call("/system/identity/print") == [["!re", "=name=MikroTik"], ["!done"]]


def test_stuck_client_does_not_stall_others(router: RouterOSEmulator) -> None:
    with _client(router) as client:
        for index in range(300):
            client.call(
                "/ip/firewall/address-list/add",
                "=list=big",
                f"=address=10.1.{index // 250}.{index % 250}",
                "=comment=" + "c" * 200,
            )
    stuck = RawClient(router.port)
    stuck.login(USER, PASSWORD)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for _ in range(50):  # megabytes of replies it never reads
        stuck.send("/ip/firewall/address-list/print")
    started = time.monotonic()
    with _client(router) as other:
        for _ in range(20):
            assert other.call("/system/identity/print")[-1] == ["!done"]
    assert time.monotonic() - started < 5
    stuck.close()


def test_many_concurrent_clients(router: RouterOSEmulator) -> None:
    clients = [_client(router) for _ in range(40)]
    try:
        for index, client in enumerate(clients):
            client.send("/ppp/secret/add", f"=name=user{index}", f".tag={index}")
        ids = set()
        for index, client in enumerate(clients):
            reply = client.read()
            assert reply[0] == "!done" and reply[2] == f".tag={index}"
            ids.add(attrs(reply)["ret"])
        assert ids == {f"*{number:X}" for number in range(1, 41)}
        assert len(router.items("/ppp/secret")) == 40
    finally:
        for client in clients:
            client.close()


def test_prelogin_flood_is_cut_off(router: RouterOSEmulator) -> None:
    with RawClient(router.port) as client:
        with contextlib.suppress(OSError):  # the server may hang up while we are still sending
            for _ in range(40):
                client.send("/login", "=name=x", "=password=y")
        replies = 0
        with contextlib.suppress(PeerClosed, OSError):
            while True:
                sentence = client.read()
                replies += sentence[0] == "!done"
        assert replies <= 16
    with _client(router) as other:
        assert other.call("/system/identity/print")[-1] == ["!done"]
