"""`Lease`: runs `LeaseState` against the server through the `LeaseStore` interface."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

from reconciler.errors import ApiError, JetStreamError, LeaseHeld, LeaseLost
from reconciler.jetstream.protocol import LeaseStore
from reconciler.lease.fence import Fenced
from reconciler.lease.state import (
    DEFAULT_TTL_S,
    INSUFFICIENT_RESOURCES,
    REPLICAS,
    WRONG_LAST_SEQUENCE,
    Change,
    Holder,
    LeaseState,
    Record,
    clock,
)
from reconciler.model import (
    LEASE_BUCKET,
)

log: FilteringBoundLogger = structlog.get_logger("reconciler.lease")


class Lease:
    """One process's view of the lease `name`, kept current by `run()`.

    Long on purpose: the keeper loop, the one-off `acquire` and the deadline watch share
    the same private steps (`_prepare`, `_read`, `_write`, `_emit`) and state; split apart,
    they would hand that state to each other."""

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
