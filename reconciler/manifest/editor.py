"""The JSON Schema (draft 7) of a manifest as people write it, for editors: our field names,
units as strings (`100ms`, `1GiB`, `unlimited`), the `reconcile:` block and `kind`. Built on
the fly from the field registry (`reconciler.fields`), so it always describes the fields
this version reads: `jetstream-reconciler schema` prints it.

It says what `validate` says about types and field names. What needs more than one field
at a time, or the server, is left to `validate` (`OUT_OF_REACH`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from reconciler import __version__
from reconciler.fields import STREAM, Field, Registry
from reconciler.manifest.document import RECONCILE_FIELDS, SUPPORTED_KINDS
from reconciler.model import DriftMode
from reconciler.units import DURATION_UNITS, INT64_MAX, RFC3339_PATTERN, SIZE_UNITS

DRAFT: Final = "http://json-schema.org/draft-07/schema#"

#: what `validate` checks that this schema cannot, in the README's words
OUT_OF_REACH: Final = (
    "rules between fields (max_age at least 100ms and not below duplicate_window, "
    "discard_new_per_subject needs discard: new, what a mirror may not set, ...)",
    "subjects and subject transforms as the server reads them, and stream names",
    "whether a duration or size is a whole number of nanoseconds or bytes, and its range "
    "when written with a unit",
    "lengths in bytes (the schema counts characters)",
    "which field paths reconcile.ignore_fields may name",
    "anything across files (duplicate names, overlapping subjects, mirrors and sources)",
    "YAML 1.1 spellings that PyYAML reads and editors (YAML 1.2) do not: yes/no/on/off as "
    "booleans, unquoted timestamps, 1_000 and 0b101 as numbers",
    "a whole number written with a decimal point (10.0): JSON Schema counts it an integer, "
    "validate asks for 10",
)

_ANY_TEXT: Final = ("string", "number", "boolean")
"""`validate` reads any plain value where text is expected (`description: 42` is "42")."""


def _words(pattern: str) -> str:
    """`unlimited` in any letter case, as a regex JSON Schema (ECMA 262) takes."""
    return "".join(f"[{c.lower()}{c.upper()}]" for c in pattern)


def _alternatives(units: tuple[str, ...]) -> str:
    return "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))


_UNLIMITED: Final = _words("unlimited")
_DURATION: Final = (
    rf"^\s*(?:[0.]+|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)\s*(?:{_alternatives(DURATION_UNITS)})\s*)+)"
    r"\s*$"
)
_SIZE: Final = (
    rf"^\s*(?:{_UNLIMITED}|-1|[0-9]+(?:\.[0-9]+)?\s?(?:{_alternatives(SIZE_UNITS)})?)\s*$"
)


def _unit(field: Field) -> dict[str, Any]:
    """The schema of a duration, size, count or timestamp as a manifest writes it."""
    if field.unit == "duration":
        return {"type": ["string", "integer"], "pattern": _DURATION, "minimum": 0, "maximum": 0,
                "description": "A duration: 100ms, 90s, 1h30m, 7d, 1w (ns, us, ms, s, m, h, d, "
                               "w); 0 for none."}
    if field.unit == "size":
        return {"type": ["string", "integer"], "pattern": _SIZE, "minimum": -1,
                "maximum": field.maximum if field.maximum is not None else INT64_MAX,
                "description": "Bytes, or a size: 300B, 512KiB, 1GiB (1024-based), 10MB "
                               "(1000-based); -1 or unlimited for no limit."}
    if field.unit == "count":
        return {"type": ["integer", "string"], "pattern": rf"^\s*{_UNLIMITED}\s*$",
                "minimum": max(-1, field.minimum if field.minimum is not None else -1),
                "maximum": field.maximum if field.maximum is not None else INT64_MAX,
                "description": "A whole number; -1 or unlimited for no limit."}
    if field.unit == "timestamp":
        return {"type": "string", "format": "date-time", "pattern": f"^{RFC3339_PATTERN}$",
                "description": "An RFC 3339 time with a zone, e.g. 2024-01-31T12:00:00Z."}
    raise ValueError(f"{field.path}: unknown unit {field.unit}")


def _plain(json_type: str) -> dict[str, Any]:
    """A list's or map's plain values."""
    return {"type": list(_ANY_TEXT)} if json_type == "string" else {"type": json_type}


_WIRE_WORDS: Final = re.compile(r",? expressed in nanoseconds|\s*-?[01] for (unlimited|default)\.?")


def _field(registry: Registry, field: Field) -> dict[str, Any]:
    if field.unit is not None:
        out = _unit(field)
    elif field.type == "object":
        out = _object(registry, field.path + ".")
    elif field.type == "map":
        out = {"type": "object", "additionalProperties": _plain(field.item or "string")}
    elif field.type == "array":
        if any(p.startswith(field.path + ".*.") for p in registry.rows):
            out = {"type": "array", "items": _object(registry, field.path + ".*.")}
        else:
            out = {"type": "array", "items": _plain(field.item or "string")}
    elif field.type == "string":
        out = {"type": "string", "enum": list(field.enum)} if field.enum else {
            "type": list(_ANY_TEXT)}
        if field.pattern is not None:
            out["pattern"] = field.pattern
        if field.max_length is not None:
            out["maxLength"] = field.max_length
    elif field.type == "integer":
        out = {"type": "integer"}
        if field.minimum is not None:
            out["minimum"] = field.minimum
        if field.maximum is not None:
            out["maximum"] = field.maximum
    else:
        out = {"type": field.type}
    # the vendored schema speaks of the wire ("expressed in nanoseconds"): a manifest does not
    own = _WIRE_WORDS.sub("", field.description or "").strip() or None
    described = " ".join(d for d in (own, out.pop("description", None)) if d)
    if described:
        out["description"] = described
    if field.default is not None and field.default != "":
        out["default"] = field.default
    return out


def _object(registry: Registry, prefix: str) -> dict[str, Any]:
    """The object whose fields are the rows directly under `prefix` ("" for the top)."""
    children = [f for f in registry
                if f.path.startswith(prefix) and "." not in f.path[len(prefix):]]
    out: dict[str, Any] = {
        "type": "object",
        "properties": {f.path[len(prefix):]: _field(registry, f) for f in children},
        "additionalProperties": False,
    }
    required = [f.path[len(prefix):] for f in children if f.required]
    if required:
        out["required"] = required
    return out


_POLICY: Final[Mapping[str, dict[str, Any]]] = {
    "allow_data_loss": {"type": "boolean", "default": False,
                        "description": "Apply changes that remove stored messages."},
    "drift": {"type": "string", "enum": [m.value for m in DriftMode], "default": "enforce",
              "description": "enforce: put the server back to the manifest; report: log and "
                             "count drift, change nothing."},
    "ignore_fields": {"type": "array", "items": {"type": list(_ANY_TEXT)}, "default": [],
                      "examples": [["metadata.owner", "max_msgs"]],
                      "description": "Dotted fields another tool owns: never diffed, sent at "
                                     "their live value."},
}


def manifest_schema(registry: Registry = STREAM) -> dict[str, Any]:
    """The JSON Schema of one manifest document (one stream)."""
    if tuple(_POLICY) != RECONCILE_FIELDS:
        raise ValueError(f"the reconcile block reads {RECONCILE_FIELDS}, not {tuple(_POLICY)}")
    stream = _object(registry, "")
    properties = {
        "kind": {"type": "string", "enum": list(SUPPORTED_KINDS),
                 "description": "Optional: what the document declares."},
        **stream["properties"],
        "reconcile": {"type": "object", "properties": dict(_POLICY), "additionalProperties": False,
                      "description": "Policy for this stream; never sent to the server."},
    }
    return {
        "$schema": DRAFT,
        "$id": f"urn:jetstream-reconciler:manifest:{__version__}",
        "title": "jetstream-reconciler stream manifest",
        "description": "One JetStream stream per YAML document, with the JetStream API's field "
                       "names; durations and sizes with units. Made by `jetstream-reconciler "
                       f"schema` {__version__}.",
        "type": "object",
        "required": ["name"],
        "properties": properties,
        "additionalProperties": False,
    }
