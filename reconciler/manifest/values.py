"""Reading YAML nodes as configuration values of the kind the field tree expects, reporting
every node that does not fit where it is."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.manifest.fieldfacts import EXPECTED, TYPE_HINTS
from reconciler.manifest.reader import DocumentReader
from reconciler.manifest.tree import Field
from reconciler.manifest.words import and_, join, suggest
from reconciler.manifest.yamlparse import (
    BOOL,
    FLOAT,
    INT,
    MERGE,
    NULL,
    construct_int,
    node_kind,
    shown,
    surrogate_problem,
)
from reconciler.units import UnitError, parse_count, parse_duration, parse_size, parse_timestamp

Pairs = list[tuple[str, Node, Node]]


class Invalid:
    """A value that had a problem: left out of the config."""


INVALID: Final = Invalid()


def pairs(
    d: DocumentReader, node: MappingNode, path: str, merging: frozenset[int] = frozenset()
) -> Pairs:
    """The (name, key node, value node) of a mapping, with `<<` merges applied and
    duplicate keys reported."""
    explicit: Pairs = []
    merged: Pairs = []
    seen: dict[str, Node] = {}  # name: its key
    for key, value in node.value:
        d.count()
        if key.tag == MERGE:
            merged.extend(_merged(d, node, value, path, merging))
            continue
        if not isinstance(key, ScalarNode):
            d.add(key, path, "a field name must be text", "write name: value")
            continue
        # one string for each field name, however many documents write it
        name = sys.intern(key.value)
        if not name.isascii() and (bad := surrogate_problem(name)):
            d.add(key, join(path, shown(name)), *bad)
            continue
        if name in seen:
            first = seen[name]
            d.add(
                key,
                join(path, name),
                f"'{name}' is given twice (first at line {first.start_mark.line + 1})",
                "remove one of them",
            )
            continue
        seen[name] = key
        explicit.append((name, key, value))
    out = list(explicit)
    for name, key, value in merged:
        if name not in seen:  # explicit keys win; earlier merges win over later ones
            seen[name] = key
            out.append((name, key, value))
    return out


def _merged(
    d: DocumentReader, node: MappingNode, value: Node, path: str, merging: frozenset[int]
) -> Pairs:
    """The pairs a `<<: *anchor` (or a list of them) brings into `node`."""
    out: Pairs = []
    sources = value.value if isinstance(value, SequenceNode) else [value]
    for source in sources:
        if not isinstance(source, MappingNode):
            d.add(
                value,
                path or "<<",
                f"'<<' merges mappings only, got {node_kind(source)}",
                "write <<: *anchor, where the anchor is on a mapping",
            )
        elif id(source) in merging:
            d.add(
                value,
                path or "<<",
                "'<<' merges a mapping into itself",
                "merge another mapping, or remove the '<<' line",
            )
        else:
            out.extend(pairs(d, source, path, merging | {id(node)}))
    return out


def unknown(d: DocumentReader, key: Node, path: str, known: Iterable[str], parent: str) -> None:
    """Report a field name that is not in `known`, with a guess or the list of names."""
    name = path.rpartition(".")[2]
    known = list(known)
    guess = suggest(name, known)
    if guess:
        hint = f"did you mean '{guess}'?"
    elif parent and len(known) <= 10:
        hint = f"{parent} has {and_(known)}"
    else:
        hint = "stream fields are the JetStream API's names, such as max_msgs or max_age"
    d.add(key, path, f"unknown field '{name}'", hint)


def object_fields(d: DocumentReader, items: Pairs, spec: Field, path: str) -> dict[str, Any]:
    """The fields of an object, each read as its kind; unknown names are reported."""
    out: dict[str, Any] = {}
    for name, key, value in items:
        sub = join(path, name)
        child = spec.fields.get(name)
        if child is None:
            unknown(d, key, sub, spec.fields, path)
            continue
        d.key_nodes[sub] = key
        got = read(d, value, child, sub)
        if got is not INVALID:
            out[name] = got
    return out


def read(d: DocumentReader, node: Node, spec: Field, path: str) -> Any:
    """The wire value of `node` for a field of kind `spec`, or INVALID after a problem."""
    d.count()
    d.place(path, node)
    if isinstance(node, ScalarNode):
        d.raw[path] = node.value
        if node.tag == NULL:
            d.add(node, path, "no value given", "write a value, or remove the field")
            return INVALID
        if not node.value.isascii() and (bad := surrogate_problem(node.value)):
            d.add(node, path, *bad)
            return INVALID
    kind = spec.kind
    if kind == "object":
        if not isinstance(node, MappingNode):
            return wrong_type(d, node, path, "a mapping", "write its fields indented below it")
        got = object_fields(d, pairs(d, node, path), spec, path)
        return INVALID if d.failed_under(path) else got
    if kind == "map":
        return _map(d, node, spec, path)
    if kind == "list":
        return _list(d, node, spec, path)
    if not isinstance(node, ScalarNode):
        return wrong_type(d, node, path, EXPECTED[kind], TYPE_HINTS[kind])
    return _SCALARS.get(kind, _unit)(d, node, spec, path)


def _map(d: DocumentReader, node: Node, spec: Field, path: str) -> Any:
    if not isinstance(node, MappingNode):
        return wrong_type(d, node, path, "a mapping", "write key: value lines below it")
    assert spec.item is not None
    out: dict[str, Any] = {}
    for name, key, value in pairs(d, node, path):
        sub = f"{path}.{name}"
        d.key_nodes[sub] = key
        got = read(d, value, spec.item, sub)
        if got is not INVALID:
            out[name] = got
    return INVALID if d.failed_under(path) else out


def _list(d: DocumentReader, node: Node, spec: Field, path: str) -> Any:
    assert spec.item is not None
    if not isinstance(node, SequenceNode):
        if isinstance(node, ScalarNode) and spec.item.kind == "text":
            return wrong_type(d, node, path, "a list", f"write ['{node.value}']")
        return wrong_type(d, node, path, "a list", "write one '- ' item per line")
    items = [read(d, item, spec.item, f"{path}.{i}") for i, item in enumerate(node.value)]
    return INVALID if any(i is INVALID for i in items) else items


def wrong_type(d: DocumentReader, node: Node, path: str, expected: str, hint: str | None) -> Any:
    d.add(node, path, f"expected {expected}, got {node_kind(node)}", hint)
    return INVALID


def _text(d: DocumentReader, node: ScalarNode, spec: Field, path: str) -> Any:
    text: str = node.value
    if spec.enum and text not in spec.enum:
        options = [v for v in spec.enum if v]
        guess = suggest(text, options)
        allowed = ", ".join(options)
        hint = f"did you mean '{guess}'? ({allowed})" if guess else f"write one of: {allowed}"
        d.add(node, path, f"unknown value '{text}'", hint)
        return INVALID
    return text


def _boolean(d: DocumentReader, node: ScalarNode, spec: Field, path: str) -> Any:
    text: str = node.value
    if node.tag == BOOL and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if node.tag == BOOL:
        d.add(node, path, f"'{text}' is not true or false", "write true or false")
    elif text.lower() in ("true", "false"):
        d.add(
            node,
            path,
            f"'{text}' is quoted text, not a boolean",
            f"write {text.lower()} without quotes",
        )
    else:
        d.add(node, path, f"'{text}' is not true or false", "write true or false")
    return INVALID


def _integer(d: DocumentReader, node: ScalarNode, spec: Field, path: str) -> Any:
    text: str = node.value
    if node.tag == INT:
        return construct_int(node)
    if node.tag == FLOAT:
        d.add(node, path, f"{text} is not a whole number", "write a whole number")
    elif re.fullmatch(r"-?\d+", text.strip()):
        d.add(node, path, f"'{text}' is text, not a number", f"write {text.strip()} without quotes")
    else:
        d.add(node, path, f"'{text}' is not a number", "write a whole number")
    return INVALID


def _timestamp(d: DocumentReader, node: ScalarNode, spec: Field, path: str) -> Any:
    text: str = node.value
    try:
        parse_timestamp(text)
    except ValueError:
        d.add(
            node,
            path,
            f"'{text}' is not an RFC 3339 time",
            "write a date and time with a time zone, e.g. '2024-01-31T12:00:00Z'",
        )
        return INVALID
    return text


_PARSERS: Final[dict[str, Callable[[object], int]]] = {
    "duration": parse_duration,
    "size": parse_size,
    "count": parse_count,
}


#: (kind, tag, text) -> the value: manifests repeat the same few limits (`1d`, `64KiB`) in
#: stream after stream, and each parse is a pure function of these three
_UNIT_VALUES: Final[dict[tuple[str, str, str], int]] = {}
_UNIT_VALUES_MAX: Final = 4096


def _unit(d: DocumentReader, node: ScalarNode, spec: Field, path: str) -> Any:
    """Durations, sizes and counts: sizes and counts take YAML integers (1_000 included);
    everything else as written."""
    kind = spec.kind
    key = (kind, node.tag, node.value)
    known = _UNIT_VALUES.get(key)
    if known is not None:
        return known
    arg: object = construct_int(node) if node.tag == INT and kind != "duration" else node.value
    try:
        value = _PARSERS[kind](arg)
    except UnitError as exc:
        d.add(node, path, exc.message, exc.hint)
        return INVALID
    if len(_UNIT_VALUES) < _UNIT_VALUES_MAX:
        _UNIT_VALUES[key] = value
    return value


_SCALARS: Final[dict[str, Callable[[DocumentReader, ScalarNode, Field, str], Any]]] = {
    "text": _text,
    "boolean": _boolean,
    "integer": _integer,
    "timestamp": _timestamp,
}
