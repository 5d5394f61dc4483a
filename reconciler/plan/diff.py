"""Field-level differences between two canonical configurations, in display order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.fields import STREAM
from reconciler.model import Config, FieldChange

#: fields compared as a whole value; a change in any part shows the whole
_WHOLE = frozenset(f.path for f in STREAM if f.whole)


def diff(desired: Config, live: Config, ignore: Sequence[str] = ()) -> tuple[FieldChange, ...]:
    """Field-level differences between two canonical configs, in field order, dotted paths."""
    changes: list[FieldChange] = []
    _diff_into(changes, "", desired, live)
    return tuple(c for c in changes if not _ignored(c.path, ignore))


def _diff_into(out: list[FieldChange], prefix: str, desired: Any, live: Any) -> None:
    nested = isinstance(desired, Mapping) or isinstance(live, Mapping)
    if nested and prefix.rstrip(".") not in _WHOLE:
        desired, live = desired or {}, live or {}
        if isinstance(desired, Mapping) and isinstance(live, Mapping):
            # a key whose two values are equal has nothing to say: it is not walked
            keys = [k for k in desired.keys() | live.keys() if desired.get(k) != live.get(k)]
            for key in sorted(keys, key=field_order):
                _diff_into(out, f"{prefix}{key}.", desired.get(key), live.get(key))
            return
    if desired != live:
        out.append(FieldChange(prefix.rstrip("."), live, desired))


def field_order(key: str) -> tuple[int, str]:
    """Sort key of a field name in diffs and lists of causes (the registry's order)."""
    return STREAM.order_key(key)


def _ignored(path: str, ignore: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in ignore)
