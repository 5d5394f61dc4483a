"""Units in manifests: durations, sizes and counts, parsed exactly and shown back."""

from __future__ import annotations

import random

import pytest

from reconciler.units import (
    UnitError,
    format_duration,
    format_size,
    format_timestamp,
    manifest_size,
    parse_count,
    parse_duration,
    parse_size,
    parse_timestamp,
)

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000
M = 60 * S
H = 60 * M
D = 24 * H
W = 7 * D
INT64_MAX = 2**63 - 1


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        ("0", 0),
        ("0s", 0),
        ("0.0", 0),
        (0.0, 0),
        ("1ns", 1),
        ("1us", US),
        ("1µs", US),  # micro sign
        ("1μs", US),  # Greek mu
        ("100ms", 100 * MS),
        ("90s", 90 * S),
        ("2m", 2 * M),
        ("1h30m", H + 30 * M),
        ("7d", 7 * D),
        ("1w", W),
        ("1w2d3h4m5s6ms7us8ns", W + 2 * D + 3 * H + 4 * M + 5 * S + 6 * MS + 7 * US + 8),
        ("1.5s", 1_500_000_000),
        ("0.1s", 100_000_000),
        ("0.3s", 300_000_000),
        (".5s", 500_000_000),
        ("1m30.5s", 90 * S + 500 * MS),
        ("1.000000007s", 1_000_000_007),
        ("2.5h", 2 * H + 30 * M),
        ("0.5d", 12 * H),
        ("1s1s", 2 * S),  # Go accepts repeated units: so do we
        (" 30s ", 30 * S),
        ("9223372036854775807ns", INT64_MAX),
    ],
)
def test_parse_duration(text: object, expected: int) -> None:
    assert parse_duration(text) == expected
    assert isinstance(parse_duration(text), int)


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        (30, "30 has no unit", "write '30s' (seconds) or '30ms' (milliseconds)"),
        ("30", "30 has no unit", "write '30s' (seconds) or '30ms' (milliseconds)"),
        (1.5, "1.5 has no unit", "write '1.5s' (seconds) or '1.5ms' (milliseconds)"),
        ("1.5", "1.5 has no unit", "write '1.5s' (seconds) or '1.5ms' (milliseconds)"),
        (
            86_400_000_000_000,
            "86400000000000 has no unit",
            "if it is nanoseconds, write '1d'; otherwise add a unit, e.g. '86400000000000s'",
        ),
        ("1h30", "'1h30' ends with a number without a unit", "write '1h30m' or '1h30s'"),
        ("", "the duration is empty", "write a duration such as '30s', or 0"),
        ("-5s", "'-5s' is negative", "write a duration such as '30s', or 0"),
        (-5, "-5 is negative", "write a duration such as '30s', or 0"),
        (True, "true is not a duration", "write a duration such as '30s', or 0"),
        ([1], "a list is not a duration", "write a duration such as '30s', or 0"),
        ("30sec", "unknown unit 'sec' in '30sec'", "write '30s'"),
        ("1hour30minutes", "unknown unit 'hour' in '1hour30minutes'", "write '1h30m'"),
        ("5S", "unknown unit 'S' in '5S'", "write '5s'"),
        (
            "30x",
            "unknown unit 'x' in '30x'",
            "units are ns, us, ms, s, m, h, d (24h) and w (7d), e.g. '90s' or '1h30m'",
        ),
        (
            "1y",
            "unknown unit 'y' in '1y'",
            "years and months have no fixed length; write days, e.g. '365d'",
        ),
        ("1.5.5s", "'1.5.5s' is not a duration", "write a duration such as '30s', or 0"),
        ("abc", "'abc' is not a duration", "write a duration such as '30s', or 0"),
        ("s", "'s' is not a duration", "write a duration such as '30s', or 0"),
        (
            "1.0000000005s",
            "'1.0000000005s' is not a whole number of nanoseconds",
            "write '1s' or '1s1ns'",
        ),
        (
            "110000d",
            "'110000d' is longer than the maximum, 9223372036854775807ns (about 292 years)",
            "write a shorter duration",
        ),
    ],
)
def test_parse_duration_errors(value: object, message: str, hint: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_duration(value)
    assert (info.value.message, info.value.hint) == (message, hint)
    assert str(info.value) == f"{message}; {hint}"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0"),
        (1, "1ns"),
        (100 * MS, "100ms"),
        (1_500_000_000, "1.5s"),
        (2_500_000, "2.5ms"),
        (90 * S, "1m30s"),
        (H + 30 * M, "1h30m"),
        (90 * S + 500 * MS, "1m30.5s"),
        (1_000_000_007, "1s7ns"),
        (D, "1d"),
        (7 * D, "1w"),
        (14 * D, "2w"),
        (30 * D, "30d"),
        (D + 12 * H, "1d12h"),
        (2 * M, "2m"),
        (INT64_MAX, "106751d23h47m16.854775807s"),
        (-5 * S, "-5s"),
    ],
)
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def _durations() -> list[int]:
    rng = random.Random(20240101)
    units = [NS, US, MS, S, M, H, D, W]
    values = [0, 1, 999, 1000, 1001, INT64_MAX, INT64_MAX - 1]
    values += [u * k for u in units for k in (1, 2, 7, 10, 59, 60, 61, 100, 1000, 1001)]
    values += [rng.randrange(0, INT64_MAX) for _ in range(2000)]
    values += [rng.randrange(0, 10**12) for _ in range(2000)]
    values += [sum(rng.randrange(0, 3) * u for u in units) for _ in range(2000)]
    return [v for v in values if v <= INT64_MAX]


def test_duration_round_trip() -> None:
    for ns in _durations():
        text = format_duration(ns)
        assert parse_duration(text) == ns, (ns, text)


def test_format_duration_uses_no_finer_unit_than_needed() -> None:
    for ns in _durations():
        text = format_duration(ns)
        if ns % MS == 0:
            assert "ns" not in text and "us" not in text, (ns, text)
        if ns % S == 0:
            assert "." not in text and "ms" not in text, (ns, text)


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (300, 300),
        (-1, -1),
        ("-1", -1),
        ("unlimited", -1),
        ("Unlimited", -1),
        ("1024", 1024),
        ("300B", 300),
        ("1KiB", 1024),
        ("512KiB", 512 * 1024),
        ("1MiB", 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("1PiB", 1024**5),
        ("1Ki", 1024),
        ("64Mi", 64 * 1024**2),
        ("1KB", 1000),
        ("1kB", 1000),
        ("5MB", 5 * 1000**2),
        ("1GB", 1000**3),
        ("1TB", 1000**4),
        ("1.5KiB", 1536),
        ("0.5MiB", 512 * 1024),
        ("1.5KB", 1500),
        ("512 MiB", 512 * 1024**2),
        (INT64_MAX, INT64_MAX),
    ],
)
def test_parse_size(value: object, expected: int) -> None:
    assert parse_size(value) == expected


_SIZE_HINT = "write a number of bytes, a size such as '512MiB', or 'unlimited'"


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        ("512M", "'512M' is ambiguous", "write '512MiB' (1024-based) or '512MB' (1000-based)"),
        ("1K", "'1K' is ambiguous", "write '1KiB' (1024-based) or '1KB' (1000-based)"),
        ("1k", "'1k' is ambiguous", "write '1KiB' (1024-based) or '1KB' (1000-based)"),
        ("2G", "'2G' is ambiguous", "write '2GiB' (1024-based) or '2GB' (1000-based)"),
        ("1T", "'1T' is ambiguous", "write '1TiB' (1024-based) or '1TB' (1000-based)"),
        ("0.1KiB", "'0.1KiB' is not a whole number of bytes", "write '102B' or '103B'"),
        ("1.5B", "'1.5B' is not a whole number of bytes", "write '1B' or '2B'"),
        ("1.5", "'1.5' is not a whole number of bytes", "write '1B' or '2B'"),
        (1.5, "1.5 is not a whole number of bytes", "write '1B' or '2B'"),
        (1024.0, "1024.0 is written as a decimal number", "write 1024"),
        ("512mib", "unknown unit 'mib' in '512mib'", "write '512MiB'"),
        ("300b", "unknown unit 'b' in '300b'", "write '300B'"),
        (
            "3 bytes",
            "unknown unit 'bytes' in '3 bytes'",
            "units are B, KiB, MiB, GiB, TiB (1024-based) and KB, MB, GB, TB (1000-based)",
        ),
        ("-2", "'-2' is not a size", _SIZE_HINT),
        (-2, "-2 is not a size", _SIZE_HINT),
        ("", "the size is empty", _SIZE_HINT),
        ("lots", "'lots' is not a size", _SIZE_HINT),
        (True, "true is not a size", _SIZE_HINT),
        ({"a": 1}, "a mapping is not a size", _SIZE_HINT),
        (
            "9000PiB",
            "'9000PiB' is larger than the largest size, 9223372036854775807 bytes",
            "write a smaller size, or 'unlimited'",
        ),
    ],
)
def test_parse_size_errors(value: object, message: str, hint: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_size(value)
    assert (info.value.message, info.value.hint) == (message, hint)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (-1, "unlimited"),
        (0, "0B"),
        (1, "1B"),
        (300, "300B"),
        (1000, "1000B"),
        (1024, "1KiB"),
        (1536, "1536B"),
        (512 * 1024, "512KiB"),
        (1024**2, "1MiB"),
        (3 * 1024**3, "3GiB"),
        (1024**4, "1TiB"),
        (2 * 1024**5, "2PiB"),
        (2**31 - 1, "2147483647B"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_size_round_trip() -> None:
    rng = random.Random(7)
    values = [-1, 0, 1, 1023, 1024, 1025, INT64_MAX]
    values += [rng.randrange(0, INT64_MAX) for _ in range(1000)]
    values += [rng.randrange(1, 1 << 20) * 1024 ** rng.randrange(1, 4) for _ in range(1000)]
    for n in values:
        assert parse_size(format_size(n)) == n, n


@pytest.mark.parametrize(
    ("n", "written"),
    [(-1, "unlimited"), (0, 0), (300, 300), (1_000_000, 1_000_000), (1024, "1KiB"),
     (1 << 30, "1GiB"), (1536, 1536), (2**31 - 1, 2**31 - 1)],
)
def test_manifest_size(n: int, written: int | str) -> None:
    """As export writes a size: a binary unit when one divides it, else plain bytes."""
    assert manifest_size(n) == written
    assert parse_size(written) == n


# --- counts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (10, 10), (-1, -1), ("unlimited", -1), ("UNLIMITED", -1), (INT64_MAX, INT64_MAX)],
)
def test_parse_count(value: object, expected: int) -> None:
    assert parse_count(value) == expected


_COUNT_HINT = "write a whole number, or 'unlimited'"


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        ("10", "'10' is text, not a number", "write 10 without quotes"),
        ("-1", "'-1' is text, not a number", "write -1 without quotes"),
        (-2, "-2 is not a count", _COUNT_HINT),
        (1.5, "1.5 is not a whole number", _COUNT_HINT),
        (True, "true is not a count", _COUNT_HINT),
        ("many", "'many' is not a count", _COUNT_HINT),
        (None, "nothing is not a count", _COUNT_HINT),
        (
            INT64_MAX + 1,
            "9223372036854775808 is larger than the largest count, 9223372036854775807",
            "write a smaller number, or 'unlimited'",
        ),
    ],
)
def test_parse_count_errors(value: object, message: str, hint: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_count(value)
    assert (info.value.message, info.value.hint) == (message, hint)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:01.000000007Z", 1_000_000_007),
        ("1970-01-01T01:00:00+01:00", 0),
        ("2026-11-27t12:59:23.7z", 1_795_784_363_700_000_000),
    ],
)
def test_timestamps_are_exact_and_round_trip(text: str, ns: int) -> None:
    assert parse_timestamp(text) == ns
    assert parse_timestamp(format_timestamp(ns)) == ns


@pytest.mark.parametrize(
    "text", ["2026-11-27T12:59:23", "2026-11-27T12:59:23.1234567890Z", "2026-02-30T00:00:00Z",
             "2026-11-27T12:59:23+25:00", "2026-11-27 12:59:23Z"]
)
def test_what_is_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_timestamp(text)
