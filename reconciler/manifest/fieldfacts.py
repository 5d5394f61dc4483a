"""Facts about single fields that the manifest checks use: limits, minimums, the fields a
mirror may not set, and how a wrong value's type or range is explained.

Kept together in one module so that they can be read from the field registry
(`reconciler.fields`) in one place when it holds them."""

from __future__ import annotations

from typing import Final

MAX_NAME_LEN: Final = 255  # JSMaxNameLen
MAX_METADATA_BYTES: Final = 128 * 1024  # JSMaxMetadataLen
MAX_DESCRIPTION_LEN: Final = 4 * 1024  # JSMaxDescriptionLen, in bytes
MAX_REPLICAS: Final = 5  # StreamMaxReplicas
MIN_MAX_AGE: Final = 100_000_000  # 100ms
MIN_DUPLICATE_WINDOW: Final = 100_000_000  # 100ms
MIN_DELETE_MARKER_TTL: Final = 1_000_000_000  # 1s

#: (field, why a mirror cannot set it)
NOT_ON_MIRROR: Final = (
    ("subjects", "a mirror stores its origin's subjects: it cannot have subjects of its own"),
    ("sources", "a stream cannot be a mirror and have sources"),
    ("first_seq", "a mirror cannot set first_seq"),
    ("allow_msg_counter", "a mirror cannot be a counter stream"),
    ("allow_atomic", "a mirror cannot accept atomic publishes"),
    ("allow_batched", "a mirror cannot accept batched publishes"),
    ("allow_msg_schedules", "a mirror cannot use message schedules"),
    ("subject_delete_marker_ttl", "a mirror cannot add delete markers"),
)

#: what a value of each field kind looks like, in "expected ..., got ..."
EXPECTED: Final = {
    "text": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "duration": "a duration",
    "size": "a size",
    "count": "a count",
    "timestamp": "an RFC 3339 time",
}
#: what to write instead of a value of the wrong type, by field kind
TYPE_HINTS: Final = {
    "text": "write a single value",
    "integer": "write a whole number",
    "boolean": "write true or false",
    "duration": "write a duration such as '30s', or 0",
    "size": "write a number of bytes, a size such as '512MiB', or 'unlimited'",
    "count": "write a whole number, or 'unlimited'",
    "timestamp": "write a date and time with a time zone, e.g. '2024-01-31T12:00:00Z'",
}
#: what to write instead of a value above the schema's maximum, by field path
RANGE_HINTS: Final = {
    "max_msg_size": "max_msg_size is a 32-bit number: write at most 2147483647 bytes, "
    "or 'unlimited'",
}
