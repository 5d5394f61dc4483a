"""A field registry: one row per field of a kind's configuration, built from the kind's
vendored JSON Schema plus a short list of overrides (what the schema does not say).

Pure: no I/O beyond reading the schema that ships inside the package.
"""

from __future__ import annotations

import json
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

_DURATION_COMMENT = "nanoseconds depicting a duration"


@dataclass(frozen=True)
class Minimum:
    """A lower bound the server enforces beyond the schema (0 stays allowed: it means unset)."""

    value: int
    """In wire units (nanoseconds for a duration)."""
    text: str
    """As a manifest writes it: `100ms`."""
    hint: str
    """What to write instead."""


@dataclass(frozen=True)
class Blocker:
    """A change the server refuses on an existing stream, and what to tell the user."""

    refuses: Callable[[Any, Any], bool]
    """(live value, desired value), both canonical -> whether the server refuses it."""
    why: Callable[[str, Any, Any], str]
    """(field, live value, desired value) -> the reason, with what to write instead."""
    one_way: bool = False
    """Can be turned on but never off (the reasons list these after the other blockers)."""


@dataclass(frozen=True)
class Field:
    """Everything the reconciler knows about one field. `path` is dotted; `*` stands for
    every element of a list (`sources.*.name`)."""

    path: str
    type: str
    """The schema's JSON type: string, integer, boolean, object, array; `map` for an object
    of free keys (metadata)."""
    unit: str | None = None
    """duration (integer ns), size (integer bytes), count, timestamp (RFC 3339): the units a
    manifest may write, and how the value is shown."""
    enum: tuple[str, ...] = ()
    default: Any = None
    """The server's default, in canonical form (None: no fixed default)."""
    unlimited: int | None = None
    """The value that means "no limit" (-1, or 0 for max_age)."""
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    """The schema's bounds."""
    order: int | None = None
    """Display rank among its siblings; fields without one follow, alphabetically."""
    blocker: Blocker | None = None
    server_minimum: Minimum | None = None
    not_on_mirror: str | None = None
    """Why a mirror cannot set it (None: a mirror may)."""
    range_hint: str | None = None
    """What to write when the value is above the schema's maximum."""
    omit: tuple[Any, ...] = ()
    """Values the server stores as "not set" (the field is left out of the canonical form)."""
    derived: bool = False
    """Its canonical value is computed from other fields (see `plan.canonical`)."""
    whole: bool = False
    """Compared and shown as one value: a change in any part shows the whole."""
    required_keys: tuple[str, ...] = ()
    """The keys a manifest must write in this object (for a list of objects: in each of
    them), from the schema's `required`."""
    item: str | None = None
    """For a list or a map of plain values: the values' JSON type (string for `subjects`)."""
    required: bool = False
    """The object it belongs to must have it (`sources.*.name`)."""
    pattern: str | None = None
    description: str | None = None
    """The schema's pattern and description (for the manifest schema editors read)."""

    @property
    def top_level(self) -> bool:
        return "." not in self.path

    @property
    def kind(self) -> str:
        """What a manifest may write here: a unit, or text, integer, boolean, object, map,
        list."""
        if self.unit:
            return self.unit
        return {"string": "text", "array": "list"}.get(self.type, self.type)

    @property
    def canon(self) -> str:
        """How the canonical form treats a top-level field: `flag` (omitted is false),
        `unlimited` (0 and below -1 are -1), `omit` (dropped when unset), `default` (unset
        is the default), `nested` (zero values inside dropped; dropped when empty), or
        `derived` (computed by `plan.canonical` from other fields; also name, subjects,
        metadata, sources)."""
        if self.derived:
            return "derived"
        if self.type == "boolean":
            return "flag"
        if self.unlimited == -1:
            return "unlimited"
        if self.omit:
            return "omit"
        if self.type == "object":
            return "nested"
        if self.default is not None:
            return "default"
        return "derived"


@dataclass(frozen=True)
class Registry:
    """The rows of one kind, in the schema's order."""

    kind: str
    rows: Mapping[str, Field]
    _ranks: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ranked = {f.path: f.order for f in self.top() if f.order is not None}
        object.__setattr__(self, "_ranks", ranked)

    def __getitem__(self, path: str) -> Field:
        return self.rows[path]

    def __contains__(self, path: object) -> bool:
        return path in self.rows

    def __iter__(self) -> Iterator[Field]:
        return iter(self.rows.values())

    def get(self, path: str) -> Field | None:
        return self.rows.get(path)

    def top(self) -> tuple[Field, ...]:
        """The top-level fields."""
        return tuple(f for f in self if f.top_level)

    def names(self) -> frozenset[str]:
        """Every top-level field name this version knows."""
        return frozenset(f.path for f in self.top())

    def with_unit(self, unit: str) -> frozenset[str]:
        return frozenset(f.path for f in self if f.unit == unit)

    def order_key(self, name: str) -> tuple[int, str]:
        """Sort key of a field name (at any depth) in displays and diffs."""
        return (self._ranks.get(name, len(self._ranks)), name)


# --- building the rows from the schema --------------------------------------------------------


def load_schema(resource: str) -> dict[str, Any]:
    """A JSON Schema vendored in the package (`schema/<name>.schema.json`)."""
    # pkgutil, not importlib.resources: the same file, without importing tempfile and zipfile
    data = pkgutil.get_data("reconciler", f"schema/{resource}.schema.json")
    assert data is not None
    schema: dict[str, Any] = json.loads(data.decode("utf-8"))
    return schema


def from_schema(
    kind: str, schema: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]]
) -> Registry:
    """One row per property of `schema` (recursively; list elements as `*`), each with what
    the schema says (type, unit, enum, default, bounds), then `overrides` by path."""
    rows: dict[str, Field] = {}
    _collect(rows, schema, "")
    unknown = set(overrides) - set(rows)
    if unknown:
        raise ValueError(f"overrides for fields the schema does not have: {sorted(unknown)}")
    for path, override in overrides.items():
        rows[path] = replace(rows[path], **override)
    return Registry(kind, rows)


def _collect(rows: dict[str, Field], schema: Mapping[str, Any], prefix: str) -> None:
    # the top level's `required` is the server's view of a complete config: a manifest names
    # only what it sets
    required = set(schema.get("required", ())) if prefix else set()
    for name, sub in schema.get("properties", {}).items():
        path = prefix + name
        rows[path] = replace(_row(path, sub), required=name in required)
        if "properties" in sub:
            _collect(rows, sub, path + ".")
        items = sub.get("items") or {}
        if "properties" in items:
            _collect(rows, items, path + ".*.")


def _row(path: str, schema: Mapping[str, Any]) -> Field:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object" and "properties" not in schema:
        kind = "map"
    default = schema.get("default")
    minimum = schema.get("minimum")
    required = schema.get("required") or (schema.get("items") or {}).get("required") or ()
    inner = schema.get("items") if kind == "array" else schema.get("additionalProperties")
    item = inner.get("type") if isinstance(inner, Mapping) and "properties" not in inner else None
    return Field(
        path=path,
        type=str(kind),
        unit=_unit(kind, schema),
        enum=tuple(schema.get("enum", ())),
        default=default,
        unlimited=-1 if kind == "integer" and default == -1 else None,
        minimum=minimum,
        maximum=schema.get("maximum"),
        max_length=schema.get("maxLength"),
        required_keys=tuple(required),
        item=str(item) if item else None,
        pattern=schema.get("pattern"),
        description=schema.get("description"),
    )


def _unit(kind: Any, schema: Mapping[str, Any]) -> str | None:
    """What the schema tells of a unit: durations say so in `$comment`, timestamps are
    `date-time`, and an integer that may be negative is a count (-1: unlimited). Sizes look
    like counts to the schema: the overrides say which they are."""
    if kind == "integer" and str(schema.get("$comment", "")).startswith(_DURATION_COMMENT):
        return "duration"
    if kind == "string" and schema.get("format") == "date-time":
        return "timestamp"
    if kind == "integer" and (schema.get("minimum") or 0) < 0:
        return "count"
    return None
