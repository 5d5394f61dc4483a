"""The stream kind: its rows come from the vendored schema (`stream_configuration`, see
SOURCES.md); the overrides below hold what the schema does not say. Adding a field to the
stream kind is a schema update plus, when the field needs one, a row here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.fields.registry import Blocker, Minimum, Registry, from_schema, load_schema

MS = 1_000_000
S = 1_000 * MS

#: where the vendored schema comes from (also in SOURCES.md)
PROVENANCE = {
    "repository": "github.com/nats-io/jsm.go",
    "path": "schemas/jetstream/api/v1/stream_configuration.json",
    "commit": "caea3c5",
    "vendored_as": "reconciler/schema/stream_configuration.schema.json",
}


def shown(value: Any) -> str:
    """A value in a reason, as a manifest writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _changed(live: Any, desired: Any) -> bool:
    return bool(live != desired)


def _fixed(field: str, live: Any, desired: Any) -> str:
    kept = "default" if live is None else live  # unset: the server's default mode
    return f"{field} cannot change on an existing stream; keep {field}: {shown(kept)}"


def _storage(field: str, live: Any, desired: Any) -> str:
    return (f"storage cannot change on an existing stream ({live} -> {desired}); keep "
            f"storage: {live}, or declare a new stream with the new storage and move the data")


def _workqueue_either_side(live: Any, desired: Any) -> bool:
    return bool(live != desired and "workqueue" in (live, desired))


def _retention(field: str, live: Any, desired: Any) -> str:
    return (f"retention cannot change from {live} to {desired} (only limits <-> interest is "
            f"possible); keep retention: {live}")


def _mirror_set_or_changed(live: Any, desired: Any) -> bool:
    return bool(desired and desired != live)


def _mirror(field: str, live: Any, desired: Any) -> str:
    what = "added to" if not live else "changed on"
    return (f"a mirror cannot be {what} an existing stream; remove the mirror block or "
            "declare the mirror as a new stream")


def _turned_off(live: Any, desired: Any) -> bool:
    return bool(live and not desired)


def _once_on(field: str, live: Any, desired: Any) -> str:
    return f"{field} cannot be turned off once on; keep {field}: true"


FIXED = Blocker(_changed, _fixed)
ONE_WAY = Blocker(_turned_off, _once_on, one_way=True)

#: display order of the first fields; the others follow alphabetically
_SHOWN_FIRST = (
    "name", "description", "subjects", "retention", "storage", "max_msgs", "max_bytes",
    "max_age", "max_msgs_per_subject", "max_msg_size", "max_consumers", "discard",
    "discard_new_per_subject", "num_replicas", "duplicate_window",
)

OVERRIDES: Mapping[str, Mapping[str, Any]] = {
    "description": {"omit": (None, "")},
    "subjects": {"whole": True, "not_on_mirror":
                 "a mirror stores its origin's subjects: it cannot have subjects of its own"},
    "retention": {"blocker": Blocker(_workqueue_either_side, _retention)},
    "storage": {"blocker": Blocker(_changed, _storage)},
    "max_bytes": {"unit": "size"},
    "max_msg_size": {"unit": "size", "range_hint":
                     "max_msg_size is a 32-bit number: write at most 2147483647 bytes, "
                     "or 'unlimited'"},
    "max_age": {"unlimited": 0, "server_minimum": Minimum(
        100 * MS, "100ms", "write at least 100ms, or 0 for no age limit")},
    "duplicate_window": {"derived": True, "server_minimum": Minimum(
        100 * MS, "100ms",
        "write at least 100ms, or 0 for the default (2m, or max_age when shorter)")},
    "subject_delete_marker_ttl": {"default": 0, "server_minimum": Minimum(
        1 * S, "1s", "write at least 1s, or 0 for no delete markers"),
        "not_on_mirror": "a mirror cannot add delete markers"},
    "first_seq": {"default": 0, "not_on_mirror": "a mirror cannot set first_seq"},
    "mirror": {"blocker": Blocker(_mirror_set_or_changed, _mirror)},
    "sources": {"whole": True, "not_on_mirror": "a stream cannot be a mirror and have sources"},
    "allow_msg_counter": {"blocker": FIXED,
                          "not_on_mirror": "a mirror cannot be a counter stream"},
    "persist_mode": {"blocker": FIXED, "omit": (None, "", "default")},
    "allow_atomic": {"not_on_mirror": "a mirror cannot accept atomic publishes"},
    "allow_batched": {"not_on_mirror": "a mirror cannot accept batched publishes"},
    "allow_msg_schedules": {"blocker": ONE_WAY,
                            "not_on_mirror": "a mirror cannot use message schedules"},
    "sealed": {"blocker": ONE_WAY},
    "deny_delete": {"blocker": ONE_WAY},
    "deny_purge": {"blocker": ONE_WAY},
    "allow_msg_ttl": {"blocker": ONE_WAY},
}


def _with_order(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = dict(overrides)
    for rank, name in enumerate(_SHOWN_FIRST):
        out[name] = {**out.get(name, {}), "order": rank}
    return out


STREAM: Registry = from_schema(
    "stream", load_schema("stream_configuration"), _with_order(OVERRIDES)
)
