"""The field tree of a stream configuration, from the vendored JSON Schema: what a manifest
may write where (`Field`), and a fast test that a configuration fits the schema (`fits`)
that leaves the wording of problems to the schema's own validator."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from reconciler import fields as kinds
from reconciler.fields.registry import load_schema

if TYPE_CHECKING:
    from jsonschema import Draft7Validator  # type: ignore[import-untyped]

Test = Callable[[Any], bool]


@functools.cache
def schema() -> dict[str, Any]:
    return load_schema("stream_configuration")


def manifest_schema() -> dict[str, Any]:
    # A manifest names only the fields it sets: the schema's top-level `required` list is the
    # server's view of a complete config, not ours. `name` is checked before.
    return {k: v for k, v in schema().items() if k != "required"}


@functools.cache
def validator() -> Draft7Validator:
    """The schema's own validator, which words its problems. (Imported here: it takes
    longer to import than most documents take to check, and valid documents never need it.)"""
    from jsonschema import Draft7Validator

    return Draft7Validator(manifest_schema())


#: schema keywords that assert nothing (Draft7Validator without a format checker)
_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "format", "examples"}
)
_KEYWORDS: Final = frozenset({
    "type", "required", "properties", "additionalProperties", "items", "enum",
    "pattern", "minLength", "maxLength", "minimum", "maximum",
})  # fmt: skip
_TYPES: Final = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class Unsupported(Exception):
    """A schema keyword `compile_schema` does not know: every document goes to the
    validator."""


def compile_schema(schema: Mapping[str, Any]) -> Test:
    """A fast test that a value fits `schema` (JSON Schema draft 7, the keywords our schema
    uses). It may say no where the validator finds nothing, never the other way round: a
    yes skips the validator, a no runs it, and the problems are the validator's."""
    unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    checks = _value_checks(schema) + _container_checks(schema)
    if len(checks) == 1:
        return checks[0]

    def every(v: Any) -> bool:
        for check in checks:  # noqa: SIM110 (a loop: all() of a generator costs more here)
            if not check(v):
                return False
        return True

    return every


def _value_checks(schema: Mapping[str, Any]) -> list[Test]:
    """type, enum, pattern, lengths and ranges: one test for them all (a value is checked
    once per document, so one call instead of one per keyword counts)."""
    kind = schema.get("type")
    # exact types: a bool is no integer here, an int no float; when unsure, say no
    allowed = None if kind is None else tuple(
        t for k in ([kind] if isinstance(kind, str) else kind) for t in _TYPES[k])
    enum = None if "enum" not in schema else tuple((type(e), e) for e in schema["enum"])
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    low, high = schema.get("minLength"), schema.get("maxLength")
    lengths = None if low is None and high is None else (
        low or 0, float("inf") if high is None else high)
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    bounds = None if minimum is None and maximum is None else (
        float("-inf") if minimum is None else minimum,
        float("inf") if maximum is None else maximum)
    if allowed is None and enum is None and search is None and lengths is None \
            and bounds is None:
        return []

    def test(v: Any) -> bool:
        t = type(v)
        if allowed is not None and t not in allowed:
            return False
        if enum is not None and not any(t is et and v == e for et, e in enum):
            return False
        if t is str:
            if search is not None and search(v) is None:
                return False
            return lengths is None or lengths[0] <= len(v) <= lengths[1]
        return bounds is None or (t is not int and t is not float) \
            or bounds[0] <= v <= bounds[1]

    return [test]


def _container_checks(schema: Mapping[str, Any]) -> list[Test]:
    """required, properties, additionalProperties and items."""
    checks: list[Test] = []
    if "required" in schema:
        required = tuple(schema["required"])
        checks.append(lambda v: type(v) is not dict or all(r in v for r in required))
    if "properties" in schema or "additionalProperties" in schema:
        props = {name: compile_schema(sub) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        other: Test | None = None
        if extra is False:
            other = lambda _: False  # noqa: E731
        elif isinstance(extra, Mapping):
            other = compile_schema(extra)

        def fields(v: Any) -> bool:
            if type(v) is not dict:
                return True
            for name, item in v.items():
                check = props.get(name, other)
                if check is not None and not check(item):
                    return False
            return True

        checks.append(fields)
    if "items" in schema:
        if not isinstance(schema["items"], Mapping):
            raise Unsupported("items as a list")
        each = compile_schema(schema["items"])
        checks.append(lambda v: type(v) is not list or all(each(i) for i in v))
    return checks


@functools.cache
def fits() -> Test:
    """`compile_schema` of the manifest schema, or a test that always says no."""
    try:
        return compile_schema(manifest_schema())
    except Unsupported:
        return lambda _: False


@dataclass(frozen=True)
class Field:
    """What a manifest may write at one place of the configuration."""

    kind: str
    """text, integer, boolean, duration, size, count, timestamp, object, map, list"""
    fields: Mapping[str, Field] = field(default_factory=dict)
    item: Field | None = None
    enum: tuple[str, ...] = ()


_UNITS: Final = (
    (kinds.DURATIONS, "duration"),
    (kinds.SIZES, "size"),
    (kinds.COUNTS, "count"),
    (kinds.TIMESTAMPS, "timestamp"),
)


def _build(schema: Mapping[str, Any], pattern: str) -> Field:
    for paths, unit in _UNITS:
        if pattern in paths:
            return Field(unit)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        if "properties" in schema:
            return Field(
                "object",
                fields={
                    name: _build(sub, f"{pattern}.{name}" if pattern else name)
                    for name, sub in schema["properties"].items()
                },
            )
        return Field("map", item=_build(schema.get("additionalProperties", {}), f"{pattern}.*"))
    if kind == "array":
        return Field("list", item=_build(schema.get("items", {}), f"{pattern}.*"))
    if kind in ("integer", "boolean"):
        return Field(kind)
    return Field("text", enum=tuple(schema.get("enum", ())))


@functools.cache
def stream_fields() -> Field:
    """The field tree of a stream's configuration."""
    return _build(schema(), "")


def is_config_path(path: str) -> bool:
    """Whether `path` (dotted; list elements as `*` or an index) names a configuration field."""
    node: Field | None = stream_fields()
    for part in path.split("."):
        if node is None:
            return False
        if node.kind == "object":
            node = node.fields.get(part)
            if node is None:
                return False
        elif node.kind == "list":
            if part != "*" and not part.isdigit():
                return False
            node = node.item
        elif node.kind == "map":
            if not part:
                return False
            node = None  # metadata.<any key>, and nothing below it
        else:
            return False
    return True


def config_paths() -> list[str]:
    """Every field path of the configuration (list elements as `*`), in schema order."""
    out: list[str] = []

    def visit(node: Field, prefix: str) -> None:
        for name, sub in node.fields.items():
            path = f"{prefix}.{name}" if prefix else name
            out.append(path)
            if sub.kind == "object":
                visit(sub, path)
            elif sub.kind == "list" and sub.item is not None and sub.item.kind == "object":
                visit(sub.item, f"{path}.*")

    visit(stream_fields(), "")
    return out
