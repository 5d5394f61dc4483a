"""What the server accepts as a stream (or consumer) name and as a subject or filter."""

from __future__ import annotations

from typing import Final

from reconciler.manifest.fieldfacts import MAX_NAME_LEN
from reconciler.manifest.words import and_
from reconciler.subjects import subject_is_subset, subjects_collide

_NAME_FORBIDDEN: Final = {
    ".": "'.'", "*": "'*'", ">": "'>'", "/": "'/'", "\\": "'\\'", "\x00": "a NUL character",
}  # fmt: skip
WHITESPACE: Final = {
    " ": "a space",
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
    "\f": "a form feed",
}


#: every character a name cannot have
_NOT_IN_NAMES: Final = frozenset(_NAME_FORBIDDEN) | frozenset(WHITESPACE)
_WHITESPACE: Final = frozenset(WHITESPACE)


def name_problem(name: str) -> tuple[str, str] | None:
    """What is wrong with a stream or consumer name, and what to write instead."""
    if 0 < len(name) <= MAX_NAME_LEN and name.isascii() and _NOT_IN_NAMES.isdisjoint(name):
        return None  # the usual case, at once (an ASCII character is one byte)
    if not name:
        return "the name is empty", "write a name such as 'events'"
    bad: list[str] = []
    for ch in name:
        what = _NAME_FORBIDDEN.get(ch) or WHITESPACE.get(ch)
        if what and what not in bad:
            bad.append(what)
    if bad:
        fixed = "".join("_" if ch in _NAME_FORBIDDEN or ch in WHITESPACE else ch for ch in name)
        return (
            f"'{name}' contains {and_(bad)}, which a name cannot have",
            f"write '{fixed[:MAX_NAME_LEN]}'",
        )
    if len(name) > MAX_NAME_LEN:
        return (
            f"the name is {len(name)} characters long, more than {MAX_NAME_LEN}",
            f"shorten it to at most {MAX_NAME_LEN} characters",
        )
    size = len(name.encode())
    if size > MAX_NAME_LEN:  # the server counts bytes
        return (
            f"the name takes {size} bytes in UTF-8, more than {MAX_NAME_LEN}",
            f"shorten it to at most {MAX_NAME_LEN} bytes (a non-ASCII character takes 2 to 4)",
        )
    return None


def subject_problem(subject: str) -> tuple[str, str] | None:
    """What is wrong with a subject (or filter), and what to write instead."""
    if not subject:
        return "the subject is empty", "write a subject such as 'events.>'"
    if not _WHITESPACE.isdisjoint(subject):
        return f"'{subject}' contains whitespace", f"write '{''.join(subject.split())}'"
    tokens = subject.split(".")
    if "" in tokens:
        fixed = ".".join(t for t in tokens if t)
        return f"'{subject}' has an empty token", f"write '{fixed}'" if fixed else "write a subject"
    if ">" not in tokens[:-1]:
        return None
    for index, token in enumerate(tokens[:-1]):
        if token == ">":
            return (
                f"'{subject}' has '>' before the last token",
                f"'>' matches all remaining tokens, so it comes last: write "
                f"'{'.'.join(tokens[: index + 1])}'",
            )
    return None


def is_literal(subject: str) -> bool:
    """A subject without wildcards."""
    return all(t not in ("*", ">") for t in subject.split("."))


def is_plain(subject: str) -> bool:
    """A valid subject without wildcards."""
    return not subject_problem(subject) and is_literal(subject)


def filters_overlap(a: str, b: str) -> bool:
    """The server's overlap test of two mirror filters (an empty filter is a literal '')."""
    if a == b:
        return True
    if not a or not b:
        return (a or b) == ">"
    return subjects_collide(a, b)


def filter_within(a: str, b: str) -> bool:
    """The server's subset test of two source filters (an empty filter is a literal '')."""
    if b == ">":
        return True
    return bool(a) and bool(b) and subject_is_subset(a, b)
