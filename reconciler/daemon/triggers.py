"""Triggers only say "look again"; those that arrive during a pass fold into one more pass.

`Triggers` collects the sources (`manifest`, `server`, `resync`, ...) and wakes the reconcile
loop; `take()` hands over everything collected so far as one set, so that any number of
triggers during a pass start exactly one more. `Backoff` is the pure retry schedule after a
pass that failed or was degraded.
"""

from __future__ import annotations

import asyncio

#: a pass that failed or could not read a declared stream is followed by another this long
#: after it, the wait doubling with each such pass in a row, up to --resync
RETRY_FIRST_S = 1.0
#: triggers that say nothing changed on the server: a pass for them reads again only the
#: streams whose manifest changed and those not in sync (see `reconcile.Known`)
CHANGES_NOTHING_LIVE = frozenset({"manifest"})
#: triggers that say no manifest changed: a pass started only by them goes by the manifests
#: as last read (a file change is a trigger of its own, `manifest`)
CHANGES_NO_MANIFEST = frozenset({"server"})


class Triggers:
    """Pending triggers and the event that wakes the loop. `stop()` wakes it for good."""

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._streams: set[str] | None = set()
        self._wake = asyncio.Event()
        self.stopped = asyncio.Event()
        self.streams: frozenset[str] | None = None
        """After `take`: the streams named as changed on the server by what was taken;
        None when anything may have changed (every stream is read again)."""

    def add(self, source: str, stream: str | None = None) -> None:
        """`stream`: the one stream the trigger says changed on the server (an advisory).
        A manifest change says nothing about the server; any other trigger without a
        stream lets the pass read every stream again."""
        self._pending.add(source)
        if stream is not None:
            if self._streams is not None:
                self._streams.add(stream)
        elif source not in CHANGES_NOTHING_LIVE:
            self._streams = None
        self._wake.set()

    def stop(self) -> None:
        self.stopped.set()
        self._wake.set()

    async def take(self) -> frozenset[str] | None:
        """Wait for a trigger; every trigger since the last `take`, folded into one set.
        None once stopped."""
        await self._wake.wait()
        self._wake.clear()
        if self.stopped.is_set():
            return None
        taken, self._pending = frozenset(self._pending), set()
        self.streams = None if self._streams is None else frozenset(self._streams)
        self._streams = set()
        return taken


def describe(triggers: frozenset[str]) -> str:
    """The `trigger` of a pass, as its events show it: `manifest,server`."""
    return ",".join(sorted(triggers)) or "wake"


class Backoff:
    """The wait before the next retry: `RETRY_FIRST_S`, doubling after each pass in a row
    that needs one, never above `ceiling_s`; a clean pass starts it over."""

    def __init__(self, ceiling_s: float, first_s: float = RETRY_FIRST_S) -> None:
        self.ceiling_s, self.first_s = ceiling_s, first_s
        self._next_s = first_s

    def next(self) -> float:
        delay = min(self._next_s, self.ceiling_s)
        self._next_s = delay * 2
        return delay

    def reset(self) -> None:
        self._next_s = self.first_s
