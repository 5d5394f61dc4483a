"""The lease as a pure state machine over an injected clock: records, holders, steps.

`LeaseState` decides; `keeper.Lease` carries its steps out against the server."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from reconciler.model import (
    KvEntry,
)

#: err_code of a compare-and-set that lost (Nats-Expected-Last-Subject-Sequence)
WRONG_LAST_SEQUENCE = 10071
#: err_code of a create asking for more replicas than the cluster has servers
INSUFFICIENT_RESOURCES = 10074
#: replicas of the bucket in a cluster (of three servers or more), so that the lease outlives
#: any one server; a single server (or a cluster of two) gets one
REPLICAS = 3
DEFAULT_NAME = "default"
DEFAULT_TTL_S = 10.0


def clock() -> float:
    """Seconds on a clock that never jumps and keeps counting while the process is stopped
    (and, where the system has it, while the machine sleeps: CLOCK_BOOTTIME)."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


@dataclass(frozen=True)
class Holder:
    """Who a process is: `name` for people (host or pod name and pid), `token` to tell this
    process from a restarted one that got the same name and pid."""

    name: str
    token: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass(frozen=True)
class Record:
    """The value under the lease key, with the revision it was read at."""

    holder: str
    token: str
    ttl_s: float
    released: bool = False
    revision: int = 0

    def encode(self) -> bytes:
        return json.dumps({"holder": self.holder, "token": self.token,
                           "ttl_ms": round(self.ttl_s * 1000), "released": self.released},
                          separators=(",", ":")).encode()

    @staticmethod
    def decode(entry: KvEntry, default_ttl_s: float) -> Record:
        """A stored value; one we cannot read counts as held by "unknown" for the default
        ttl (so it is taken over only after it stayed unchanged that long)."""
        try:
            data = json.loads(entry.value)
            ttl_ms = data.get("ttl_ms") if isinstance(data, dict) else None
            ttl = ttl_ms / 1000 if isinstance(ttl_ms, int | float) and ttl_ms > 0 else None
            return Record(holder=str(data["holder"]), token=str(data["token"]),
                          ttl_s=ttl or default_ttl_s, released=data.get("released") is True,
                          revision=entry.revision)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Record("unknown", "", default_ttl_s, revision=entry.revision)


@dataclass(frozen=True)
class Change:
    """Something worth an event: `elected` (a holder took the lease: `holder`, `us`) or
    `lost` (we no longer hold it: `reason`, `holder` the new holder when known)."""

    kind: str
    holder: str | None
    us: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Step:
    """What to do next, and when (a clock time): `read` the key, `claim` it or `renew` it
    with a compare-and-set on `revision`."""

    kind: str
    revision: int
    at: float


class LeaseState:
    """The lease as one process sees it. Pure: every method takes the clock time `now`."""

    def __init__(self, me: Holder, ttl_s: float, margin_s: float | None = None) -> None:
        self.me = me
        self.ttl = ttl_s
        self.margin = ttl_s / 5 if margin_s is None else margin_s
        self.renew_every = ttl_s / 3
        self.retry_every = min(1.0, ttl_s / 10)
        self.held: int | None = None
        """The revision of our record while we hold the lease, else None."""
        self.sent_at = 0.0
        """When the write behind our right to write was sent."""
        self.seen: Record | None = None
        self.seen_revision = -1
        """The revision last read (0: no record); -1: must read before deciding."""
        self.seen_since = 0.0
        """When `seen_revision` was first read."""
        self.failed_at: float | None = None
        self.leader: str | None = None
        """The holder as last known (None: nobody holds the lease)."""

    # queries

    @property
    def holding(self) -> bool:
        return self.held is not None

    @property
    def deadline(self) -> float:
        return self.sent_at + self.ttl - self.margin

    def may_write(self, now: float) -> bool:
        return self.held is not None and now < self.deadline

    def next_step(self, now: float) -> Step:
        if self.held is not None:
            due = self.sent_at + self.renew_every
            if self.failed_at is not None:  # the last renew failed: retry soon
                due = self.failed_at + self.retry_every
            return Step("renew", self.held, due)
        if self.seen_revision < 0:
            return Step("read", 0, now if self.failed_at is None
                        else self.failed_at + self.retry_every)
        record = self.seen
        due = now
        if record is not None and not record.released and record.token != self.me.token:
            due = self.seen_since + record.ttl_s
        if self.failed_at is not None:
            due = max(due, self.failed_at + self.retry_every)
        return Step("claim", self.seen_revision, due)

    # what happened

    def observed(self, record: Record | None, now: float) -> list[Change]:
        """The key was read at `now` (after the answer came)."""
        self.failed_at = None if self.held is None else self.failed_at
        revision = record.revision if record is not None else 0
        if revision != self.seen_revision:
            self.seen_revision, self.seen_since, self.seen = revision, now, record
        changes: list[Change] = []
        ours = record is not None and record.token == self.me.token and not record.released
        if self.held is not None:
            if ours:
                self.held = revision  # a renew whose answer we missed did land
            else:
                changes += self._lose("another reconciler took the lease over" if record
                                      else "the lease record disappeared")
        if record is not None and not record.released and not ours:
            changes += self._leader(record.holder)
        elif record is None or record.released:
            self.leader = None
        return changes

    def wrote(self, revision: int, sent_at: float, now: float) -> list[Change]:
        """Our claim or renew, sent at `sent_at`, is stored as `revision`."""
        self.failed_at = None
        self.seen_revision, self.seen_since = revision, now
        self.seen = Record(self.me.name, self.me.token, self.ttl, revision=revision)
        if sent_at + self.ttl - self.margin <= now:
            # stored, but too late to count: claim afresh (nobody else can have written)
            self.held = None
            return []
        was = self.held is not None
        self.held, self.sent_at = revision, sent_at
        return [] if was else self._leader(self.me.name, us=True)

    def conflict(self, now: float) -> list[Change]:
        """A compare-and-set failed: someone else wrote the key since we read it."""
        self.seen_revision = -1
        self.failed_at = None
        return self._lose("another reconciler wrote the lease first") if self.held else []

    def failed(self, now: float) -> None:
        """A read or write got no answer (or an error): try again shortly."""
        self.failed_at = now

    def released(self) -> None:
        self.held = None
        self.leader = None

    def tick(self, now: float) -> list[Change]:
        if self.held is not None and now >= self.deadline:
            return self._lose(f"no renew succeeded within {self.ttl - self.margin:g}s "
                              "(disconnected, or the process was paused)")
        return []

    def _lose(self, reason: str) -> list[Change]:
        self.held = None
        self.leader = None if self.leader == self.me.name else self.leader
        return [Change("lost", None, reason=reason)]

    def _leader(self, holder: str, us: bool = False) -> list[Change]:
        if self.leader == holder and not us:
            return []
        self.leader = holder
        return [Change("elected", holder, us=us)]
