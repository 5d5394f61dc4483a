"""The canonical form: a configuration as the server stores it (its defaults filled in, its
own `_nats.*` metadata and our ownership keys dropped, omitted booleans false, durations
integer nanoseconds), so that two configurations the server treats alike compare equal.
Each field's treatment comes from its row in the registry (`Field.canon`); the fields whose
value depends on others are computed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from reconciler.fields import STREAM, Field
from reconciler.fields.stream_config import StreamConfig
from reconciler.model import Config, LiveStream, StreamSpec
from reconciler.plan.ownership import PREFIX as OWNERSHIP_PREFIX
from reconciler.units import format_timestamp, parse_timestamp

DEFAULT_DUPLICATE_WINDOW_NS = 120 * 1_000_000_000
"""nats-server's StreamDefaultDuplicatesWindow (2 minutes)."""

SERVER_METADATA_PREFIX = "_nats."

#: every field this version knows; anything else in a live config is ignored
KNOWN_FIELDS: frozenset[str] = STREAM.names()

BOOLEANS: tuple[str, ...] = tuple(f.path for f in STREAM.top() if f.canon == "flag")

_BY_CANON: dict[str, tuple[Field, ...]] = {
    how: tuple(f for f in STREAM.top() if f.canon == how)
    for how in ("flag", "unlimited", "omit", "nested", "default")
}
_TIMESTAMP_NAMES = frozenset(path.rsplit(".", 1)[-1] for path in STREAM.with_unit("timestamp"))


def canonical(config: Config) -> StreamConfig:
    """The configuration as the server would store it, in a form two equal configs share."""
    c = _fill(config)
    _subjects_and_window(c)
    _forced(c)
    _metadata(c)
    _nested(c)
    return cast(StreamConfig, c)


_FLAG, _UNLIMITED, _DEFAULT, _OMIT, _AS_IS = range(5)
#: how each known top-level field is read alone (one lookup per field of a config)
_HOW: dict[str, int] = {
    f.path: {"flag": _FLAG, "unlimited": _UNLIMITED, "default": _DEFAULT,
             "omit": _OMIT}.get(f.canon, _AS_IS)
    for f in STREAM.top()
}
_OMITTED: dict[str, tuple[Any, ...]] = {row.path: row.omit for row in _BY_CANON["omit"]}
#: what a field read alone is when the config leaves it out, in the registry's order
_UNSET: dict[str, Any] = {
    **{row.path: row.default for row in _BY_CANON["default"]},
    **{row.path: -1 for row in _BY_CANON["unlimited"]},
    **{row.path: False for row in _BY_CANON["flag"]},
}


def _fill(config: Config) -> dict[str, Any]:
    """The known fields, each read alone: defaults, "unlimited" spelled one way, booleans,
    unset values dropped; then the fields left out, at their default."""
    c: dict[str, Any] = {}
    how = _HOW
    for k, v in config.items():
        kind = how.get(k)
        if kind is None:
            continue
        if kind == _AS_IS:
            c[k] = v
        elif kind == _FLAG:
            c[k] = bool(v)
        elif kind == _UNLIMITED:
            c[k] = -1 if v is None or v == 0 or v < -1 else v
        elif kind == _DEFAULT:
            c[k] = v or _UNSET[k]
        elif v not in _OMITTED[k]:
            c[k] = v
    for k, v in _UNSET.items():
        if k not in c:
            c[k] = v
    return c


def _subjects_and_window(c: dict[str, Any]) -> None:
    """Subjects (a set; the name when none, unless mirrored or sourced) and the duplicate
    window (2m, or max_age when shorter; none on a mirror or sourced stream)."""
    copies = bool(c.get("mirror")) or bool(c.get("sources"))
    subjects = c.get("subjects") or []
    if not subjects and not copies:
        subjects = [c.get("name", "")]
    # a set to the server: order carries no meaning (a list of one is kept as it is)
    c["subjects"] = subjects if type(subjects) is list and len(subjects) < 2 else sorted(subjects)
    if not c.get("duplicate_window"):
        max_age = c["max_age"]
        c["duplicate_window"] = (
            0 if copies
            else max_age if 0 < max_age < DEFAULT_DUPLICATE_WINDOW_NS
            else DEFAULT_DUPLICATE_WINDOW_NS
        )


def _forced(c: dict[str, Any]) -> None:
    """Settings the server forces when another one is on."""
    if c["subject_delete_marker_ttl"] > 0:
        c["allow_msg_ttl"] = True
        c["allow_rollup_hdrs"] = True
        c["deny_purge"] = False
    if c["allow_msg_schedules"]:
        c["allow_rollup_hdrs"] = True
    if c["sealed"]:
        c["max_age"] = 0
        c["discard"] = "new"
        c["deny_delete"] = True
        c["deny_purge"] = True
        c["allow_rollup_hdrs"] = False
    republish = c.get("republish")
    if isinstance(republish, Mapping) and republish.get("dest") and not republish.get("src"):
        c["republish"] = {**republish, "src": ">"}  # the server's default, refused if left out


#: metadata keys that are not the stream's own: the server's, and our ownership keys
_NOT_OWN = (SERVER_METADATA_PREFIX, OWNERSHIP_PREFIX)


def _metadata(c: dict[str, Any], drop: str | tuple[str, ...] = _NOT_OWN) -> None:
    """The metadata without the keys starting with `drop`; none when nothing is left."""
    metadata = {k: v for k, v in (c.get("metadata") or {}).items() if not k.startswith(drop)}
    if metadata:
        c["metadata"] = metadata
    else:
        c.pop("metadata", None)


def _nested(c: dict[str, Any]) -> None:
    """Objects and sources: zero values inside dropped, the field dropped when empty."""
    for row in _BY_CANON["nested"]:
        if row.path not in c:
            continue
        value = _prune(c[row.path])
        if value:
            c[row.path] = value
        else:
            del c[row.path]
    if "sources" not in c:
        return
    sources = [s for s in (_prune(s) for s in c["sources"] or []) if s]
    if sources:
        c["sources"] = sources
    else:
        del c["sources"]


def _prune(value: Any) -> Any:
    """Drop zero values inside nested objects (the server omits them); normalise timestamps."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            v = _prune(v)
            if k in _TIMESTAMP_NAMES and isinstance(v, str):
                v = normalise_timestamp(v)
            if v not in (None, "", 0, False, [], {}):
                out[k] = v
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def same_as_read(a: Config, b: Config) -> bool:
    """Whether two configurations as the server sent them are the same but for its own
    `_nats.*` metadata (STREAM.INFO adds `_nats.ver` and `_nats.level`, which STREAM.LIST
    leaves out). Cheaper than comparing canonical forms, and it implies they are equal."""
    return a == b or _without_server_metadata(a) == _without_server_metadata(b)


def _without_server_metadata(config: Config) -> dict[str, Any]:
    out = dict(config)
    _metadata(out, SERVER_METADATA_PREFIX)
    return out


def normalise_timestamp(text: str) -> str:
    """One spelling per instant, so that two spellings of one time are no change."""
    try:
        return format_timestamp(parse_timestamp(text))
    except ValueError:
        return text


def desired_config(
    spec: StreamSpec, live: LiveStream | None, live_canonical: StreamConfig | None = None
) -> StreamConfig:
    """The whole configuration to send: the manifest's, with the server's defaults written
    out, and fields another tool owns (`reconcile.ignore_fields`) kept at their live value
    (`live_canonical`: the live config in canonical form, when the caller has it already).

    A manifest that leaves `duplicate_window` out gets the server's default window for its
    `max_age`, so lowering max_age under 2m lowers the window with it (the server refuses a
    max_age below the window)."""
    raw: dict[str, Any] = {**spec.config, "name": spec.name}
    if live is not None and spec.policy.ignore_fields:
        current = canonical(live.config) if live_canonical is None else live_canonical
        for path in spec.policy.ignore_fields:
            _copy_path(path.split("."), current, raw)
    return canonical(raw)


def _copy_path(path: list[str], source: Mapping[str, Any], target: dict[str, Any]) -> None:
    head, rest = path[0], path[1:]
    if head not in source:
        target.pop(head, None)
    elif not rest or not isinstance(source[head], Mapping):
        target[head] = source[head]
    else:
        inner = dict(target.get(head) or {})
        _copy_path(rest, source[head], inner)
        target[head] = inner
