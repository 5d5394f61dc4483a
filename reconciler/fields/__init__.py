"""The field registry: one row per field of each kind's configuration (type and unit, the
server's default, what "unlimited" looks like, what the server refuses to change, display
order, the manifest rules), derived from the vendored JSON Schema plus a few overrides.
Dotted paths; `sources.*` stands for every element of the list.

The plan, the renderers and the manifest reader read these rows instead of keeping tables
of their own. Where each schema came from: SOURCES.md.
"""

from __future__ import annotations

from reconciler.fields.registry import Blocker, Field, Minimum, Registry
from reconciler.fields.stream import PROVENANCE, STREAM

__all__ = [
    "COUNTS",
    "DURATIONS",
    "EXPECTED",
    "PROVENANCE",
    "SIZES",
    "STREAM",
    "TIMESTAMPS",
    "TYPE_HINTS",
    "Blocker",
    "Field",
    "Minimum",
    "Registry",
    "not_on_mirror",
    "range_hints",
    "server_minimums",
]

#: integer nanoseconds on the wire; strings with a unit in manifests (`100ms`, `1h30m`, `7d`)
DURATIONS: frozenset[str] = STREAM.with_unit("duration")

#: integer bytes on the wire, -1 unlimited; manifests may write `512KiB`, `1GiB`, `unlimited`
SIZES: frozenset[str] = STREAM.with_unit("size")

#: plain counts, -1 unlimited; manifests may write `unlimited`
COUNTS: frozenset[str] = STREAM.with_unit("count")

#: RFC 3339 timestamps with nanoseconds; compared as written, never through a float
TIMESTAMPS: frozenset[str] = STREAM.with_unit("timestamp")

#: what a manifest must write for each kind of field (`Field.kind`), in a problem's words
EXPECTED: dict[str, str] = {
    "text": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "duration": "a duration",
    "size": "a size",
    "count": "a count",
    "timestamp": "an RFC 3339 time",
}

#: what to write instead, for each kind of field, when a manifest writes the wrong type
TYPE_HINTS: dict[str, str] = {
    "text": "write a single value",
    "integer": "write a whole number",
    "boolean": "write true or false",
    "duration": "write a duration such as '30s', or 0",
    "size": "write a number of bytes, a size such as '512MiB', or 'unlimited'",
    "count": "write a whole number, or 'unlimited'",
    "timestamp": "write a date and time with a time zone, e.g. '2024-01-31T12:00:00Z'",
}


def server_minimums(registry: Registry = STREAM) -> dict[str, Minimum]:
    """Field -> the lower bound the server enforces beyond the schema (0 still allowed)."""
    return {f.path: f.server_minimum for f in registry if f.server_minimum is not None}


def not_on_mirror(registry: Registry = STREAM) -> tuple[tuple[str, str], ...]:
    """(field, why) for each field a mirror cannot set, in the schema's order."""
    return tuple((f.path, f.not_on_mirror) for f in registry if f.not_on_mirror is not None)


def range_hints(registry: Registry = STREAM) -> dict[str, str]:
    """Field -> what to write when a value is above the schema's maximum."""
    return {f.path: f.range_hint for f in registry if f.range_hint is not None}
