"""What the server cannot change on an existing stream: each field's row in the registry
says when it refuses (immutable, one-way, only some transitions) and why."""

from __future__ import annotations

from reconciler.fields import STREAM
from reconciler.fields.stream_config import StreamConfig

#: fields that can be turned on but never off
ONE_WAY: tuple[str, ...] = tuple(
    f.path for f in STREAM.top() if f.blocker is not None and f.blocker.one_way
)

#: the other fields the server refuses to change (or to change in some ways), then the one-way
#: ones: the order the reasons are given in
_BLOCKING = (
    *(f for f in STREAM.top() if f.blocker is not None and not f.blocker.one_way),
    *(f for f in STREAM.top() if f.blocker is not None and f.blocker.one_way),
)


def blocked_reasons(desired: StreamConfig, live: StreamConfig) -> tuple[str, ...]:
    """Why the server would refuse to turn `live` into `desired` (both canonical)."""
    reasons = []
    for row in _BLOCKING:
        assert row.blocker is not None
        old, new = live.get(row.path), desired.get(row.path)
        if row.blocker.refuses(old, new):
            reasons.append(row.blocker.why(row.path, old, new))
    return tuple(reasons)
