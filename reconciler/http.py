"""/healthz, /readyz and /metrics for the watch daemon (aiohttp, already a dependency of
nats-py)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.errors import SettingsError
from reconciler.metrics import Metrics

#: returns (ready, reasons it is not)
Readiness = Callable[[], tuple[bool, list[str]]]


class HttpServer:
    def __init__(self, host: str, port: int, metrics: Metrics, readiness: Readiness):
        self.host, self.port = host, port
        self._metrics, self._readiness = metrics, readiness
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Start serving; returns the bound port (useful with port 0 in tests)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise SettingsError(
                f"cannot serve HTTP on {self.host}:{self.port}: {exc.strerror or exc}; "
                "choose another --http-port (0 turns the endpoints off)"
            ) from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        # Answering at all proves the event loop runs: that is what liveness means here.
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, reasons = self._readiness()
        if ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: " + "; ".join(reasons) + "\n")

    async def _metrics_handler(self, _: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
