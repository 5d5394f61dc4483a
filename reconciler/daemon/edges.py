"""What watch mode runs beside its root tasks: the embedded nats-server (`--embedded`) and
the HTTP endpoints. Started before the first pass, stopped after the last."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from reconciler.embedded import EmbeddedServer
from reconciler.http import HttpServer
from reconciler.metrics import Metrics
from reconciler.settings import Settings

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")


class Edges:
    def __init__(self) -> None:
        self.embedded: EmbeddedServer | None = None
        self.http: HttpServer | None = None

    async def start(self, s: Settings, metrics: Metrics,
                    readiness: Callable[[], tuple[bool, list[str]]],
                    about: Callable[[], list[str]]) -> Settings:
        """Start what `s` asks for; the settings to go on with (with `--embedded`, only
        ever the server we started, never another one in the URL list)."""
        try:
            if s.embedded:
                self.embedded = EmbeddedServer(s.connect.servers[0], s.embedded_dir)
                await self.embedded.start()
                s = replace(s, connect=replace(s.connect, servers=(self.embedded.url,)))
            if s.http_port:
                self.http = HttpServer(s.http_host, s.http_port, metrics, readiness,
                                       about=about)
                port = await self.http.start()
                log.info("http_listening", host=s.http_host, port=port)
        except BaseException:
            await self.stop()
            raise
        return s

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.embedded is not None:
            await self.embedded.stop()
