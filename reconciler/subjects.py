"""NATS subjects as the server reads them: overlap, subsets, an index that finds the first
overlap in one walk, and subject transforms (`ValidateMapping` / `NewSubjectTransform` in
nats-server's `server/sublist.go` and `server/subject_transform.go`). Pure functions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "SubjectIndex",
    "subject_is_subset",
    "subjects_collide",
    "transform_error",
]

T = TypeVar("T")


def subjects_collide(a: str, b: str) -> bool:
    """Whether some message subject matches both `a` and `b` (wildcards on either side)."""
    ta, tb = a.split("."), b.split(".")
    for x, y in zip(ta, tb, strict=False):
        if x == ">" or y == ">":
            return True
        if x != y and x != "*" and y != "*":
            return False
    return len(ta) == len(tb)


def subject_is_subset(a: str, b: str) -> bool:
    """Whether every subject that `a` matches is also matched by `b`."""
    ta, tb = a.split("."), b.split(".")
    for index, y in enumerate(tb):
        if index >= len(ta):
            return False
        x = ta[index]
        if y == ">":
            return True
        if x == ">":
            return False
        if y == "*":
            continue
        if x == "*" or x != y:
            return False
    return len(ta) == len(tb)


# --- an index of subjects ----------------------------------------------------------------------


@dataclass
class _Node(Generic[T]):
    children: dict[str, _Node[T]] = field(default_factory=dict)
    here: tuple[int, T] | None = None
    """the first value added with exactly this subject"""
    below: tuple[int, T] | None = None
    """the first value added under this node (longer subjects): values only ever get later"""


class SubjectIndex(Generic[T]):
    """Subjects, each with a value, as a token tree. `first_collision(s)` is the earliest added
    value whose subject overlaps `s` (what comparing `s` with every subject in the order they
    were added would find first), found by walking only the branches that can overlap: for
    literal subjects and wildcards in the last tokens, a walk as long as the subject.

    `visits` counts the tree nodes walked, so that tests can assert the work done."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._added = 0
        self.visits = 0

    def add(self, subject: str, value: T) -> None:
        self._added += 1
        entry = (self._added, value)
        node = self._root
        for token in subject.split("."):
            self.visits += 1
            if node.below is None:
                node.below = entry
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node()
            node = child
        if node.here is None:
            node.here = entry

    def first_collision(self, subject: str) -> T | None:
        found = min(self._walk(self._root, subject.split("."), 0), default=None,
                    key=lambda e: e[0])
        return None if found is None else found[1]

    def _walk(self, node: _Node[T], tokens: list[str], index: int) -> Iterator[tuple[int, T]]:
        self.visits += 1
        if index == len(tokens):
            if node.here is not None:
                yield node.here
            return
        token = tokens[index]
        if token == ">":  # everything with at least one more token
            if node.below is not None:
                yield node.below
            return
        tail_node = node.children.get(">")
        if tail_node is not None:
            for entry in (tail_node.here, tail_node.below):
                if entry is not None:
                    yield entry
        if token == "*":
            for key, child in node.children.items():
                if key != ">":
                    yield from self._walk(child, tokens, index + 1)
            return
        for key in (token, "*"):
            step = node.children.get(key)
            if step is not None:
                yield from self._walk(step, tokens, index + 1)


# --- subject transforms ------------------------------------------------------------------------

_WS = "[\t\n\f\r ]"  # Go's \s
_FUNCTION_NAMES = (
    # in the order the server tries them
    ("wildcard", "[wW]ildcard"),
    ("partition", "[pP]artition"),
    ("splitFromLeft", "[sS]plit[fF]rom[lL]eft"),
    ("splitFromRight", "[sS]plit[fF]rom[rR]ight"),
    ("sliceFromLeft", "[sS]lice[fF]rom[lL]eft"),
    ("sliceFromRight", "[sS]lice[fF]rom[rR]ight"),
    ("right", "[rR]ight"),
    ("left", "[lL]eft"),
    ("split", "[sS]plit"),
    ("random", "[rR]andom"),
)


@functools.cache
def _functions() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The function patterns, compiled when a transform is first read (not at import)."""
    return tuple(
        (name, re.compile(r"\{\{" + _WS + "*" + pattern + _WS + r"*\((.*)\)" + _WS + r"*\}\}"))
        for name, pattern in _FUNCTION_NAMES
    )


_ARG_SEPARATOR = re.compile("," + _WS + "*")
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_WHITESPACE = frozenset("\t\n\f\r ")

_HOW_TO = (
    "functions are {{wildcard(n)}} (or $n), {{partition(count,n...)}}, {{split(n,sep)}}, "
    "{{splitFromLeft(n,pos)}}, {{splitFromRight(n,pos)}}, {{sliceFromLeft(n,size)}}, "
    "{{sliceFromRight(n,size)}}, {{left(n,len)}}, {{right(n,len)}}, {{random(count)}}, "
    "where n counts the source's '*' wildcards from 1"
)


def _atoi(text: str, limit: int = _INT64) -> int | None:
    """Go's strconv.Atoi (ParseInt with a bit size when `limit` is smaller)."""
    if not _GO_INT.fullmatch(text):
        return None
    value = int(text)
    return value if -limit - 1 <= value <= limit else None


@dataclass(frozen=True)
class _Token:
    kind: str  # "literal", "random", "partition" or another function name
    indexes: tuple[int, ...] = ()


def _parse_token(token: str) -> _Token | str:
    """One destination token, or what is wrong with it (`indexPlaceHolders`)."""
    if len(token) > 1 and token[0] == "$":
        index = _atoi(token[1:])
        return _Token("literal") if index is None else _Token("wildcard", (index,))
    if not (len(token) > 4 and token.startswith("{{") and token.endswith("}}")):
        return _Token("literal")
    for name, pattern in _functions():
        match = pattern.search(token)
        if match is None:
            continue
        args = _ARG_SEPARATOR.split(match.group(1))
        if name == "wildcard":
            if len(args) > 1:
                return f"{token} has too many arguments: write one wildcard number"
            if args[0] == "":
                return f"{token} has no argument: write the wildcard's number, e.g. $1"
            index = _atoi(args[0].strip(" "))
            if index is None:
                return f"{token}: '{args[0]}' is not a number"
            return _Token(name, (index,))
        if name == "partition":
            count = _atoi(args[0].strip(" "))
            if count is None or count > _INT32:
                return f"{token}: '{args[0]}' is not a number of partitions"
            indexes = [_atoi(a.strip(" ")) for a in args[1:]]
            if any(i is None for i in indexes):
                return f"{token}: the wildcard numbers after the count must be numbers"
            return _Token(name, tuple(i for i in indexes if i is not None))
        if name == "random":
            if len(args) != 1:
                return f"{token} takes one argument, the number of values"
            count = _atoi(args[0].strip(" "))
            if count is None or count > _INT32:
                return f"{token}: '{args[0]}' is not a number"
            return _Token(name)
        if len(args) < 2:
            return f"{token} needs two arguments"
        if len(args) > 2:
            return f"{token} has too many arguments: write two"
        index = _atoi(args[0].strip(" "))
        if index is None:
            return f"{token}: '{args[0]}' is not a wildcard number"
        if name == "split":
            if " " in args[1] or "." in args[1]:
                return f"{token}: the separator cannot contain a space or '.'"
        elif _atoi(args[1].strip(" "), _INT32) is None:
            return f"{token}: '{args[1]}' is not a number"
        return _Token(name, (index,))
    return f"{token} is not a known function ({_HOW_TO})"


def _subject_info(subject: str) -> tuple[bool, list[str], int, bool]:
    """valid, tokens, number of '*', ends in '>' (the server's `subjectInfo`)."""
    if not subject:
        return False, [], 0, False
    tokens = subject.split(".")
    wildcards = 0
    tail = False
    for token in tokens:
        if not token or tail:
            return False, [], 0, False
        if token == ">":
            tail = True
        elif token == "*":
            wildcards += 1
    return True, tokens, wildcards, tail


def _new_transform_error(src: str, dest: str) -> str | None:
    """`NewSubjectTransform`: None when the server can build the transform."""
    if not dest:
        return None
    src = src or ">"
    src_ok, _, wildcards, src_tail = _subject_info(src)
    dest_ok, dest_tokens, dest_wildcards, dest_tail = _subject_info(dest)
    if not src_ok:
        return f"the source '{src}' is not a valid subject"
    if not dest_ok:
        return f"'{dest}' is not a valid subject"
    if dest_wildcards:
        return (
            f"'{dest}' has '*': a destination names each wildcard it uses, "
            "as $1 or {{wildcard(1)}}"
        )
    if src_tail != dest_tail:
        if src_tail:
            return f"the source '{src}' ends in '>', so the destination must end in '>' too"
        return f"'{dest}' ends in '>', which only a source ending in '>' can fill"
    for token in dest_tokens:
        parsed = _parse_token(token)
        if isinstance(parsed, str):
            return parsed
        if wildcards or src_tail:
            for index in parsed.indexes:
                if index > wildcards:
                    return (
                        f"{token} refers to wildcard {index}, but the source '{src}' has "
                        f"{_count(wildcards)}"
                    )
        elif parsed.kind not in ("literal", "random", "partition"):
            return f"{token} needs a wildcard, but the source '{src}' has none"
    return None


def _count(wildcards: int) -> str:
    if wildcards == 0:
        return "no '*' wildcard"
    return f"only {wildcards} '*' wildcard{'s' if wildcards > 1 else ''}"


def transform_error(src: str, dest: str, *, mapping: bool = True) -> str | None:
    """What the server finds wrong with a transform from `src` to `dest`, or None.

    `mapping` is the check of stream, mirror and source transforms (`ValidateMapping`); a
    republish is checked by building the transform only (`NewSubjectTransform`)."""
    if mapping and dest:
        tail = False
        for token in dest.split("."):
            if not token or tail:
                return f"'{dest}' is not a valid subject"
            if len(token) > 4 and token.startswith("{{") and token.endswith("}}"):
                if not any(pattern.search(token) for _, pattern in _functions()):
                    return f"{token} is not a known function ({_HOW_TO})"
                continue
            if token == ">":
                tail = True
            elif _WHITESPACE.intersection(token):
                return f"'{dest}' contains whitespace"
    return _new_transform_error(src, dest)
