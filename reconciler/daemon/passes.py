"""One reconcile pass at a time, and what each pass leaves for the next.

    desired state (manifests) ─> plan ─> settle review ─> lease confirm ─> reconcile
        ─> health and metrics, sources, conflicts ─> timers: settle, retry, conflict pause

Timers only add triggers; the daemon's loop starts the passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection

import structlog

from reconciler.conflicts import Conflicts
from reconciler.daemon.desired import Desired, Sources, read_again, read_manifests
from reconciler.daemon.echo import ACTOR_GRACE_S, Correlator
from reconciler.daemon.health import Health, track_conflicts
from reconciler.daemon.triggers import Backoff
from reconciler.errors import JetStreamError
from reconciler.lease import Lease
from reconciler.ledger import Ledger
from reconciler.metrics import Metrics
from reconciler.model import Listing, Plan, StreamSpec
from reconciler.plan.prune import Prune, refusal
from reconciler.reconcile import (
    JetStreamAPI,
    Known,
    Result,
    compute_plan,
    new_reconcile_id,
    reconcile,
)
from reconciler.settings import Settings
from reconciler.settle import Files
from reconciler.units import format_duration

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")

#: a held file is looked at again this long after its settle period ends
SETTLE_MARGIN_S = 0.01


class Passes:
    """Runs passes (`run`) and keeps what they learn: the desired state, the outside changes
    and their actors, the fights, the health."""

    def __init__(self, settings: Settings, metrics: Metrics,
                 trigger: Callable[[str], None]) -> None:
        self.settings = settings
        self.metrics = metrics
        self._trigger = trigger
        self.ledger = Ledger()
        self.correlator = Correlator(self.ledger, time.monotonic)
        self.conflicts = Conflicts(settings.conflict_window_s, time.monotonic)
        self.desired = Desired(Files(settings.settle_s), metrics)
        self.sources = Sources()
        self.health = Health(metrics)
        self._backoff = Backoff(settings.resync_s)
        self._read_at = 0
        self._known = Known()
        self._holds: dict[str, str] = {}
        self._undeclared_since: dict[str, float] = {}
        """Owned streams no manifest declares: since when (`time.monotonic()`)."""
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.count = 0
        """Passes finished so far."""
        self._done = asyncio.Condition()

    async def run(self, js: JetStreamAPI, lease: Lease | None, trigger: str,
                  changed: Collection[str] | None = None, *, manifests: bool = True) -> None:
        """One pass; its errors are logged and recorded, never raised (but cancellation).
        `changed`: the streams the triggers named as changed on the server (None: any may
        have); the pass reads again only those and the ones `reconcile.Known` says.
        `manifests` false: no trigger says a manifest changed; the pass goes by the
        manifests as last read (once they have been)."""
        reconcile_id = new_reconcile_id()
        started = time.monotonic()
        result: Result | None = None
        specs: list[StreamSpec] = []
        try:
            specs, plan = await self._desired(js, changed, manifests)
            writes = True
            if lease is not None:
                writes = await lease.confirm()  # a fresh read: the revision is ours
            result = await reconcile(
                lease.fence(js) if lease is not None else js, specs,
                allow_data_loss=self.settings.allow_data_loss,
                concurrency=self.settings.concurrency, trigger=trigger,
                sources=self.sources.of(specs), ledger=self.ledger,
                actor_grace_s=ACTOR_GRACE_S, reconcile_id=reconcile_id, holds=self._holds,
                before_apply=lambda p: self.correlator.expect_echo(p.streams), plan=plan,
                read_at=self._read_at, started=started, apply=writes,
                owner=self.settings.owner,
            )
        except asyncio.CancelledError:
            raise
        except JetStreamError as exc:
            log.error("reconcile_failed", reconcile_id=reconcile_id, error=str(exc))
        finally:
            self.metrics.reconcile_duration.observe(time.monotonic() - started)
            self._later("settle", self.desired.settle_due_in(), SETTLE_MARGIN_S)
        self._after(reconcile_id, specs, result)
        self.count += 1
        async with self._done:
            self._done.notify_all()

    async def _desired(self, js: JetStreamAPI, live_changed: Collection[str] | None,
                       manifests: bool = True) -> tuple[list[StreamSpec], Plan]:
        """The streams to reconcile and their plan; a changed file that must settle first
        counts with its last accepted version."""
        if not manifests and self.desired.specs is not None:
            specs = self.desired.specs
            return specs, await self._plan(js, specs, live_changed)
        reading = asyncio.ensure_future(asyncio.to_thread(read_manifests, self.settings.paths))
        listing = None
        try:
            if live_changed is None:  # list every stream while the manifests are read
                self._read_at = self.ledger.position()
                listing = await js.list_streams()
            before, loaded = await reading
        finally:
            reading.cancel()
        specs, changed = self.desired.load(before, loaded)
        plan = await self._plan(js, specs, live_changed, listing)
        if changed:
            after = await asyncio.to_thread(read_again, changed)
            if self.desired.review(plan, changed, after):
                specs = self.desired.merged()
                plan = await self._plan(js, specs, live_changed)
        return specs, plan

    async def _plan(self, js: JetStreamAPI, specs: list[StreamSpec],
                    changed: Collection[str] | None, listing: Listing | None = None) -> Plan:
        if listing is None:  # what the live configs read next account for
            self._read_at = self.ledger.position()
        self._holds = self.conflicts.holds()
        if changed is not None:  # a declared stream with an outside change not yet
            declared = {s.name for s in specs}  # accounted for is read again
            changed = {*changed, *(n for n in self.ledger.unsettled() if n in declared)}
        return await compute_plan(js, specs, allow_data_loss=self.settings.allow_data_loss,
                                  concurrency=self.settings.concurrency, holds=self._holds,
                                  owner=self.settings.owner, prune=self._prune(specs),
                                  known=self._known, changed=changed, listing=listing)

    def _prune(self, specs: list[StreamSpec]) -> Prune | None:
        """Pruning as this pass may do it: only streams undeclared for the whole grace
        period, and nothing while a manifest path fails to load."""
        if not self.settings.prune:
            return None
        grace = self.settings.prune_grace_s
        now = time.monotonic()
        ripe = frozenset(n for n, t in self._undeclared_since.items() if now - t >= grace)
        failed = [p.location.file for p in self.desired.problems]
        return Prune(self.settings.max_deletes, refusal(declared=len(specs), failed=failed),
                     ripe, f"in its grace period: deleted once undeclared for "
                           f"{format_duration(round(grace * 1e9))} (--prune-grace)")

    def _track_undeclared(self, plan: Plan) -> None:
        """Remember since when each owned stream has been undeclared, and look again when
        the first grace period ends."""
        now = time.monotonic()
        names = {u.name for u in plan.undeclared} | {s.name for s in plan.streams
                                                       if s.undeclared}
        self._undeclared_since = {n: self._undeclared_since.get(n, now) for n in names}
        self.metrics.undeclared_streams.set(len(names))
        if not self.settings.prune or not plan.undeclared:
            self._later("prune", None)
            return
        due = min(self._undeclared_since[u.name] for u in plan.undeclared)
        self._later("prune", max(0.0, due + self.settings.prune_grace_s - now), SETTLE_MARGIN_S)

    def _after(self, reconcile_id: str, specs: list[StreamSpec], result: Result | None) -> None:
        if result is not None:
            self._track_undeclared(result.plan)
        self.health.record(result)
        self.sources.remember(specs, result)
        for pause_s in track_conflicts(self.conflicts, self.metrics, result):
            asyncio.get_running_loop().call_later(pause_s, self._trigger, "conflict")
        self._schedule_retry(reconcile_id)

    async def wait(self, count: int) -> None:
        """Wait until at least `count` passes have finished."""
        async with self._done:
            await self._done.wait_for(lambda: self.count >= count)

    def _schedule_retry(self, reconcile_id: str) -> None:
        """After a pass that failed (the connection dropped, no meta leader answered, a write
        failed) or could not read a declared stream (its leader is being elected), look again
        soon, waiting twice as long after each such pass in a row; a clean pass ends it."""
        if self.health.clean:
            self._backoff.reset()
            self._later("retry", None)
            return
        delay = self._backoff.next()
        log.info("reconcile_retry", reconcile_id=reconcile_id, retry_in_s=delay,
                 reason="degraded" if self.health.last_ok else "failed")
        self._later("retry", delay)

    def _later(self, source: str, delay: float | None, margin: float = 0.0) -> None:
        """Trigger `source` after `delay` seconds (None: not), replacing its last timer."""
        timer = self._timers.pop(source, None)
        if timer is not None:
            timer.cancel()
        if delay is not None:
            self._timers[source] = asyncio.get_running_loop().call_later(
                delay + margin, self._trigger, source)

    def cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
