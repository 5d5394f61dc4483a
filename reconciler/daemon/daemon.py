"""The watch daemon: its root tasks, the connection, the lease, and the loop of passes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import structlog

from reconciler import jetstream
from reconciler.daemon.connection import Connect, Connection, connect_until, sleep_unless
from reconciler.daemon.edges import Edges
from reconciler.daemon.files import watch_files
from reconciler.daemon.passes import Passes
from reconciler.daemon.triggers import CHANGES_NO_MANIFEST, Triggers, describe
from reconciler.embedded import EmbeddedServer
from reconciler.lease import Change, Holder, Lease
from reconciler.metrics import Metrics
from reconciler.model import Advisory
from reconciler.redact import redact_servers
from reconciler.settings import Settings

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")

STOP_GRACE_S = 3.5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Daemon:
    """Watch mode. `run()` until a stop signal; `serve()` is the same without installing
    signal handlers (for a caller that owns them, and tests). `connect` is replaced in
    unit tests (`reconciler.testing.fake`)."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None, *,
                 connect: Connect = jetstream.connect) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._connect_to = connect
        self._triggers = Triggers()
        self._passes = Passes(settings, self.metrics, self.trigger)
        self._js: Connection | None = None
        self._edges = Edges()
        self._lease: Lease | None = None

    @property
    def passes(self) -> int:
        """Reconcile passes finished so far (tests await progress through `wait_passes`)."""
        return self._passes.count

    async def wait_passes(self, count: int) -> None:
        """Wait until at least `count` passes have finished."""
        await self._passes.wait(count)

    @property
    def embedded(self) -> EmbeddedServer | None:
        """The nats-server this daemon started (`--embedded`), once started."""
        return self._edges.embedded

    def trigger(self, source: str) -> None:
        self._triggers.add(source)

    def stop(self) -> None:
        self._triggers.stop()

    # --- what /readyz says -------------------------------------------------------------------

    def readiness(self) -> tuple[bool, list[str]]:
        p = self._passes
        now = time.monotonic()
        others = [c.reason(now) for c in p.conflicts.active()]
        if self._lease is not None and self._lease.error:
            others.append(self._lease.error)
        reasons = p.health.reasons(p.desired.problems, others)
        return not reasons, reasons

    def about(self) -> list[str]:
        """The role of this process, for /readyz: a healthy standby is ready too."""
        if self._lease is None:
            return ["leader: no lease (--no-lease), this process writes"]
        return [self._lease.describe()]

    # --- triggers from the server ------------------------------------------------------------

    async def _on_advisory(self, advisory: Advisory) -> None:
        reaction = self._passes.correlator.heard(advisory)
        if reaction.now:
            log.debug("advisory", kind="api", stream=advisory.stream, actor=advisory.actor)
            self._triggers.add("server", advisory.stream)
        elif reaction.at is not None:
            asyncio.get_running_loop().call_later(
                reaction.at - time.monotonic(), self._grace_over, reaction.at)

    def _grace_over(self, at: float) -> None:
        """A stream advisory's wait for the API advisory naming its actor ended at `at`."""
        for stream in self._passes.correlator.due(at):
            log.debug("advisory", kind="stream", stream=stream)
            self._triggers.add("server", stream)

    def _on_lease(self, change: Change) -> None:
        leading = change.kind == "elected" and change.us
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.trigger("leader")

    async def _on_disconnected(self) -> None:
        if self._passes.health.connected:
            self._passes.health.set_connected(False)
            log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        self._passes.health.set_connected(True)
        log.info("nats_reconnected")
        self.trigger("reconnect")

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP (the terminal closed) stops like SIGTERM, so the embedded server stops too.
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.stop)
        try:
            return await self.serve()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    async def serve(self) -> int:
        """Run the root tasks until stopped or one of them fails; the exit code."""
        s = self.settings
        log.info("watch_started", paths=list(s.paths), resync_s=s.resync_s,
                 http_port=s.http_port, servers=redact_servers(s.connect.servers),
                 embedded=s.embedded, identity=s.identity, client_name=s.connect.name,
                 lease=s.lease, lease_ttl_s=s.lease_ttl_s)
        try:
            self.settings = await self._edges.start(s, self.metrics, self.readiness, self.about)
        except BaseException:
            await self._shutdown()
            raise
        tasks = {
            asyncio.create_task(self._reconcile_loop(), name="reconcile"),
            asyncio.create_task(watch_files(self.settings.paths, self._triggers.stopped,
                                            lambda: self.trigger("manifest")), name="files"),
            asyncio.create_task(self._resync_loop(), name="resync"),
        }
        if self._edges.embedded is not None:
            tasks.add(asyncio.create_task(self._edges.embedded.wait_exited(), name="embedded"))
        stopper = asyncio.create_task(self._triggers.stopped.wait(), name="stop")
        code = 0
        try:
            done, _ = await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    log.error("watch_failed", task=task.get_name(), error=str(exc),
                              exc_info=exc)
                    code = 1
            self.stop()
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
        self._passes.cancel_timers()
        if self._js is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._js.close(), 1)
            self._js = None
        await self._edges.stop()

    async def _reconcile_loop(self) -> None:
        self._js = await connect_until(
            self._triggers.stopped, self._connect_to, self.settings.connect,
            on_disconnected=self._on_disconnected, on_reconnected=self._on_reconnected)
        if self._js is None:
            return
        self._passes.health.set_connected(True)
        await self._js.watch_advisories(self._on_advisory)
        keeper = await self._start_lease(self._js)
        try:
            self.trigger("startup")
            while (triggers := await self._triggers.take()) is not None:
                await self._passes.run(self._js, self._lease, describe(triggers),
                                       changed=self._triggers.streams,
                                       manifests=not triggers <= CHANGES_NO_MANIFEST)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def _start_lease(self, js: Connection) -> asyncio.Task[None] | None:
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

    async def _resync_loop(self) -> None:
        while not await sleep_unless(self._triggers.stopped, self.settings.resync_s):
            self.trigger("resync")
