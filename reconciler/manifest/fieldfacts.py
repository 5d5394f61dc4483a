"""Facts about single fields that the manifest checks use: limits, minimums, the fields a
mirror may not set, and how a wrong value's type or range is explained. Read from the field
registry (`reconciler.fields`) where it holds them; the rest are the server's constants."""

from __future__ import annotations

from typing import Final

from reconciler import fields
from reconciler.fields import STREAM


def _given(value: int | None) -> int:
    assert value is not None
    return value


MAX_NAME_LEN: Final = 255  # JSMaxNameLen
MAX_METADATA_BYTES: Final = 128 * 1024  # JSMaxMetadataLen
MAX_DESCRIPTION_LEN: Final = _given(STREAM["description"].max_length)  # in bytes
MAX_REPLICAS: Final = _given(STREAM["num_replicas"].maximum)  # StreamMaxReplicas

#: field -> the lower bound the server enforces beyond the schema (0 stays allowed)
MINIMUMS: Final = fields.server_minimums()
#: (field, why a mirror cannot set it)
NOT_ON_MIRROR: Final = fields.not_on_mirror()
#: what a value of each field kind looks like, in "expected ..., got ..."
EXPECTED: Final = fields.EXPECTED
#: what to write instead of a value of the wrong type, by field kind
TYPE_HINTS: Final = fields.TYPE_HINTS
#: what to write instead of a value above the schema's maximum, by field path
RANGE_HINTS: Final = fields.range_hints()
