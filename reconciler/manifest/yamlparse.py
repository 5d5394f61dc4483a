"""YAML as nodes: composing documents (fast when libyaml is there), YAML's own problems
worded for people, and the scalar facts every reader of nodes needs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.model import Location, Problem

NULL: Final = "tag:yaml.org,2002:null"
BOOL: Final = "tag:yaml.org,2002:bool"
INT: Final = "tag:yaml.org,2002:int"
FLOAT: Final = "tag:yaml.org,2002:float"
MERGE: Final = "tag:yaml.org,2002:merge"


def _fast_loader() -> Any:
    """libyaml's safe loader, with PyYAML's tag resolution (which it calls for every node)
    made cheaper: the same tags, looked up once per distinct scalar instead of by trying
    each regular expression again. SafeLoader has no path resolvers, so there is nothing to
    descend into."""
    base: Any = getattr(yaml, "CSafeLoader", None)
    if base is None or base.yaml_path_resolvers:
        return base
    tags: dict[tuple[str, tuple[bool, bool]], str] = {}
    resolve = base.resolve

    class Loader(base):  # type: ignore[misc]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is not ScalarNode:
                return resolve(self, kind, value, implicit)
            key = (value, implicit)
            tag = tags.get(key)
            if tag is None:
                tag = resolve(self, kind, value, implicit)
                if len(tags) < 4096:  # the values that repeat come first, in any file
                    tags[key] = tag
            return tag

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    return Loader


_FAST_LOADER: Any = _fast_loader()


def compose(text: str) -> Iterable[yaml.Node]:
    """The documents' node trees: through libyaml when PyYAML has it (ten times faster);
    on a YAML error, through the pure-Python parser, whose messages are the same on every
    machine."""
    if _FAST_LOADER is not None:
        try:
            return list(yaml.compose_all(text, Loader=_FAST_LOADER))
        except yaml.YAMLError:
            pass
    return yaml.compose_all(text, Loader=yaml.SafeLoader)


def is_empty(node: Node) -> bool:
    """An empty document (only comments, or a stray ---)."""
    return isinstance(node, ScalarNode) and node.tag == NULL and node.value in ("", "~", "null")


def decode_problem(name: str, data: bytes, exc: UnicodeDecodeError) -> Problem:
    """Bytes that are not UTF-8, at the line and column of the first bad byte."""
    line = data.count(b"\n", 0, exc.start)
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
    return Problem(
        Location(name, line + 1, column + 1),
        "",
        f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
        "save it as UTF-8",
    )


def yaml_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    """A YAML syntax error, where the parser saw it."""
    mark = exc.problem_mark or exc.context_mark
    location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem:
        where = ""
        if exc.context_mark is not None:
            where = f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        message += f" ({exc.context}{where})"
    hint = None
    if exc.problem and "'\\t'" in exc.problem:
        hint = "indent with spaces: YAML does not allow tabs there"
    return Problem(location, "", message, hint)


def reader_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    """A character YAML does not allow (PyYAML's ReaderError)."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    location = Location(file)
    if isinstance(position, int):
        line = text.count("\n", 0, position)
        column = position - (text.rfind("\n", 0, position) + 1)
        location = Location(file, line + 1, column + 1)
    what = f" #x{character:04x}" if isinstance(character, int) else ""
    return Problem(
        location,
        "",
        f"invalid YAML: the character{what} is not allowed",
        "remove it, or write it as an escape inside double quotes",
    )


def node_kind(node: Node) -> str:
    """What a node is, in words: 'a mapping', 'a list', 'nothing', 'a number', ..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL:
        return "nothing"
    if node.tag == BOOL:
        return "a boolean"
    if node.tag in (INT, FLOAT):
        return "a number"
    return "text"


_INT_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def construct_int(node: ScalarNode) -> int:
    """A YAML 1.1 integer as PyYAML reads it (1_000, 0x10), from the node itself."""
    value = _INT_CONSTRUCTOR.construct_yaml_int(node)
    assert isinstance(value, int)
    return value


_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SURROGATE_PAIR: Final = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def shown(text: str) -> str:
    """Text as it can be printed: a lone surrogate as its `\\uXXXX` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def surrogate_problem(text: str) -> tuple[str, str] | None:
    """A lone UTF-16 surrogate (`"\\uD800"` in a double-quoted YAML string) is not a
    character: it cannot be sent as UTF-8, and the server would store U+FFFD instead."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    message = (
        f"'{shown(text)}' contains \\u{ord(found.group()):04x}, half of a UTF-16 surrogate "
        "pair, which is not a character"
    )
    pair = _SURROGATE_PAIR.search(text)
    if pair is not None:
        high, low = (ord(c) for c in pair.group())
        code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        return message, (
            f"write the character itself, or as one escape: \\U{code:08X} "
            f"instead of \\u{high:04x}\\u{low:04x}"
        )
    return message, "remove the escape, or write the character it stands for"
