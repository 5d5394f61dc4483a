"""The HTTP endpoints on their own: liveness is the event loop's heartbeat, and IPv6 hosts."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from reconciler.errors import SettingsError
from reconciler.http import HttpServer
from reconciler.metrics import Metrics


def get(host: str, port: int, path: str = "/healthz") -> tuple[int, str]:
    url_host = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{url_host}:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def server(host: str = "127.0.0.1", stall_s: float = 10.0) -> HttpServer:
    return HttpServer(host, 0, Metrics(), lambda: (True, []), stall_s=stall_s)


def poll(host: str, port: int, status: int, timeout: float = 20) -> tuple[int, str]:
    """GET /healthz until it answers `status`; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get(host, port)
        if answer[0] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


async def test_healthz_fails_while_the_event_loop_is_blocked_and_recovers() -> None:
    http = server(stall_s=0.5)
    port = await http.start()
    try:
        assert await asyncio.to_thread(get, "127.0.0.1", port) == (200, "ok\n")
        blocked, release = threading.Event(), threading.Event()
        answers: list[tuple[int, str]] = []

        def stuck() -> None:
            """A synchronous call on the loop: nothing else runs there until it returns."""
            blocked.set()
            release.wait(30)

        def probe() -> None:
            blocked.wait(30)
            answers.append(poll("127.0.0.1", port, 503))
            release.set()

        prober = threading.Thread(target=probe)
        prober.start()
        asyncio.get_running_loop().call_soon(stuck)
        await asyncio.sleep(0)  # the loop runs `stuck` and stays there until the probe saw 503
        await asyncio.to_thread(prober.join, 30)
        status, body = answers[0]
        assert status == 503, body
        assert body.startswith("event loop stalled: no heartbeat for ")
        assert body.endswith(" s (limit 0.5 s)\n")
        assert await asyncio.to_thread(poll, "127.0.0.1", port, 200) == (200, "ok\n")
    finally:
        await http.stop()


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) here")


@needs_ipv6
@pytest.mark.parametrize("host", ["::1", "[::1]"])
async def test_serves_on_ipv6_loopback(host: str) -> None:
    http = server(host)
    port = await http.start()
    try:
        assert await asyncio.to_thread(get, "::1", port) == (200, "ok\n")
    finally:
        await http.stop()


@needs_ipv6
async def test_all_addresses_means_ipv6_and_ipv4() -> None:
    http = server("::")
    port = await http.start()
    try:
        assert await asyncio.to_thread(get, "::1", port) == (200, "ok\n")
        assert await asyncio.to_thread(get, "127.0.0.1", port) == (200, "ok\n")
    finally:
        await http.stop()


@needs_ipv6
async def test_ipv6_port_in_use_names_the_address() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        http = HttpServer("::1", port, Metrics(), lambda: (True, []))
        with pytest.raises(SettingsError, match=rf"cannot serve HTTP on \[::1\]:{port}: "):
            await http.start()
