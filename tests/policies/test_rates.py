"""Rates: parse and print bits per second; validate rate limits and bursts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.rates import MAX_RATE, Burst, RateError, RateLimit, format_rate, parse_rate


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("10M", 10_000_000),
        ("10m", 10_000_000),
        ("512k", 512_000),
        ("512K", 512_000),
        ("1G", 1_000_000_000),
        ("1.5M", 1_500_000),  # 1.5 * 10^6
        ("0.5k", 500),
        ("2.048M", 2_048_000),
        ("64000", 64_000),
        ("1", 1),
        (" 20M ", 20_000_000),
        ("100G", 100_000_000_000),
        ("100.000G", 100_000_000_000),
        ("007M", 7_000_000),
    ],
)
def test_parse_rate(text: str, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected a number"),
        ("0", "above zero"),
        ("0M", "above zero"),
        ("-1M", "expected a number"),
        ("+1M", "expected a number"),
        ("10Mbps", "expected a number"),
        ("10 M", "expected a number"),
        ("10T", "expected a number"),
        ("1e6", "expected a number"),
        ("M", "expected a number"),
        ("1.5", "not a whole number"),
        ("0.5", "not a whole number"),
        ("1.0000005M", "not a whole number"),  # 1,000,000.5 bps
        ("100.000000001G", "above the maximum"),  # 100 Gbit/s + 1 bps
        ("101G", "above the maximum"),
        ("99999999999999999999", "above the maximum"),
    ],
)
def test_parse_rate_refuses(text: str, reason: str) -> None:
    with pytest.raises(RateError, match=reason) as info:
        parse_rate(text)
    assert repr(text) in str(info.value)  # the message names the input


@pytest.mark.parametrize(
    ("bps", "text"),
    [
        (10_000_000, "10M"),
        (512_000, "512k"),
        (1_500_000, "1500k"),
        (64_123, "64123"),
        (1_000_000_000, "1G"),
        (2_500_000_000, "2500M"),
        (100_000_000_000, "100G"),
        (1, "1"),
    ],
)
def test_format_rate(bps: int, text: str) -> None:
    assert format_rate(bps) == text


@pytest.mark.parametrize("bps", [0, -1, MAX_RATE + 1])
def test_format_rate_refuses_out_of_range(bps: int) -> None:
    with pytest.raises(RateError, match="out of range"):
        format_rate(bps)


@given(st.integers(min_value=1, max_value=MAX_RATE))
def test_format_then_parse_round_trips(bps: int) -> None:
    text = format_rate(bps)
    assert parse_rate(text) == bps
    assert len(text) <= len(str(bps))


def _burst(**over: int) -> Burst:
    values = {
        "download": 20_000_000,
        "upload": 4_000_000,
        "threshold_download": 8_000_000,
        "threshold_upload": 1_500_000,
        "time_s": 16,
    }
    values.update(over)
    return Burst(**values)


def test_rate_limit_with_burst() -> None:
    limit = RateLimit(download=10_000_000, upload=2_000_000, burst=_burst())
    assert limit.burst is not None and limit.burst.time_s == 16
    assert str(limit) == "10M/2M (down/up) burst 20M/4M above 8M/1500k for 16s"
    assert str(RateLimit(1_000_000, 512_000)) == "1M/512k (down/up)"


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"download": 10_000_000}, "burst download rate 10M must be above the download rate 10M"),
        ({"upload": 1_000_000}, "burst upload rate 1M must be above the upload rate 2M"),
        ({"threshold_download": 12_000_000}, "burst download threshold 12M must not exceed"),
        ({"threshold_upload": 2_000_001}, "burst upload threshold 2000001 must not exceed"),
        ({"time_s": 0}, "burst time 0s is out of range"),
        ({"time_s": 3601}, "burst time 3601s is out of range"),
        ({"threshold_download": 0}, "burst download threshold 0 bps is out of range"),
    ],
)
def test_rate_limit_refuses_bad_burst(over: dict[str, int], reason: str) -> None:
    with pytest.raises(RateError, match=reason):
        RateLimit(download=10_000_000, upload=2_000_000, burst=_burst(**over))


def test_rate_limit_refuses_bad_rates() -> None:
    with pytest.raises(RateError, match="download rate 0 bps is out of range"):
        RateLimit(0, 1_000)
    with pytest.raises(RateError, match="upload rate"):
        RateLimit(1_000, MAX_RATE + 1)
    with pytest.raises(TypeError):
        RateLimit(1.5e6, 1_000)  # type: ignore[arg-type]


def test_burst_boundaries_are_inclusive() -> None:
    # threshold == base rate and 1 s / 3600 s windows are allowed
    RateLimit(10_000_000, 2_000_000, _burst(threshold_download=10_000_000, threshold_upload=2_000_000, time_s=1))
    RateLimit(10_000_000, 2_000_000, _burst(time_s=3600))
