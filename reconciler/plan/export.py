"""A live configuration as a manifest document: what `export` writes, so that `plan` on it
shows no change.

The canonical form decides what is written: a field is left out when leaving it out changes
nothing the server stores (`canonical` of the document without it is the same) and it is
either at the server's own default or computed from other fields (`subjects` equal to the
name, the default `duplicate_window`). A flag another setting forces on is written
(`allow_msg_ttl` next to `subject_delete_marker_ttl`, `deny_delete` of a sealed stream), so
that removing that setting later leaves the stream as it was. The server's `_nats.*` metadata
is dropped, as the canonical form drops it. Values are written in the manifest's units, with
nothing rounded: durations as `1d1h1m1s`, sizes in the largest binary unit that divides
them (`1GiB`) or else as bytes, counts as numbers, `unlimited` for -1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.fields import STREAM
from reconciler.model import Config
from reconciler.plan.canonical import KNOWN_FIELDS, canonical
from reconciler.plan.diff import field_order
from reconciler.units import format_duration, manifest_size

#: each field's place in the schema, for the order of nested keys (`mirror.name` first)
_POSITION = {row.path: index for index, row in enumerate(STREAM)}


def manifest_document(config: Config) -> dict[str, Any]:
    """The manifest of a stream whose live configuration (the API's JSON) is `config`: its
    fields that differ from what the server would store without them, in display order and
    in manifest units. Reading it back gives a configuration whose canonical form is
    `canonical(config)`."""
    current = dict(canonical(config))
    base = dict(canonical({"name": current["name"]}))
    kept = dict(current)
    for key in sorted(current, key=field_order):
        if key != "name" and _can_leave_out(key, kept, current, base):
            del kept[key]
    return {key: _written(key, kept[key]) for key in sorted(kept, key=field_order)}


def unknown_fields(config: Config) -> tuple[str, ...]:
    """The fields of a live configuration this version does not know (a newer server's):
    they cannot be written to a manifest, and `apply` would not send them."""
    return tuple(sorted(set(config) - KNOWN_FIELDS))


def _can_leave_out(
    key: str, kept: Mapping[str, Any], current: Mapping[str, Any], base: Mapping[str, Any]
) -> bool:
    row = STREAM.get(key)
    default_or_derived = current[key] == base.get(key) or (
        row is not None and row.canon == "derived"
    )
    return default_or_derived and dict(canonical({k: v for k, v in kept.items() if k != key})) \
        == current


def _written(path: str, value: Any) -> Any:
    """A wire value as a manifest writes it, by the unit of its field in the registry
    (`path` is dotted, `*` for a list's elements)."""
    if isinstance(value, Mapping):
        # a key the manifest must write, which the canonical form dropped as empty
        row = STREAM.get(path.removesuffix(".*"))
        value = {**{k: "" for k in row.required_keys if k not in value}, **value} if row else value
        keys = sorted(value, key=lambda k: (_POSITION.get(f"{path}.{k}", len(_POSITION)), k))
        return {k: _written(f"{path}.{k}", value[k]) for k in keys}
    if isinstance(value, list):
        return [_written(f"{path}.*", v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    row = STREAM.get(path)
    unit = row.unit if row is not None else None
    if unit == "duration":
        return format_duration(value)
    if unit == "size":
        return manifest_size(value)
    if unit == "count" and value == -1:
        return "unlimited"
    return value
