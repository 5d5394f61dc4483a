"""Durations, sizes and counts as people write them in manifests, and back.

Wire units are integers: durations in nanoseconds, sizes in bytes, `-1` for unlimited.
Parsing is exact (integer arithmetic only, never floats): `0.1s` is 100_000_000 ns, and a
value that is not a whole number of nanoseconds or bytes is an error, not a rounding.
`format_duration` and `format_size` give a short form that the parsers read back unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = [
    "DURATION_UNITS",
    "RFC3339_PATTERN",
    "SIZE_UNITS",
    "UnitError",
    "format_duration",
    "format_size",
    "format_timestamp",
    "listed",
    "manifest_size",
    "parse_count",
    "parse_duration",
    "parse_size",
    "parse_timestamp",
]

INT64_MAX = 2**63 - 1


class UnitError(ValueError):
    """A value that is not a valid duration, size or count.

    `message` says what is wrong, `hint` what to write instead; `str()` joins them.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


def _describe(value: object) -> str:
    """A value that is not text or a number, named the way YAML would show it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


# --- durations -------------------------------------------------------------------------------

_NS_PER: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}

#: units people write that we do not accept, and the one they meant
_DURATION_ALIASES: dict[str, str] = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s", "S": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "H": "h",
    "day": "d", "days": "d", "D": "d",
    "week": "w", "weeks": "w", "W": "w",
    "msec": "ms", "msecs": "ms", "millis": "ms", "MS": "ms", "Ms": "ms",
    "usec": "us", "usecs": "us", "micros": "us", "US": "us",
    "nsec": "ns", "nsecs": "ns", "nanos": "ns", "NS": "ns",
}  # fmt: skip
#: the units a duration may be written in
DURATION_UNITS: tuple[str, ...] = tuple(_NS_PER)
_CALENDAR_UNITS = frozenset({"y", "yr", "year", "years", "Y", "mo", "month", "months", "M"})

_DURATION_HINT = "write a duration such as '30s', or 0"
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(value: object) -> int:
    """A manifest duration (`100ms`, `1h30m`, `1.5s`, `7d`, `0`) as integer nanoseconds.

    A number without a unit is an error (is `30` seconds or milliseconds?), except 0.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UnitError(f"{_describe(value)} is not a duration", _DURATION_HINT)
    if isinstance(value, int | float):
        if value == 0:
            return 0
        text = repr(value)
        if value < 0:
            raise UnitError(f"{text} is negative", _DURATION_HINT)
        raise _no_unit(text, value if isinstance(value, int) else None)

    text = value.strip()
    if not text:
        raise UnitError("the duration is empty", _DURATION_HINT)
    if text.startswith("-"):
        raise UnitError(f"'{text}' is negative", _DURATION_HINT)

    parts = _duration_parts(text)
    for index, (whole, frac, unit) in enumerate(parts):
        if unit:
            continue
        if len(parts) == 1:
            if not any(c != "0" for c in whole + frac):
                return 0
            raise _no_unit(text, int(whole) if whole and not frac else None)
        if index == len(parts) - 1:
            raise UnitError(
                f"'{text}' ends with a number without a unit", f"write '{text}m' or '{text}s'"
            )
        raise UnitError(f"'{text}' is not a duration", _DURATION_HINT)

    unknown = [unit for _, _, unit in parts if unit not in _NS_PER]
    if unknown:
        raise _unknown_duration_unit(text, unknown[0], parts)

    ns, remainder = _exact_ns(parts)
    if remainder:
        raise UnitError(
            f"'{text}' is not a whole number of nanoseconds",
            f"write '{format_duration(ns)}' or '{format_duration(ns + 1)}'",
        )
    if ns > INT64_MAX:
        raise UnitError(
            f"'{text}' is longer than the maximum, {INT64_MAX}ns (about 292 years)",
            "write a shorter duration",
        )
    return ns


def _duration_parts(text: str) -> list[tuple[str, str, str]]:
    """`1h30.5m` as [("1", "", "h"), ("30", "5", "m")]: whole digits, fraction, unit."""
    parts: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        assert match is not None  # the pattern matches the empty string
        whole, frac, unit = match.group(1), match.group(2) or "", match.group(3)
        if not whole and not frac:
            raise UnitError(f"'{text}' is not a duration", _DURATION_HINT)
        parts.append((whole, frac, unit.strip()))
        pos = match.end()
    return parts


def _exact_ns(parts: list[tuple[str, str, str]]) -> tuple[int, int]:
    """Whole nanoseconds and the remainder (in units of the largest fraction's scale):
    the sum of whole * unit + frac * unit / 10**len(frac), in integers."""
    numerator = 0
    denominator = 1
    for whole, frac, unit in parts:
        scale = 10 ** len(frac)
        value_scaled = int(whole or "0") * scale + int(frac or "0")
        # bring to a common denominator (powers of ten, so the larger one)
        if scale > denominator:
            numerator *= scale // denominator
            denominator = scale
        numerator += value_scaled * _NS_PER[unit] * (denominator // scale)
    return divmod(numerator, denominator)


def _no_unit(text: str, whole: int | None) -> UnitError:
    if whole is not None and whole >= 1_000_000:
        # a long bare number is most likely nanoseconds copied from the API
        hint = (
            f"if it is nanoseconds, write '{format_duration(whole)}'; "
            f"otherwise add a unit, e.g. '{text}s'"
        )
    else:
        hint = f"write '{text}s' (seconds) or '{text}ms' (milliseconds)"
    return UnitError(f"{text} has no unit", hint)


def _unknown_duration_unit(text: str, unit: str, parts: list[tuple[str, str, str]]) -> UnitError:
    message = f"unknown unit '{unit}' in '{text}'"
    if any(u in _CALENDAR_UNITS for _, _, u in parts if u not in _NS_PER):
        return UnitError(message, "years and months have no fixed length; write days, e.g. '365d'")
    fixed = []
    for whole, frac, u in parts:
        known = u if u in _NS_PER else _DURATION_ALIASES.get(u)
        if known is None:
            return UnitError(
                message,
                "units are ns, us, ms, s, m, h, d (24h) and w (7d), e.g. '90s' or '1h30m'",
            )
        fixed.append(f"{whole}.{frac}{known}" if frac else f"{whole}{known}")
    return UnitError(message, f"write '{''.join(fixed)}'")


_COMPOUND_UNITS = ("d", "h", "m", "s", "ms", "us", "ns")
_NEXT_LARGER = {"s": "m", "ms": "s", "us": "ms"}


def _compound(ns: int, units: tuple[str, ...] = _COMPOUND_UNITS) -> str:
    out = []
    for unit in units:
        count, ns = divmod(ns, _NS_PER[unit])
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def format_duration(ns: int) -> str:
    """The shortest exact form of `ns` that `parse_duration` reads back: `1h30m`, `100ms`,
    `1.5s`, `1s7ns`, `30d`, `1w`; `0` is "0"."""
    if ns == 0:
        return "0"
    if ns < 0:
        return "-" + format_duration(-ns)
    week = _NS_PER["w"]
    if ns % week == 0:
        return f"{ns // week}w"
    candidates = [_compound(ns)]
    # one unit written with decimals: 1.5s, 1m30.5s, 2.5ms
    for unit, larger in _NEXT_LARGER.items():
        size = _NS_PER[unit]
        rest = ns % _NS_PER[larger]
        if rest >= size and rest % size:
            whole, frac = divmod(rest, size)
            digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
            head = _compound(ns - rest)
            candidates.append(f"{head}{whole}.{digits}{unit}")
    return min(candidates, key=len)  # first of the shortest: the compound form on a tie


# --- sizes -----------------------------------------------------------------------------------

_BYTES_PER: dict[str, int] = {
    "B": 1,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
    "KB": 1000, "kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
}  # fmt: skip
#: the units a size may be written in
SIZE_UNITS: tuple[str, ...] = tuple(_BYTES_PER)
_AMBIGUOUS_SIZE_UNITS = {"K": "K", "k": "K", "M": "M", "G": "G", "T": "T", "P": "P"}
_CANONICAL_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "KB", "MB", "GB", "TB", "PB")
_SIZE_HINT = "write a number of bytes, a size such as '512MiB', or 'unlimited'"
_SIZE_PATTERN = re.compile(r"(\d+)(?:\.(\d+))?\s?([A-Za-z]*)")
_FORMAT_SIZE_UNITS = ("PiB", "TiB", "GiB", "MiB", "KiB")


def parse_size(value: object) -> int:
    """A manifest size (`1024`, `300B`, `512KiB`, `1GB`, `unlimited`) as integer bytes; -1 is
    unlimited. `K`, `M`, `G` alone are ambiguous and rejected."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UnitError(f"{_describe(value)} is not a size", _SIZE_HINT)
    if isinstance(value, int):
        if value < -1:
            raise UnitError(f"{value} is not a size", _SIZE_HINT)
        return _check_size(str(value), value)
    if isinstance(value, float):
        text = repr(value)
        if value.is_integer():
            raise UnitError(f"{text} is written as a decimal number", f"write {int(value)}")
        raise UnitError(
            f"{text} is not a whole number of bytes",
            f"write '{int(value // 1)}B' or '{int(value // 1) + 1}B'",
        )

    text = value.strip()
    if not text:
        raise UnitError("the size is empty", _SIZE_HINT)
    if text.lower() == "unlimited" or text == "-1":
        return -1
    match = _SIZE_PATTERN.fullmatch(text)
    if match is None:
        raise UnitError(f"'{text}' is not a size", _SIZE_HINT)
    whole, frac, unit = match.group(1), match.group(2) or "", match.group(3)
    if unit in _AMBIGUOUS_SIZE_UNITS:
        prefix = _AMBIGUOUS_SIZE_UNITS[unit]
        number = f"{whole}.{frac}" if frac else whole
        raise UnitError(
            f"'{text}' is ambiguous",
            f"write '{number}{prefix}iB' (1024-based) or '{number}{prefix}B' (1000-based)",
        )
    if unit and unit not in _BYTES_PER:
        number = f"{whole}.{frac}" if frac else whole
        same = [u for u in _CANONICAL_SIZE_UNITS if u.lower() == unit.lower()]
        hint = (
            f"write '{number}{same[0]}'"
            if same
            else "units are B, KiB, MiB, GiB, TiB (1024-based) and KB, MB, GB, TB (1000-based)"
        )
        raise UnitError(f"unknown unit '{unit}' in '{text}'", hint)
    scale = 10 ** len(frac)
    total, remainder = divmod(
        (int(whole) * scale + int(frac or "0")) * _BYTES_PER[unit or "B"], scale
    )
    if remainder:
        raise UnitError(
            f"'{text}' is not a whole number of bytes", f"write '{total}B' or '{total + 1}B'"
        )
    return _check_size(f"'{text}'", total)


def _check_size(shown: str, n: int) -> int:
    if n > INT64_MAX:
        raise UnitError(
            f"{shown} is larger than the largest size, {INT64_MAX} bytes",
            "write a smaller size, or 'unlimited'",
        )
    return n


def format_size(n: int) -> str:
    """`n` bytes in the largest binary unit that divides it exactly (`512KiB`, `1GiB`), else
    `NB`; -1 is "unlimited". `parse_size` reads every result back unchanged."""
    if n == -1:
        return "unlimited"
    if n > 0:
        for unit in _FORMAT_SIZE_UNITS:
            size = _BYTES_PER[unit]
            if n % size == 0:
                return f"{n // size}{unit}"
    return f"{n}B"


def manifest_size(n: int) -> int | str:
    """`n` bytes as an exported manifest writes it: in the largest binary unit that divides it
    exactly (`512KiB`, `1GiB`), else the plain number of bytes (`1000000`, `300`); -1 is
    "unlimited". `parse_size` reads every result back unchanged."""
    text = format_size(n)
    return n if text == f"{n}B" else text


# --- counts ----------------------------------------------------------------------------------

_COUNT_HINT = "write a whole number, or 'unlimited'"


def parse_count(value: object) -> int:
    """A manifest count (`10`, `-1`, `unlimited`) as an integer; -1 is unlimited.

    Only YAML integers and the word `unlimited` are counts: a quoted "10" is text."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UnitError(f"{_describe(value)} is not a count", _COUNT_HINT)
    if isinstance(value, float):
        raise UnitError(f"{value!r} is not a whole number", _COUNT_HINT)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "unlimited":
            return -1
        if re.fullmatch(r"-?\d+", text):
            raise UnitError(f"'{text}' is text, not a number", f"write {text} without quotes")
        raise UnitError(f"'{text}' is not a count", _COUNT_HINT)
    if value < -1:
        raise UnitError(f"{value} is not a count", _COUNT_HINT)
    if value > INT64_MAX:
        raise UnitError(
            f"{value} is larger than the largest count, {INT64_MAX}",
            "write a smaller number, or 'unlimited'",
        )
    return value


# --- timestamps (mirror/sources opt_start_time, and the server's own times) -----------------

#: an RFC 3339 time as the server writes and reads it (to nanoseconds, with a zone)
RFC3339_PATTERN = (
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_RFC3339 = re.compile(RFC3339_PATTERN)


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (up to nanoseconds, as Go writes it),
    exactly: no float on the way. `ValueError` when it is not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    date, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        whole = datetime.fromisoformat(f"{date}T{clock}{zone}")
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text!r}") from None
    # a whole-second timestamp() is an exact integer float (well within 2**53 s)
    return int(whole.timestamp()) * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


def format_timestamp(ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds when there are any: one spelling per instant."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction:09d}Z" if fraction else f"{base}Z"


def count_of(n: int, noun: str) -> str:
    """`1 stream`, `2 streams`: a number with its noun, singular or plural."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


#: names `listed` shows before it only counts the rest
SHOWN_NAMES = 5


def listed(names: Sequence[str], shown: int = SHOWN_NAMES) -> str:
    """`a, b and c`; past `shown` names, the first of them `and N more`; `none` for none."""
    names = list(names)
    if not names:
        return "none"
    if len(names) > shown:
        names = [*names[:shown], f"{len(names) - shown} more"]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
