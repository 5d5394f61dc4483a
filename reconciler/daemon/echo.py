"""What an advisory means for watch mode: our own change's echo, or another client's change,
and who made it.

Pure: the clock is passed in; nothing here sleeps, schedules or does I/O. The daemon asks
`heard()` for each advisory and acts on the `Reaction`: nothing, a pass now, or a pass when
the actor grace ends (it calls `due()` then).

The server announces every stream change twice: a stream advisory (`created`, `updated`,
`deleted`; names no client) and, just after it, an API advisory naming the client. So:
- an API advisory of our own connection is ignored; another client's is noted in the
  `Ledger` (who set which config) and starts a pass at once;
- a stream advisory within `OWN_ECHO_S` of our own change to that stream is its echo;
- any other stream advisory waits `ACTOR_GRACE_S` for the API advisory that names the
  client; if none comes, the pass starts without the name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler.ledger import Ledger
from reconciler.model import LEASE_STREAM, WRITES, Advisory, StreamPlan

#: how long after our own change a stream advisory for that stream is taken as its echo
OWN_ECHO_S = 2.0
#: how long a stream advisory waits for the API advisory that names who made the change (it
#: normally follows within milliseconds and starts the pass at once)
ACTOR_GRACE_S = 0.25
#: the API requests that change a stream's configuration
_CHANGES = ("CREATE", "UPDATE", "DELETE")


@dataclass(frozen=True)
class Reaction:
    """`now`: start a pass at once. `at`: ask `due(at)` at that clock time. Neither: ignore."""

    now: bool = False
    at: float | None = None


IGNORE = Reaction()


class Correlator:
    """Our expected echoes and the stream advisories waiting for their actor, by stream."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float], *,
                 own_echo_s: float = OWN_ECHO_S, actor_grace_s: float = ACTOR_GRACE_S) -> None:
        self.ledger = ledger
        self._clock = clock
        self.own_echo_s, self.actor_grace_s = own_echo_s, actor_grace_s
        self._echo_until: dict[str, float] = {}
        self._waiting: dict[str, float] = {}
        """Streams whose stream advisory waits for its API advisory: until when."""

    def expect_echo(self, streams: Iterable[StreamPlan]) -> None:
        """We are about to create, update, adopt or delete these streams: their advisories
        are no news. (Another client's change is still seen through its API advisory.)"""
        until = self._clock() + self.own_echo_s
        for stream in streams:
            if stream.action in WRITES:
                self._echo_until[stream.name] = until

    def heard(self, advisory: Advisory) -> Reaction:
        stream = advisory.stream
        if advisory.own or not stream or stream == LEASE_STREAM:
            return IGNORE
        if advisory.kind == "api":
            parts = advisory.subject.split(".")
            if len(parts) < 5 or parts[3] not in _CHANGES:
                return IGNORE
            self.ledger.note(stream, advisory.actor, advisory.config)
            self._waiting.pop(stream, None)  # the name came: no need to wait any longer
            return Reaction(now=True)
        if self._clock() < self._echo_until.pop(stream, 0.0):
            return IGNORE  # the server telling us about our own change
        if stream in self._waiting:
            return IGNORE  # a pass is already due when the first one's grace ends
        at = self._clock() + self.actor_grace_s
        self._waiting[stream] = at
        return Reaction(at=at)

    def due(self, now: float) -> list[str]:
        """The streams whose grace has ended by `now` without an API advisory (forgotten)."""
        ended = sorted(s for s, at in self._waiting.items() if at <= now)
        for stream in ended:
            del self._waiting[stream]
        return ended
