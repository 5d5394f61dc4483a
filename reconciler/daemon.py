"""Watch mode: keep the server equal to the manifests until stopped.

Root tasks (when one fails, all stop):

    file watcher ─┐
    advisories  ──┤
    resync timer ─┼─> trigger() ─> reconcile loop: one pass at a time; triggers arriving
    settle timer ─┤                during a pass fold into one more pass
    reconnects  ──┘
    embedded nats-server (with --embedded): its exit stops the daemon
    lease keeper ──> trigger() when this process becomes the leader
    HTTP: /healthz /readyz /metrics

Triggers only say "look again": every pass loads all manifests and reconciles the whole
set. A manifest file whose new version may be half written is held back (`settle`): its
last accepted version stands until the file has been quiet for the settle period, and the
settle timer starts the pass that looks again. Signal handlers only set the stop event.

With a lease (the default), only its holder applies; the others are standbys whose passes
plan only (metrics, events and /readyz stay true). A pass applies only when a fresh read of
the lease, made after planning, shows our revision, and every single write checks the
lease's deadline first (`lease.Fenced`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from watchfiles import awatch

from reconciler import jetstream
from reconciler.conflicts import Conflicts
from reconciler.embedded import EmbeddedServer
from reconciler.errors import ConnectFailed, JetStreamError
from reconciler.http import HttpServer
from reconciler.lease import Change, Holder, Lease
from reconciler.ledger import Ledger
from reconciler.manifest import LoadResult, discover, load_manifests
from reconciler.metrics import Metrics
from reconciler.model import (
    LEASE_STREAM,
    Action,
    Advisory,
    Degraded,
    Plan,
    Policy,
    Problem,
    Status,
    StreamSpec,
)
from reconciler.reconcile import JetStreamAPI, Result, compute_plan, new_reconcile_id, reconcile
from reconciler.redact import redact_servers
from reconciler.settings import Settings
from reconciler.settle import STABLE_S, Files, Snapshot, review, snapshot
from reconciler.units import count_of

log = structlog.get_logger("reconciler.daemon")

#: how long after our own change a stream advisory for that stream is taken as its echo
OWN_ECHO_S = 2.0
STOP_GRACE_S = 3.5
#: how long a stream advisory waits for the API advisory that names who made the change (it
#: normally follows within milliseconds and starts the pass at once)
ACTOR_GRACE_S = 0.25
#: a held file is looked at again this long after its settle period ends
SETTLE_MARGIN_S = 0.01
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: a pass that failed or could not read a declared stream is followed by another this long
#: after it, the wait doubling with each such pass in a row, up to --resync
RETRY_FIRST_S = 1.0


class Daemon:
    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._triggers: set[str] = set()
        self._ledger = Ledger()
        self._read_at = 0
        self._holds: dict[str, str] = {}
        self._conflicts = Conflicts(settings.conflict_window_s, time.monotonic)
        self._own_echo: dict[str, float] = {}
        self._settling: dict[str, asyncio.TimerHandle] = {}
        self._js: jetstream.JetStream | None = None
        self._connected = False
        self._files = Files(settings.settle_s)
        self._by_file: dict[str, tuple[StreamSpec, ...]] = {}
        self._held: dict[str, str] = {}
        """Files whose new version is held back (file: the digest last reported)."""
        self._settle_timer: asyncio.TimerHandle | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self._retry_s = RETRY_FIRST_S
        self._problems: tuple[Problem, ...] = ()
        self._last_loaded: dict[str, tuple[Any, Policy]] = {}
        self._last_result_ok: bool | None = None
        self._degraded: tuple[Degraded, ...] = ()
        self._http: HttpServer | None = None
        self._embedded: EmbeddedServer | None = None
        self._lease: Lease | None = None
        self.passes = 0
        """Reconcile passes finished so far (tests await progress through `wait_passes`)."""
        self._pass_done = asyncio.Condition()

    # --- triggers ----------------------------------------------------------------------------

    def trigger(self, source: str) -> None:
        self._triggers.add(source)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _on_advisory(self, advisory: Advisory) -> None:
        if advisory.own or not advisory.stream or advisory.stream == LEASE_STREAM:
            return
        stream = advisory.stream
        if advisory.kind == "api":
            parts = advisory.subject.split(".")
            if len(parts) < 5 or parts[3] not in ("CREATE", "UPDATE", "DELETE"):
                return
            self._ledger.note(stream, advisory.actor, advisory.config)
            pending = self._settling.pop(stream, None)
            if pending is not None:
                pending.cancel()
            log.debug("advisory", kind="api", stream=stream, actor=advisory.actor)
            self.trigger("server")
            return
        if time.monotonic() < self._own_echo.pop(stream, 0.0):
            return  # the server telling us about our own change
        # The server sends a stream advisory just before the API advisory that names the
        # client; wait a moment for the name, or go without it.
        if stream not in self._settling:
            self._settling[stream] = asyncio.get_running_loop().call_later(
                ACTOR_GRACE_S, self._settled, stream)

    def _settled(self, stream: str) -> None:
        self._settling.pop(stream, None)
        log.debug("advisory", kind="stream", stream=stream)
        self.trigger("server")

    # --- readiness ---------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, list[str]]:
        reasons = []
        if not self._connected:
            reasons.append("not connected to NATS")
        if self._problems:
            first = self._problems[0]
            reasons.append(f"{count_of(len(self._problems), 'manifest problem')} (first: {first})")
        if self._last_result_ok is None:
            reasons.append("no reconcile has finished yet")
        elif not self._last_result_ok:
            reasons.append("the last reconcile failed")
        if self._degraded:
            reasons.append("degraded: " + "; ".join(str(d) for d in self._degraded))
        now = time.monotonic()
        reasons.extend(c.reason(now) for c in self._conflicts.active())
        if self._lease is not None and self._lease.error:
            reasons.append(self._lease.error)
        return not reasons, reasons

    def about(self) -> list[str]:
        """The role of this process, for /readyz: a healthy standby is ready too."""
        if self._lease is None:
            return ["leader: no lease (--no-lease), this process writes"]
        return [self._lease.describe()]

    def _on_lease(self, change: Change) -> None:
        leading = change.kind == "elected" and change.us
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.trigger("leader")

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP (the terminal closed) stops like SIGTERM, so the embedded server stops too.
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.stop)
        try:
            return await self._run()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    async def _run(self) -> int:
        s = self.settings
        log.info("watch_started", paths=list(s.paths), resync_s=s.resync_s,
                 http_port=s.http_port, servers=redact_servers(s.connect.servers),
                 embedded=s.embedded, identity=s.identity, client_name=s.connect.name,
                 lease=s.lease, lease_ttl_s=s.lease_ttl_s)
        try:
            if s.embedded:
                self._embedded = EmbeddedServer(s.connect.servers[0], s.embedded_dir)
                await self._embedded.start()
                # only ever the server we started, never another one in the URL list
                s = self.settings = replace(
                    s, connect=replace(s.connect, servers=(self._embedded.url,)))
            if s.http_port:
                self._http = HttpServer(s.http_host, s.http_port, self.metrics, self.readiness,
                                        about=self.about)
                port = await self._http.start()
                log.info("http_listening", host=s.http_host, port=port)
        except BaseException:
            await self._shutdown()
            raise
        tasks = {
            asyncio.create_task(self._reconcile_loop(), name="reconcile"),
            asyncio.create_task(self._watch_files(), name="files"),
            asyncio.create_task(self._resync_loop(), name="resync"),
        }
        if self._embedded is not None:
            tasks.add(asyncio.create_task(self._embedded.wait_exited(), name="embedded"))
        stopper = asyncio.create_task(self._stop.wait(), name="stop")
        code = 0
        try:
            done, _ = await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    log.error("watch_failed", task=task.get_name(), error=str(exc),
                              exc_info=exc)
                    code = 1
            self._stop.set()
            self._wake.set()
            reconcile_task = next(t for t in tasks if t.get_name() == "reconcile")
            # let the pass in flight finish, then stop everything else
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(reconcile_task), STOP_GRACE_S)
        finally:
            for task in (*tasks, stopper):
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            await self._shutdown()
        log.info("watch_stopped", passes=self.passes, exit_code=code)
        return code

    async def _shutdown(self) -> None:
        if self._lease is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._lease.release(), 1)
        if self._settle_timer is not None:
            self._settle_timer.cancel()
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._js is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._js.close(), 1)
            self._js = None
        if self._http is not None:
            await self._http.stop()
        if self._embedded is not None:
            await self._embedded.stop()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _connect(self) -> jetstream.JetStream | None:
        delay = 0.25
        while not self._stop.is_set():
            try:
                js = await jetstream.connect(
                    self.settings.connect, reconnect=True,
                    on_disconnected=self._on_disconnected, on_reconnected=self._on_reconnected,
                )
            except ConnectFailed as exc:
                log.warning("nats_unreachable", error=str(exc), retry_in_s=delay)
                if await self._sleep(delay):
                    return None
                delay = min(delay * 2, 30.0)
                continue
            self._set_connected(True)
            log.info("nats_connected", servers=redact_servers(self.settings.connect.servers))
            await js.watch_advisories(self._on_advisory)
            return js
        return None

    def _set_connected(self, up: bool) -> None:
        self._connected = up
        self.metrics.connected.set(1 if up else 0)

    async def _on_disconnected(self) -> None:
        if self._connected:
            self._set_connected(False)
            log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        self._set_connected(True)
        log.info("nats_reconnected")
        self.trigger("reconnect")

    async def _reconcile_loop(self) -> None:
        self._js = await self._connect()
        if self._js is None:
            return
        keeper = await self._start_lease(self._js)
        try:
            self.trigger("startup")
            while not self._stop.is_set():
                await self._wake.wait()
                self._wake.clear()
                if self._stop.is_set():
                    return
                triggers, self._triggers = self._triggers, set()
                await self._pass(triggers)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def _start_lease(self, js: jetstream.JetStream) -> asyncio.Task[None] | None:
        """Take the lease if it is free (so the first pass knows whether it may write), then
        keep it, or watch for it, in a task of its own."""
        s = self.settings
        if s.lease is None:
            self.metrics.leader.set(1)
            return None
        self._lease = Lease(js, s.lease, Holder(s.identity), s.lease_ttl_s,
                            on_change=self._on_lease)
        await self._lease.start()
        return asyncio.create_task(self._lease.run(), name="lease")

    async def _pass(self, triggers: set[str]) -> None:
        assert self._js is not None
        reconcile_id = new_reconcile_id()
        trigger = ",".join(sorted(triggers)) or "wake"
        started = time.monotonic()
        result: Result | None = None
        specs: list[StreamSpec] = []
        try:
            specs, changed = await self._desired()
            plan = await self._plan(specs)
            if changed:
                specs, plan = await self._review(specs, plan, changed)
            sources = self._sources_of(specs)
            js: JetStreamAPI = self._js
            writes = True
            if self._lease is not None:
                writes = await self._lease.confirm()  # a fresh read: the revision is ours
                js = self._lease.fence(self._js)
            result = await reconcile(
                js, specs, allow_data_loss=self.settings.allow_data_loss,
                concurrency=self.settings.concurrency, trigger=trigger, sources=sources,
                ledger=self._ledger, actor_grace_s=ACTOR_GRACE_S, reconcile_id=reconcile_id,
                holds=self._holds, before_apply=self._expect_echo, plan=plan,
                read_at=self._read_at, started=started, apply=writes,
            )
        except asyncio.CancelledError:
            raise
        except JetStreamError as exc:
            log.error("reconcile_failed", reconcile_id=reconcile_id, error=str(exc))
        finally:
            self.metrics.reconcile_duration.observe(time.monotonic() - started)
            self._schedule_settle()
        self._record(result)
        self._remember_loaded(specs, result)
        self._track_conflicts(result)
        self._schedule_retry(reconcile_id)
        self.passes += 1
        async with self._pass_done:
            self._pass_done.notify_all()

    async def wait_passes(self, count: int) -> None:
        """Wait until at least `count` passes have finished."""
        async with self._pass_done:
            await self._pass_done.wait_for(lambda: self.passes >= count)

    async def _plan(self, specs: list[StreamSpec]) -> Plan:
        assert self._js is not None
        self._read_at = self._ledger.position()  # what the live configs read next account for
        self._holds = self._conflicts.holds()
        return await compute_plan(self._js, specs, allow_data_loss=self.settings.allow_data_loss,
                                  concurrency=self.settings.concurrency, holds=self._holds)

    def _read_manifests(self) -> tuple[dict[str, Snapshot | None], LoadResult]:
        """Every manifest file's snapshot, taken before the load (see `_review`)."""
        before = {str(f): snapshot(f) for f in discover(self.settings.paths)}
        return before, load_manifests(self.settings.paths)

    async def _desired(self) -> tuple[list[StreamSpec], dict[str, Snapshot | None]]:
        """The streams to reconcile, and the files whose new version is not accepted yet
        (with their snapshots from before the load).

        A file still as it was when last accepted counts with its accepted streams; a file
        that fails validation keeps its last accepted streams; a changed valid file counts
        with its new streams until `_review` says otherwise."""
        before, loaded = await asyncio.to_thread(self._read_manifests)
        self._files.look(before, forget_others=True)
        loaded_by_file: dict[str, list[StreamSpec]] = {}
        for spec in loaded.specs:
            loaded_by_file.setdefault(spec.location.file, []).append(spec)
        changed: dict[str, Snapshot | None] = {}
        self._by_file = {}
        for f in loaded.files:
            snap = before.get(f)
            if f in loaded.failed_files or self._files.is_accepted(f, snap):
                self._by_file[f] = self._files.accepted_specs(f)
            else:
                self._by_file[f] = tuple(loaded_by_file.get(f, ()))
                changed[f] = snap
        self._held = {f: d for f, d in self._held.items() if f in changed}
        if loaded.problems != self._problems:
            for problem in loaded.problems:
                log.error("manifest_invalid", file=problem.location.file,
                          line=problem.location.line, column=problem.location.column,
                          field=problem.path, error=str(problem))
            if self._problems and not loaded.problems:
                log.info("manifests_valid_again")
        self._problems = loaded.problems
        self.metrics.manifests_valid.set(0 if loaded.problems else 1)
        self.metrics.manifest_problems.set(len(loaded.problems))
        return self._merged(), changed

    def _merged(self) -> list[StreamSpec]:
        """The streams of every file, in file order; a name declared twice counts once."""
        seen: set[str] = set()
        specs = []
        for file in sorted(self._by_file):
            for spec in self._by_file[file]:
                if spec.name not in seen:
                    seen.add(spec.name)
                    specs.append(spec)
        return specs

    async def _review(
        self, specs: list[StreamSpec], plan: Plan, changed: Mapping[str, Snapshot | None]
    ) -> tuple[list[StreamSpec], Plan]:
        """Accept or hold each changed file's new version (`settle.review`); when one is
        held, its last accepted streams stand, and the plan is made again."""
        after = await asyncio.to_thread(_read_again, changed)
        self._files.look(after)
        held: dict[str, tuple[str, ...]] = {}
        for file, snap in changed.items():
            again = after.get(file)
            stable = snap is not None and snap == again
            file_specs = self._by_file[file]
            if stable and self._files.settled(file):
                reasons: tuple[str, ...] = ()
            else:
                reasons = review(
                    [p for p in plan.streams
                     if p.location is not None and p.location.file == file],
                    {s.name: s for s in file_specs}, self._files.baseline(),
                    stable=stable, complete=again is not None and again.complete)
            if reasons:
                held[file] = reasons
            else:
                assert snap is not None
                self._files.accept(file, snap, file_specs)
        digests = {f: snap.digest if (snap := after.get(f)) is not None else "" for f in held}
        for file, reasons in held.items():
            if self._held.get(file) != digests[file]:
                log.warning("manifest_settling", file=file, reasons=list(reasons),
                            streams=[s.name for s in self._by_file[file]],
                            settle_s=self._files.settle_s,
                            retry_in_s=round(self._files.due_in(file), 3))
            self._by_file[file] = self._files.accepted_specs(file)
        self._held = digests
        if not held:
            return specs, plan
        specs = self._merged()
        return specs, await self._plan(specs)

    def _schedule_settle(self) -> None:
        """Look again when the first held file will have been quiet for the settle period."""
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        if self._held:
            delay = min(self._files.due_in(f) for f in self._held) + SETTLE_MARGIN_S
            self._settle_timer = asyncio.get_running_loop().call_later(
                delay, self.trigger, "settle")

    def _schedule_retry(self, reconcile_id: str) -> None:
        """After a pass that failed (the connection dropped, no meta leader answered, a write
        failed) or could not read a declared stream (its leader is being elected), look again
        soon, waiting twice as long after each such pass in a row; a clean pass ends it."""
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        if self._last_result_ok and not self._degraded:
            self._retry_s = RETRY_FIRST_S
            return
        delay = min(self._retry_s, self.settings.resync_s)
        self._retry_s = delay * 2
        log.info("reconcile_retry", reconcile_id=reconcile_id, retry_in_s=delay,
                 reason="degraded" if self._last_result_ok else "failed")
        self._retry_timer = asyncio.get_running_loop().call_later(delay, self.trigger, "retry")

    def _sources_of(self, specs: list[StreamSpec]) -> Mapping[str, str]:
        """Per stream: `manifest` when its manifest changed since the stream was last in
        sync, else `server` (the live side moved)."""
        return {
            s.name: "manifest" if self._last_loaded.get(s.name) != (s.config, s.policy)
            else "server"
            for s in specs
        }

    def _remember_loaded(self, specs: list[StreamSpec], result: Result | None) -> None:
        """The manifest of each stream the pass left in sync (so that a failed, blocked or
        report-only stream's manifest change is still told as one next time)."""
        if result is None:
            return
        in_sync = {o.name for o in result.outcomes
                   if o.status in (Status.CREATED, Status.UPDATED, Status.UNCHANGED)}
        declared = {s.name for s in specs}
        self._last_loaded = {n: v for n, v in self._last_loaded.items() if n in declared}
        for spec in specs:
            if spec.name in in_sync:
                self._last_loaded[spec.name] = (spec.config, spec.policy)

    def _expect_echo(self, plan: Plan) -> None:
        """The server will announce the changes we are about to make; those advisories are
        no news. (Another client's change is still seen through its API advisory.)"""
        until = time.monotonic() + OWN_ECHO_S
        for stream in plan.streams:
            if stream.action in (Action.CREATE, Action.UPDATE):
                self._own_echo[stream.name] = until

    def _track_conflicts(self, result: Result | None) -> None:
        """Count each outside change we put back; a fight pauses healing of its stream (the
        plan then only reports it) and a pass is due when the pause ends."""
        if result is not None:
            outside = {d.stream: d for d in result.drifts if d.source == "server"}
            fought = {c.stream for c in self._conflicts.active()}
            for outcome in result.outcomes:
                drift = outside.get(outcome.name)
                if outcome.status not in (Status.CREATED, Status.UPDATED) or (
                    drift is None and outcome.name not in fought
                ):
                    continue
                # the heal that ends a pause puts back a drift already logged during it
                conflict = self._conflicts.healed(
                    outcome.name, drift.actor if drift else None, drift.fields if drift else ())
                if conflict is not None:
                    log.warning("conflict_detected", stream=conflict.stream,
                                fields=list(conflict.fields), actor=conflict.actor,
                                count=conflict.count, paused_s=round(conflict.pause_s, 1))
                    self.metrics.conflicts_detected.labels(stream=conflict.stream).inc()
                    asyncio.get_running_loop().call_later(
                        conflict.pause_s, self.trigger, "conflict")
        self.metrics.conflicts.set(len(self._conflicts.active()))

    def _record(self, result: Result | None) -> None:
        m = self.metrics
        if result is None:
            self._last_result_ok = False
            self._degraded = ()
            m.reconciles.labels(result="failed").inc()
            return
        self._degraded = result.degraded
        states = {"in_sync": 0, "drifted": 0, "blocked": 0, "degraded": len(result.degraded)}
        for drift in result.drifts:
            m.drift_events.labels(stream=drift.stream, source=drift.source or "server").inc()
        for stream in result.plan.streams:
            if not result.outcomes:  # a standby plans only
                state = {Action.NOOP: "in_sync", Action.BLOCKED: "blocked"}.get(
                    stream.action, "drifted")
                states[state] += 1
        for outcome in result.outcomes:
            if outcome.status is Status.BLOCKED:
                m.changes_blocked.labels(stream=outcome.name).inc()
                states["blocked"] += 1
            elif outcome.status in (Status.REPORTED, Status.FAILED):
                states["drifted"] += 1
            else:
                states["in_sync"] += 1
        for state, count in states.items():
            m.streams.labels(state=state).set(count)
        self._last_result_ok = not result.failed
        if result.failed or result.degraded:
            m.reconciles.labels(result="failed").inc()
        elif result.blocked:
            m.reconciles.labels(result="blocked").inc()
        else:
            m.reconciles.labels(result="success").inc()
        if not result.failed and not result.degraded:
            m.last_success.set(time.time())

    async def _watch_files(self) -> None:
        targets = [_watch_target(Path(p)) for p in self.settings.paths]
        directories = sorted({str(d) for d, _ in targets})
        matchers = [m for _, m in targets]

        def relevant(_: Any, path: str) -> bool:
            # No suffix filter: a ConfigMap update is a rename of the `..data` symlink.
            return any(m(path) for m in matchers)

        stop = asyncio.Event()
        stopper = asyncio.create_task(self._relay_stop(stop))
        try:
            async for changes in awatch(*directories, stop_event=stop, watch_filter=relevant,
                                        debounce=250, step=50, rust_timeout=0,
                                        yield_on_timeout=False, recursive=True):
                log.debug("files_changed", files=sorted(str(p) for _, p in changes)[:20])
                self.trigger("manifest")
        finally:
            stopper.cancel()

    async def _relay_stop(self, event: asyncio.Event) -> None:
        await self._stop.wait()
        event.set()

    async def _resync_loop(self) -> None:
        while not await self._sleep(self.settings.resync_s):
            self.trigger("resync")


def _watch_target(path: Path) -> tuple[Path, Callable[[str], bool]]:
    """The directory to watch for `path`, and which event paths in it matter.

    A directory is watched through itself, a file through its directory (editors save by
    renaming a new file over the old one), a path that does not exist yet through its
    nearest existing ancestor. When the path runs through a symbolic link (git-sync
    publishes each commit by swapping a `current` link; a ConfigMap volume swaps `..data`),
    the directory holding the first link is watched, so that the swap is seen.

    Either way only the events that can change what `path` holds count (`_relevant`), so
    git-sync's own writes beside its link (`.git/` on every fetch, the next worktree before
    its swap) start no reconcile, even when the watch began before the first checkout.
    """
    path = path.absolute()
    wanted = str(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    directory = path if path.is_dir() else path.parent
    for ancestor in [*reversed(path.parents), path]:
        if ancestor.is_symlink():
            directory = ancestor.parent
            break
    return directory, partial(_relevant, wanted)


def _relevant(path: str, event: str) -> bool:
    """Whether a change at `event` can change what `path` holds, as things are now: it is on
    `path`, under it or one of its ancestors (created, renamed), on a link `path` runs
    through (swapped), or under what `path` resolves to."""
    links, real = _resolve(path)
    return (event in links or _within(event, path) or _within(path, event)
            or _within(os.path.realpath(event), real))


def _resolve(path: str) -> tuple[set[str], str]:
    """The symbolic links met while resolving absolute `path`, as written, and its real path."""
    links: set[str] = set()
    pending = [part for part in path.split(os.sep) if part]
    current = os.sep
    hops = 0
    while pending:
        part = pending.pop(0)
        candidate = os.path.join(current, part)
        if os.path.islink(candidate) and hops < 40:
            hops += 1
            links.add(candidate)
            target = os.readlink(candidate)
            if os.path.isabs(target):
                current = os.sep
            pending[:0] = [p for p in target.split(os.sep) if p]
        elif part == "..":
            current = os.path.dirname(current)
        elif part != ".":
            current = candidate
    return links, current


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _read_again(files: Mapping[str, Snapshot | None]) -> dict[str, Snapshot | None]:
    """Snapshots of `files` taken at least `STABLE_S` after each last changed."""
    out = {}
    for file in files:
        snap = snapshot(file)
        if snap is not None:
            age = time.time() - snap.changed_ns / 1e9
            if age < STABLE_S:
                time.sleep(STABLE_S - max(age, 0.0))
                snap = snapshot(file)
        out[file] = snap
    return out


async def run(settings: Settings) -> int:
    return await Daemon(settings).run()
