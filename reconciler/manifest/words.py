"""Small helpers for wording problems: lists in prose, and a guess at what was meant."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The option `word` most likely meant, if any is close enough."""
    options = list(options)
    squashed = {re.sub(r"[_\-\s]", "", o.lower()): o for o in options}
    exact = squashed.get(re.sub(r"[_\-\s]", "", word.lower()))
    if exact is not None:
        return exact
    import difflib  # only on a problem: not worth importing for valid manifests

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def and_(items: Sequence[str]) -> str:
    """`a, b and c`."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def join(prefix: str, name: str) -> str:
    """A dotted field path: `name` below `prefix`."""
    return f"{prefix}.{name}" if prefix else name
