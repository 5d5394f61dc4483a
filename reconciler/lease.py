"""Exactly one writer: a lease kept in NATS itself, in a JetStream key-value bucket.

Any number of reconcilers may run against one account; the one holding the lease writes,
the others plan only (standbys). The lease is one key (the lease name) of the bucket
`jetstream_reconciler` (stream `KV_jetstream_reconciler`); its value names the holder:

    {"holder": "nats-0/7", "token": "5f0c...", "ttl_ms": 10000, "released": false}

Every write of the key is a compare-and-set on its revision (the bucket stream's sequence,
`Nats-Expected-Last-Subject-Sequence`), so of two processes that try at once, one wins.
No clock is compared across hosts; each process judges time on its own monotonic clock:

- The holder renews every ttl/3. Its right to write ends `ttl - margin` after it SENT the
  last renew that succeeded (the server stored it later than that, so nobody has seen it
  earlier). A holder that cannot renew in time stops writing and says `leadership_lost`.
- A standby takes the lease over when the revision it last read has not changed for the
  holder's `ttl` on the standby's own clock, counted from when it first read that revision.
  That is at least `margin` after the holder stopped writing. A released record (the holder
  stopped cleanly) or no record at all is free at once.
- Before writing, a pass re-reads the key (the revision must still be ours), and every
  single create or update checks the deadline on the clock first. A process that was paused
  (SIGSTOP) past its deadline therefore writes nothing when it wakes up: its clock shows the
  deadline passed before any write or renew, and its renew fails on the revision.

What this cannot fence: a request that left the process before the deadline but reaches the
server later than `margin` after it (a TCP segment retransmitted when a partition heals,
nats-py's reconnect buffer). The JetStream API has no precondition a stream update could
carry; writes are only sent while connected, and `margin` (ttl/5) is far above loopback or
LAN latency.

`LeaseState` is the pure state machine (tested with a fake clock); `Lease` runs it against
the server through the small `LeaseStore` interface that `jetstream.JetStream` implements.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

from reconciler.errors import ApiError, JetStreamError, LeaseHeld, LeaseLost
from reconciler.jetstream.protocol import LeaseStore as LeaseStore
from reconciler.model import (
    LEASE_BUCKET,
    Config,
    KvEntry,
    Listing,
    LiveStream,
    MessageSample,
    Topology,
)

log: FilteringBoundLogger = structlog.get_logger("reconciler.lease")

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


# --- running it against the server ---------------------------------------------------------


class Lease:
    """One process's view of the lease `name`, kept current by `run()`."""

    def __init__(
        self,
        store: LeaseStore,
        name: str,
        me: Holder,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        on_change: Callable[[Change], None] | None = None,
        clock: Callable[[], float] = clock,
        quiet: bool = False,
    ) -> None:
        """`quiet` (a one-off writer, the CLI's apply): taking and releasing the lease are
        debug events; losing it or taking it over stay warnings."""
        self.store, self.name, self.me = store, name, me
        self.state = LeaseState(me, ttl_s)
        self.bucket = LEASE_BUCKET
        self.error: str | None = None
        """Why the key could not be read or written lately (None: it could)."""
        self._on_change = on_change
        self._clock = clock
        self._level = logging.DEBUG if quiet else logging.INFO
        self._wake = asyncio.Event()
        self._ready = False
        self._watch: Any = None

    # state for the rest of the process

    @property
    def holding(self) -> bool:
        return self.state.may_write(self._clock())

    @property
    def leader(self) -> str | None:
        return self.state.leader

    def describe(self) -> str:
        if self.holding:
            return f"leader: this process ({self.me.name}) holds the lease {self.name}"
        if self.state.leader is None:
            return f"standby: nobody holds the lease {self.name} yet"
        return f"standby: the lease {self.name} is held by {self.state.leader}"

    def check_write(self) -> None:
        """Raise `LeaseLost` unless this process may write now (holds the lease by its own
        clock). A request is never queued while disconnected: `jetstream` refuses to send
        one while the connection is being re-established."""
        if not self.state.may_write(self._clock()):
            raise LeaseLost(f"not written: this process does not hold the lease {self.name} "
                            f"(leader: {self.state.leader or 'nobody'})")

    def fence(self, js: Any) -> Fenced:
        return Fenced(js, self)

    # steps

    async def start(self) -> None:
        """Make sure the bucket exists, watch the key, and make one attempt to take the
        lease, so that the first pass already knows whether it may write."""
        await self._prepare()
        for _ in range(3):  # read, then claim if it is free
            if not self._ready or self.state.next_step(self._clock()).at > self._clock():
                return
            await self.step()

    async def _prepare(self) -> None:
        try:
            try:
                await self.store.ensure_kv_bucket(self.bucket, replicas=REPLICAS)
            except ApiError as exc:
                if exc.err_code != INSUFFICIENT_RESOURCES:
                    raise
                await self.store.ensure_kv_bucket(self.bucket, replicas=1)
            if self._watch is None:
                self._watch = await self.store.watch_subject(
                    f"$KV.{self.bucket}.{self.name}", self._wake.set)
            self._ready = True
            self._set_error(None)
        except JetStreamError as exc:
            self._set_error(f"cannot create or reach the lease bucket {self.bucket}: {exc}")

    async def confirm(self) -> bool:
        """Re-read the key: True when it still carries our revision and the deadline holds."""
        if not self.state.holding:
            return False
        await self._read()
        return self.holding

    async def step(self) -> float:
        """Do what is due now; the clock time when something is next due."""
        self._emit(self.state.tick(self._clock()))
        step = self.state.next_step(self._clock())
        if step.at > self._clock():
            return step.at
        if step.kind == "read":
            await self._read()
        else:
            await self._write(step.revision, self.me, released=False)
        self._emit(self.state.tick(self._clock()))
        return self.state.next_step(self._clock()).at

    async def run(self) -> None:
        """Keep the lease (or watch for it to be free) until cancelled."""
        deadline = asyncio.create_task(self._watch_deadline(), name="lease-deadline")
        try:
            await self._keep()
        finally:
            deadline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deadline

    async def _watch_deadline(self) -> None:
        """Say `leadership_lost` at the deadline even while a renew hangs unanswered (writes
        are refused from that moment anyway: `check_write` reads the clock)."""
        while True:
            wait = self.state.retry_every
            if self.state.holding:
                wait = self.state.deadline - self._clock()
                if wait <= 0:
                    self._emit(self.state.tick(self._clock()))
                    continue
            await asyncio.sleep(wait)

    async def _keep(self) -> None:
        while True:
            if not self._ready:
                await self._prepare()
                if not self._ready:
                    await asyncio.sleep(self.state.retry_every)
                    continue
            due = await self.step()
            wait = due - self._clock()
            if self.state.holding:
                wait = min(wait, self.state.deadline - self._clock())
            else:
                wait = min(wait, self.state.renew_every)
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                if self._wake.is_set():
                    await self._read()  # someone wrote the key

    async def acquire(self, *, wait_s: float = 0.0, force: bool = False) -> None:
        """Take the lease for a one-off writer (the CLI's apply), or raise `LeaseHeld`.

        Without `wait_s` a holder that proves alive (renews while we watch) is an error at
        once; a record left by a dead holder is taken after its ttl. `force` takes the lease
        from whoever holds it now.
        """
        started = self._clock()
        await self._prepare()
        while not self._ready:  # e.g. the bucket's stream is electing a leader
            if self._clock() - started >= max(wait_s, self.state.ttl):
                raise LeaseHeld(self.error or f"cannot reach the lease {self.name}")
            await asyncio.sleep(self.state.retry_every)
            await self._prepare()
        if force:
            await self._force()
            return
        first_holder: Record | None = None
        while True:
            due = await self.step()
            if self.holding:
                return
            seen = self.state.seen
            if seen is not None and not seen.released and seen.token != self.me.token:
                if first_holder is None:
                    first_holder = seen
                elif seen.revision != first_holder.revision and wait_s <= 0:
                    raise LeaseHeld(self._held_message(seen, alive=True))
            if wait_s > 0 and self._clock() - started >= wait_s:
                raise LeaseHeld(self._held_message(seen, alive=False)
                                + f" (waited {wait_s:g}s)")
            pause = max(0.0, min(due - self._clock(), self.state.renew_every))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            if self._wake.is_set():
                await self._read()

    async def _force(self) -> None:
        for _ in range(10):
            await self._read()
            seen = self.state.seen
            if seen is not None and not seen.released and seen.token != self.me.token:
                log.warning("lease_taken_over", lease=self.name, previous_holder=seen.holder,
                            holder=self.me.name,
                            warning="--force: taking the lease from a running reconciler; "
                                    "it stops writing as soon as it sees the new record")
            await self._write(max(self.state.seen_revision, 0), self.me, released=False)
            if self.holding:
                return
            if self.error:
                await asyncio.sleep(self.state.retry_every)
        raise LeaseHeld(f"could not take the lease {self.name} over: "
                        f"{self.error or 'others kept writing it'}")

    async def release(self) -> None:
        """Give the lease up (a standby takes it at once); quietly nothing if not held."""
        if self.state.held is None:
            return
        revision = self.state.held
        self.state.released()
        record = Record(self.me.name, self.me.token, self.state.ttl, released=True)
        with contextlib.suppress(JetStreamError):
            await self.store.kv_put(self.bucket, self.name, record.encode(), revision=revision)
            log.log(self._level, "lease_released", lease=self.name, holder=self.me.name)

    async def close(self) -> None:
        if self._watch is not None:
            with contextlib.suppress(Exception):
                await self._watch.unsubscribe()
            self._watch = None

    # I/O

    async def _read(self) -> None:
        try:
            entry = await self.store.kv_get(self.bucket, self.name)
        except JetStreamError as exc:
            self.state.failed(self._clock())
            self._set_error(f"cannot read the lease {self.name}: {exc}")
            return
        self._set_error(None)
        record = None if entry is None else Record.decode(entry, self.state.ttl)
        self._emit(self.state.observed(record, self._clock()))

    async def _write(self, revision: int, me: Holder, *, released: bool) -> None:
        record = Record(me.name, me.token, self.state.ttl, released=released)
        sent_at = self._clock()
        try:
            stored = await self.store.kv_put(self.bucket, self.name, record.encode(),
                                             revision=revision)
        except ApiError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                self._emit(self.state.conflict(self._clock()))
                return
            self.state.failed(self._clock())
            self._set_error(f"cannot write the lease {self.name}: {exc}")
            return
        except JetStreamError as exc:
            self.state.failed(self._clock())
            self._set_error(f"cannot write the lease {self.name}: {exc}")
            return
        self._set_error(None)
        self._emit(self.state.wrote(stored, sent_at, self._clock()))

    def _set_error(self, error: str | None) -> None:
        if error and error != self.error:
            log.warning("lease_unavailable", lease=self.name, error=error)
        self.error = error

    def _emit(self, changes: list[Change]) -> None:
        for change in changes:
            if change.kind == "elected":
                log.log(self._level, "leader_elected", lease=self.name, holder=change.holder,
                        this_process=change.us, identity=self.me.name)
            else:
                log.warning("leadership_lost", lease=self.name, holder=self.me.name,
                            reason=change.reason)
            if self._on_change is not None:
                self._on_change(change)

    def _held_message(self, record: Record | None, *, alive: bool) -> str:
        holder = record.holder if record is not None else "another reconciler"
        how = "a running reconciler" if alive else "held"
        return (f"the lease {self.name} is {how}: {holder} holds it; stop it, wait for it "
                "(--wait DURATION) or take it over (--force)")


class Fenced:
    """A JetStream client whose stream writes first check that this process may write;
    reads pass through."""

    def __init__(self, js: Any, lease: Lease) -> None:
        self._js, self._lease = js, lease

    def topology(self) -> Topology:
        result: Topology = self._js.topology()
        return result

    async def list_streams(self) -> Listing:
        result: Listing = await self._js.list_streams()
        return result

    async def stream_info(self, name: str) -> LiveStream | None:
        result: LiveStream | None = await self._js.stream_info(name)
        return result

    async def sample_messages(self, live: LiveStream, *, budget: int = 100_000,
                              subject_counts: bool = False) -> MessageSample:
        result: MessageSample = await self._js.sample_messages(
            live, budget=budget, subject_counts=subject_counts)
        return result

    async def create_stream(self, config: Config) -> LiveStream:
        self._lease.check_write()
        result: LiveStream = await self._js.create_stream(config)
        return result

    async def update_stream(self, config: Config) -> LiveStream:
        self._lease.check_write()
        result: LiveStream = await self._js.update_stream(config)
        return result


async def holding(lease: Lease, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run `work()` while `lease` is kept renewed in the background, then release it."""
    keeper = asyncio.create_task(lease.run(), name="lease")
    try:
        return await work()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await lease.release()
        await lease.close()
