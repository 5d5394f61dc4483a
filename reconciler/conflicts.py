"""Fights end by themselves: a stream another client keeps changing back is left alone a while.

Pure: the clock is injected, nothing here sleeps, logs or does I/O. Watch mode tells it each
time it put a stream back after another client's change (`healed`). When the same client
changed the stream back `REPEATS` times within a window, healing that stream pauses for half
a window. Once a pause ends the stream is healed again (one update); a change back after
that renews the pause, doubled, up to ten windows. The conflict is over when the other side
leaves the stream alone for a whole window after a pause.

With the default window of 60 s our updates to a contested stream are 3 in the first minute,
then one at the end of each pause (30 s, 60 s, 120 s, ... up to 10 min).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

#: changes back by one client within a window that make a fight
REPEATS = 3
#: the first pause, in windows; it doubles up to MAX_PAUSE
FIRST_PAUSE = 0.5
MAX_PAUSE = 10.0


@dataclass(frozen=True)
class Conflict:
    """A stream we keep putting back and another client keeps changing."""

    stream: str
    actor: str | None
    """The other client (its connection name or user); None when no advisory named it."""
    fields: tuple[str, ...]
    """Every field fought over so far."""
    count: int
    """Times the other side changed the stream back while we healed it."""
    paused_until: float
    """Clock time until which healing is paused."""
    pause_s: float
    resumed: bool = False
    """The stream was healed once since the pause ended: a change back now renews it."""

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def reason(self, now: float) -> str:
        who = self.actor or "another client"
        fought = ", ".join(self.fields) or "its configuration"
        if self.paused(now):
            state = f"healing paused for {self.paused_until - now:.0f}s more"
        else:
            state = "healing resumed; watching whether it is changed back again"
        return f"conflict over stream {self.stream} ({fought}) with {who}, " \
               f"changed back {self.count} times: {state}"


@dataclass
class Conflicts:
    """The fights going on, by stream. `window_s` 0 turns detection off."""

    window_s: float
    clock: Callable[[], float]
    _heals: dict[tuple[str, str | None], list[float]] = field(default_factory=dict)
    _conflicts: dict[str, Conflict] = field(default_factory=dict)
    _last_heal: dict[str, float] = field(default_factory=dict)

    def healed(self, stream: str, actor: str | None, fields: Iterable[str]) -> Conflict | None:
        """We just put `stream` back after `actor` changed `fields`. Returns the conflict when
        this starts one or renews its pause (emit `conflict_detected`), else None."""
        if self.window_s <= 0:
            return None
        now = self.clock()
        self._expire(now)
        fields = tuple(fields)
        self._last_heal[stream] = now
        current = self._conflicts.get(stream)
        if current is not None and (current.paused(now) or not current.resumed):
            # the heal that ends a pause puts back the change made before it
            self._conflicts[stream] = replace(current, resumed=not current.paused(now))
            return None
        if current is not None:
            pause = min(current.pause_s * 2, MAX_PAUSE * self.window_s)
            merged = tuple(dict.fromkeys((*current.fields, *fields)))
            renewed = replace(current, actor=actor or current.actor, fields=merged,
                              count=current.count + 1, paused_until=now + pause, pause_s=pause,
                              resumed=False)
            self._conflicts[stream] = renewed
            return renewed
        key = (stream, actor)
        recent = [t for t in self._heals.get(key, []) if now - t < self.window_s] + [now]
        self._heals[key] = recent
        if len(recent) < REPEATS:
            return None
        del self._heals[key]
        pause = FIRST_PAUSE * self.window_s
        conflict = Conflict(stream, actor, fields, len(recent), now + pause, pause)
        self._conflicts[stream] = conflict
        return conflict

    def holds(self) -> dict[str, str]:
        """Streams whose healing is paused now, with the reason (for the plan)."""
        now = self.clock()
        self._expire(now)
        return {s: c.reason(now) for s, c in self._conflicts.items() if c.paused(now)}

    def active(self) -> tuple[Conflict, ...]:
        """Conflicts not over yet (paused, or resumed and still watched)."""
        self._expire(self.clock())
        return tuple(self._conflicts.values())

    def next_resume(self) -> float | None:
        """The clock time the earliest pause ends, if any is on."""
        now = self.clock()
        ends = [c.paused_until for c in self._conflicts.values() if c.paused(now)]
        return min(ends, default=None)

    def _expire(self, now: float) -> None:
        for stream, conflict in list(self._conflicts.items()):
            quiet_since = max(conflict.paused_until, self._last_heal.get(stream, 0.0))
            if now - quiet_since >= self.window_s:
                del self._conflicts[stream]
        for key, times in list(self._heals.items()):
            if all(now - t >= self.window_s for t in times):
                del self._heals[key]
