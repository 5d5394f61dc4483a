"""/healthz, /readyz and /metrics for the watch daemon.

Served by the standard library's `http.server` on a thread of its own: three GET routes do
not justify an async web framework, whose import alone would cost the daemon a sixth of its
memory. The handlers only read the daemon's state (a readiness callback and the metrics
registry, which is thread-safe).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.errors import SettingsError
from reconciler.metrics import Metrics

#: returns (ready, reasons it is not)
Readiness = Callable[[], tuple[bool, list[str]]]


class HttpServer:
    def __init__(self, host: str, port: int, metrics: Metrics, readiness: Readiness):
        self.host, self.port = host, port
        self._metrics, self._readiness = metrics, readiness
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> int:
        """Start serving; returns the bound port (useful with port 0 in tests)."""
        try:
            server = ThreadingHTTPServer((self.host, self.port), self._handler())
        except OSError as exc:
            raise SettingsError(
                f"cannot serve HTTP on {self.host}:{self.port}: {exc.strerror or exc}; "
                "choose another --http-port (0 turns the endpoints off)"
            ) from exc
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5},
            name="http", daemon=True,
        )
        self._thread.start()
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        metrics, readiness = self._metrics, self._readiness

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    # Answering at all proves the process runs: that is what liveness means.
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ready, reasons = readiness()
                    if ready:
                        self._send(200, b"ready\n")
                    else:
                        self._send(503, ("not ready: " + "; ".join(reasons) + "\n").encode())
                elif path == "/metrics":
                    self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found: try /healthz, /readyz or /metrics\n")

            def _send(self, status: int, body: bytes,
                      content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Probes every few seconds are not events worth a log line."""

        return Handler
