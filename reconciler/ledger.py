"""Accounting of out-of-band changes: who changed which fields, logged once each.

Pure: no I/O, no clock. Watch mode notes every stream change another client makes, as its
API advisory tells it (who, and the configuration the change left), in arrival order. A read
of the live configuration accounts for every change noted before the read was sent, because
the server sends the advisory only after it applied the change: the read sees that change,
or a later one.

A change noted after the last read that our update was planned against may have landed
before that update, which then put its fields back unseen (the window is one round trip:
the update is planned again on a fresh read just before it is sent). The next read tells:
a field the change set that neither stands on the server nor was changed again by a later
noted change was overwritten by us, and is logged as such.

    advisories ─> note() ──┐
    read at position() ────┼─> settle(): actors of the changes the read saw,
    our update ─> wrote() ─┘             fields our last update overwrote unseen
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.model import Config, FieldChange
from reconciler.plan import canonical, diff


@dataclass(frozen=True)
class OutsideChange:
    """A change another client made to a stream."""

    stream: str
    actor: str | None
    config: Config | None
    """The whole configuration the change set (the API request); None if unknown."""
    seq: int
    """Arrival order among all noted changes."""


@dataclass(frozen=True)
class Settled:
    """What one read of a stream accounts for."""

    actors: tuple[str, ...] = ()
    """Who made the changes the read saw, in order, each once (unknown ones left out)."""
    overwritten: tuple[tuple[str | None, tuple[FieldChange, ...]], ...] = ()
    """Per change our last update put back unseen: its actor, and each field as
    (path, the value it set, the value we wrote)."""


_NOTHING = Settled()


@dataclass
class _Write:
    basis: Config
    """The live configuration the update was planned against, as read (brought to canonical
    form only when an outside change needs comparing with it)."""
    position: int
    """Where that configuration was read."""


@dataclass
class Ledger:
    """Outside changes awaiting the read that accounts for them, our last update per stream,
    and the drift last logged per stream (so that a drift left in place is logged once)."""

    _seq: int = 0
    _changes: dict[str, list[OutsideChange]] = field(default_factory=dict)
    _writes: dict[str, _Write] = field(default_factory=dict)
    _logged: dict[str, tuple[FieldChange, ...]] = field(default_factory=dict)
    _undeclared: frozenset[str] = frozenset()

    def note(self, stream: str, actor: str | None, config: Config | None) -> None:
        self._seq += 1
        self._changes.setdefault(stream, []).append(
            OutsideChange(stream, actor, config, self._seq))

    def position(self) -> int:
        """Take this just before sending a read: the changes it will account for."""
        return self._seq

    def unsettled(self) -> list[str]:
        """The streams with a noted change that no read has accounted for yet."""
        return list(self._changes)

    def tracked(self) -> set[str]:
        """The streams `settle` or `first_report` may have news of: a noted change not yet
        accounted for, or a drift logged. For any other stream in sync both are no-ops."""
        return self._changes.keys() | self._logged.keys()

    def pending(self, stream: str) -> tuple[OutsideChange, ...]:
        return tuple(self._changes.get(stream, ()))

    def actor_of(self, stream: str, live: Config) -> str | None:
        """Who made a noted, not yet settled change that left `stream` exactly as `live`."""
        want = canonical(live)
        for change in reversed(self._changes.get(stream, ())):
            if change.actor and change.config is not None and canonical(change.config) == want:
                return change.actor
        return None

    def settle(self, stream: str, position: int, live: Config | None) -> Settled:
        """A read of `stream` sent at `position` found `live` (its raw config; None when the
        stream is missing): what it accounts for. Those changes are forgotten."""
        queued = self._changes.get(stream)
        if not queued:
            return _NOTHING  # no change noted: nothing seen, nothing overwritten
        seen = [c for c in queued if c.seq <= position]
        rest = [c for c in queued if c.seq > position]
        if rest:
            self._changes[stream] = rest
        else:
            self._changes.pop(stream, None)
        actors: list[str] = []
        for change in seen:
            if change.actor and change.actor not in actors:
                actors.append(change.actor)
        # kept until the next update: a change's advisory may come a pass late
        write = self._writes.get(stream)
        overwritten: tuple[tuple[str | None, tuple[FieldChange, ...]], ...] = ()
        later = [c for c in seen if write is not None and c.seq > write.position]
        if write is not None and live is not None and later:
            overwritten = _overwritten(write, later, canonical(live))
        return Settled(tuple(actors), overwritten)

    def wrote(self, stream: str, basis: Config, position: int) -> None:
        """Our update of `stream`, planned against `basis` as read at `position`, succeeded."""
        self._writes[stream] = _Write(basis, position)
        self._logged.pop(stream, None)

    def undeclared_news(self, names: Iterable[str]) -> list[str]:
        """Of the owned streams no manifest declares in this pass (`names`), those that were
        not so in the last pass: each appearance is logged once."""
        now = frozenset(names)
        news = sorted(now - self._undeclared)
        self._undeclared = now
        return news

    def first_report(self, stream: str, changes: Sequence[FieldChange]) -> bool:
        """Whether this drift of a stream is news: not the very drift last logged for it.
        Call it for every stream of a pass (no changes: in sync, forgotten)."""
        now = tuple(changes)
        if not now:
            self._logged.pop(stream, None)
            return False
        if self._logged.get(stream) == now:
            return False
        self._logged[stream] = now
        return True


def _overwritten(
    write: _Write, changes: Sequence[OutsideChange], live: Config
) -> tuple[tuple[str | None, tuple[FieldChange, ...]], ...]:
    """The fields each change set after `write` was planned that stand neither on the server
    nor in a later change: our update put them back."""
    out = []
    before = canonical(write.basis)
    steps = []
    for change in changes:
        if change.config is None:
            continue
        after = canonical(change.config)
        steps.append((change, after, {c.path for c in diff(after, before)}))
        before = after
    for i, (change, after, paths) in enumerate(steps):
        later = set().union(*(p for _, _, p in steps[i + 1:]))
        lost = tuple(
            FieldChange(c.path, c.desired, c.live)
            for c in diff(after, live)
            if c.path in paths and c.path not in later
        )
        if lost:
            out.append((change.actor, lost))
    return tuple(out)
