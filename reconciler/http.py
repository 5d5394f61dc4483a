"""/healthz, /readyz and /metrics for the watch daemon.

Served by the standard library's `http.server` on a thread of its own: three GET routes do
not justify an async web framework, whose import alone would cost the daemon a sixth of its
memory. The handlers only read the daemon's state (a readiness callback and the metrics
registry, which is thread-safe).

Because the thread would answer even while the daemon's event loop is stuck, /healthz does
not just answer: a task on the loop stamps a heartbeat (every `stall_s / 10`), and /healthz
fails (503) once the last stamp is older than `stall_s` (LOOP_STALL_S, 10 s, by default).

The host may be IPv4 or IPv6 (`::1`, `[::1]`); `::` listens on IPv6 and IPv4 both.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.errors import SettingsError
from reconciler.metrics import Metrics

#: returns (ready, reasons it is not)
Readiness = Callable[[], tuple[bool, list[str]]]
#: returns lines that /readyz adds whatever the answer (the role: leader or standby)
About = Callable[[], list[str]]

#: /healthz fails when the event loop has not run for this long (seconds)
LOOP_STALL_S = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # "::" takes IPv4 too, whatever the system's default (Python's own http.server
            # does the same); for any other IPv6 address the option changes nothing.
            with contextlib.suppress(OSError, AttributeError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _Server6(_Server):
    address_family = socket.AF_INET6


def bind_address(host: str) -> tuple[socket.AddressFamily, str]:
    """The socket family and address for `host` ("[::1]" and "::1" are both IPv6)."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host


class HttpServer:
    def __init__(self, host: str, port: int, metrics: Metrics, readiness: Readiness,
                 stall_s: float = LOOP_STALL_S, about: About | None = None):
        self.host, self.port = host, port
        self._metrics, self._readiness = metrics, readiness
        self._stall_s = stall_s
        self._beat = time.monotonic()
        self._heartbeat: asyncio.Task[None] | None = None
        self._about = about or (lambda: [])
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> int:
        """Start serving; returns the bound port (useful with port 0 in tests)."""
        family, address = bind_address(self.host)
        server_class = _Server6 if family == socket.AF_INET6 else _Server
        try:
            server = server_class((address, self.port), self._handler())
        except (OSError, UnicodeError) as exc:
            shown = f"[{address}]" if family == socket.AF_INET6 else address
            reason = getattr(exc, "strerror", None) or exc
            raise SettingsError(
                f"cannot serve HTTP on {shown}:{self.port}: {reason}; "
                "choose another --http-port or --http-host (port 0 turns the endpoints off)"
            ) from exc
        self._server = server
        self.port = int(server.server_address[1])
        self._beat = time.monotonic()
        self._heartbeat = asyncio.create_task(self._stamp(), name="heartbeat")
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5},
            name="http", daemon=True,
        )
        self._thread.start()
        return self.port

    async def _stamp(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(self._stall_s / 10)

    def loop_stalled_s(self) -> float | None:
        """Seconds since the event loop last ran the heartbeat, when above the limit."""
        age = time.monotonic() - self._beat
        return age if age > self._stall_s else None

    async def stop(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        metrics, readiness, stalled = self._metrics, self._readiness, self.loop_stalled_s
        about = self._about
        limit = self._stall_s

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    # This thread answers even when the daemon is stuck: ask the loop's
                    # heartbeat instead.
                    age = stalled()
                    if age is None:
                        self._send(200, b"ok\n")
                    else:
                        self._send(503, f"event loop stalled: no heartbeat for {age:.1f} s "
                                        f"(limit {limit:g} s)\n".encode())
                elif path == "/readyz":
                    ready, reasons = readiness()
                    extra = "".join(f"{line}\n" for line in about())
                    if ready:
                        self._send(200, f"ready\n{extra}".encode())
                    else:
                        self._send(503, ("not ready: " + "; ".join(reasons) + "\n"
                                         + extra).encode())
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
