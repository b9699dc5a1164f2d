"""Pure parts: length prefixes, the query stack machine, value parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.routeros.errors import Trap
from lab.routeros.query import matches, parse_query
from lab.routeros.server import legacy_response
from lab.routeros.values import duration_text, parse_duration, parse_rate_limit, parse_rate_pair
from lab.routeros.wire import ProtocolViolation, decode_length, encode_length, prefix_size


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (0x7F, b"\x7f"),
        (0x80, b"\x80\x80"),
        (256, b"\x81\x00"),
        (0x3FFF, b"\xbf\xff"),
        (0x4000, b"\xc0\x40\x00"),
        (0x1FFFFF, b"\xdf\xff\xff"),
        (0x200000, b"\xe0\x20\x00\x00"),
        (0xFFFFFFF, b"\xef\xff\xff\xff"),
        (0x10000000, b"\xf0\x10\x00\x00\x00"),
    ],
)
def test_length_prefix_forms(length: int, encoded: bytes) -> None:
    assert encode_length(length) == encoded
    assert prefix_size(encoded[0]) == len(encoded)
    assert decode_length(encoded) == length


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_length_round_trip(length: int) -> None:
    assert decode_length(encode_length(length)) == length


@pytest.mark.parametrize("byte", [0xF8, 0xF9, 0xFE, 0xFF])
def test_control_bytes_are_fatal(byte: int) -> None:
    with pytest.raises(ProtocolViolation):
        prefix_size(byte)


def _compare(_name: str, left: str, right: str) -> int:
    return (left > right) - (left < right)


ITEMS = [
    {"name": "a", "type": "ether", "comment": "x"},
    {"name": "b", "type": "vlan"},
    {"name": "c", "type": "bridge", "comment": ""},
]


def _select(*words: str) -> list[str]:
    query = parse_query(words)
    return [item["name"] for item in ITEMS if matches(query, item, _compare)]


def test_query_has_and_lacks() -> None:
    assert _select("?comment") == ["a", "c"]
    assert _select("?-comment") == ["b"]


def test_query_both_equality_forms() -> None:
    assert _select("?=name=b") == ["b"]
    assert _select("?name=b") == ["b"]


def test_query_or_and_negation() -> None:
    assert _select("?type=ether", "?type=vlan", "?#|") == ["a", "b"]
    assert _select("?=name=b", "?#!") == ["a", "c"]
    assert _select("?>comment=") == ["a"]


def test_query_implicit_and_and_one_operand_or() -> None:
    assert _select("?type=ether", "?name=b") == []
    # The stack is an infinite supply of true: a single operand OR'd with it is true.
    assert _select("?type=vlan", "?#|") == ["a", "b", "c"]


def test_query_in_list_as_librouteros_sends_it() -> None:
    assert _select("?=name=a", "?=name=b", "?=name=c", "?#|", "?#|") == ["a", "b", "c"]
    assert _select("?=name=a", "?=name=x", "?=name=c", "?#|", "?#|") == ["a", "c"]


def test_query_stack_indexes() -> None:
    # Push copies of stack values by index; an index at the end replaces the stack.
    assert _select("?type=ether", "?type=vlan", "?#1") == ["a"]
    assert _select("?type=ether", "?type=vlan", "?#0") == ["b"]
    # A run of digits is one index: "01" copies index 1 (the ether test) and ORs it with the vlan test,
    # leaving the original ether result below it.
    assert _select("?type=ether", "?type=vlan", "?#01|") == ["a"]
    # Copy the top, negate it and OR: always true.
    assert _select("?type=ether", "?#0!|") == ["a", "b", "c"]
    # "." after an operator duplicates the top: ether, not(ether), dup -> any false remains for all.
    assert _select("?type=ether", "?#!.") == ["b", "c"]


def test_legacy_login_vectors() -> None:
    assert legacy_response(b"tset", "098f6bcd4621d373cade4e832627b4f6") == "00119ce7e093e33497053e73f37a5d3e15"
    assert legacy_response(b"passTest", "abc123") == "0021277bff9ac7caf06aa608e46616d47f"


def test_rate_limit_router_view_and_defaults() -> None:
    limit = parse_rate_limit("rate-limit", "64k/128M")
    assert (limit.rx, limit.tx) == (64_000, 128_000_000)
    same = parse_rate_limit("rate-limit", "10M")
    assert (same.rx, same.tx) == (10_000_000, 10_000_000)
    burst = parse_rate_limit("rate-limit", "64k/64k 256k/256k 128k/128k 10/10")
    assert (burst.burst_rx, burst.threshold_tx, burst.burst_time_rx) == (256_000, 128_000, 10)
    full = parse_rate_limit("rate-limit", "1M/2M 2M/4M 1M/2M 8/8 5 512k/1M")
    assert (full.priority, full.min_rx, full.min_tx) == (5, 512_000, 1_000_000)


@pytest.mark.parametrize("bad", ["", "fast", "5X/1M", "1M/2M 3M/4M 1M/1M 8 9", "1/2/3", "1M 2M 3M 4s 1 1M extra"])
def test_rate_limit_rejects_bad_syntax(bad: str) -> None:
    with pytest.raises(Trap):
        parse_rate_limit("rate-limit", bad)


def test_rates_are_exact_integers() -> None:
    assert parse_rate_pair("max-limit", "1.5M/512k") == (1_500_000, 512_000)
    assert parse_rate_pair("max-limit", "1G") == (1_000_000_000, 1_000_000_000)


def test_durations() -> None:
    assert parse_duration("t", "1w2d3h4m5s") == 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5
    assert parse_duration("t", "1d02:15:30") == 86400 + 2 * 3600 + 15 * 60 + 30
    assert parse_duration("t", "90") == 90
    assert duration_text(0) == "0s"
    assert duration_text(4 * 3600 + 20 * 60 + 11) == "4h20m11s"
    assert duration_text(9 * 86400 + 3 * 3600 + 4 * 60 + 5) == "1w2d3h4m5s"
