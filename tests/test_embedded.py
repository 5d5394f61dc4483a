"""`watch --embedded` end to end: it reconciles only the server it started, and that server
never outlives it. Real processes, real ports, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import structlog

from reconciler import jetstream
from reconciler.daemon import Daemon
from reconciler.errors import EmbeddedServerError
from reconciler.model import ConnectOptions
from reconciler.settings import Settings
from reconciler.testing import NatsServer, free_port, stop_process
from tests.repo import committed_copy


def watch_embedded(cwd: Path, port: int) -> subprocess.Popen[str]:
    """`jetstream-reconciler watch --embedded config/` in `cwd` (data in cwd), JSON logs."""
    committed_copy(cwd, "config")
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{port}"}
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "watch", "--embedded", "--http-port", "0",
         "--log-format", "json", "config"],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def read_until(stream: IO[str], event: str, timeout: float = 30) -> list[dict[str, Any]]:
    """JSON events up to and including the first `event` (AssertionError if it never comes)."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if line.startswith("{"):
            events.append(json.loads(line))
            if events[-1]["event"] == event:
                return events
    raise AssertionError(f"no {event} event: {events}")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it has stopped running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def until_gone(pid: int, timeout: float = 10) -> float:
    """Seconds until `pid` stopped running; AssertionError after `timeout`."""
    started = time.monotonic()
    while alive(pid):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"PID {pid} still running after {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def daemon_proc() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; stopped whatever happens."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        stop_process(proc)


async def stream_names(server: NatsServer) -> list[str]:
    async with await jetstream.connect(ConnectOptions(servers=(server.url,))) as js:
        listing = await js.list_streams()
        return sorted([*(s.name for s in listing.streams), *listing.unreadable])


async def test_port_taken_by_another_server_exits_1_and_leaves_it_alone(
    tmp_path: Path, nats_server: NatsServer, daemon_proc: list[subprocess.Popen[str]]
) -> None:
    proc = watch_embedded(tmp_path, nats_server.port)
    daemon_proc.append(proc)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    errors = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert errors == [
        f"error: --embedded: port {nats_server.port} on 127.0.0.1 is already in use by another "
        "server; stop it, or set NATS_URL to nats://127.0.0.1:PORT with a free port"
    ]
    assert await stream_names(nats_server) == []
    assert nats_server.proc is not None and nats_server.proc.poll() is None


async def test_a_server_that_takes_the_port_after_the_check_is_never_reconciled(
    tmp_path: Path, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the port check cannot see: the port looks free, the other server has it."""
    monkeypatch.setattr("reconciler.embedded.port_is_free", lambda host, port: True)
    committed_copy(tmp_path, "config")
    settings = Settings(paths=(str(tmp_path / "config"),), http_port=0, embedded=True,
                        embedded_dir=str(tmp_path / "data"),
                        connect=ConnectOptions(servers=(nats_server.url,)))
    with pytest.raises(EmbeddedServerError, match=f"port {nats_server.port} on 127.0.0.1 is "
                                                  "already in use by another server"):
        await Daemon(settings).serve()
    assert await stream_names(nats_server) == []


async def test_the_embedded_server_dying_stops_the_daemon(tmp_path: Path) -> None:
    committed_copy(tmp_path, "config")
    port = free_port()
    settings = Settings(paths=(str(tmp_path / "config"),), http_port=0, embedded=True,
                        embedded_dir=str(tmp_path / "data"),
                        connect=ConnectOptions(servers=(f"nats://127.0.0.1:{port}",)))
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.serve())
    await asyncio.wait_for(daemon.wait_passes(1), 30)
    assert daemon.embedded is not None and daemon.embedded._proc is not None
    os.kill(daemon.embedded._proc.pid, signal.SIGKILL)
    assert await asyncio.wait_for(task, 30) == 1


def test_sighup_stops_the_daemon_and_its_server(
    tmp_path: Path, daemon_proc: list[subprocess.Popen[str]]
) -> None:
    proc = watch_embedded(tmp_path, free_port())
    daemon_proc.append(proc)
    assert proc.stderr is not None
    events = read_until(proc.stderr, "reconcile_finished")
    started = next(e for e in events if e["event"] == "embedded_server_started")
    assert events[-1]["counts"] == {"created": 1}
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=15) == 0
    assert not alive(started["pid"])
    assert '"embedded_server_stopped"' in proc.stderr.read()


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="PR_SET_PDEATHSIG is Linux only")
def test_kill_9_of_the_daemon_takes_its_server_down(
    tmp_path: Path, daemon_proc: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    proc = watch_embedded(tmp_path, port)
    daemon_proc.append(proc)
    assert proc.stderr is not None
    events = read_until(proc.stderr, "reconcile_finished")
    server_pid = next(e for e in events if e["event"] == "embedded_server_started")["pid"]
    proc.kill()
    proc.wait(timeout=10)
    until_gone(server_pid, timeout=10)
    # and the directory is free again: a new daemon starts there
    again = watch_embedded(tmp_path, port)
    daemon_proc.append(again)
    assert again.stderr is not None
    # the killed daemon's lease is still in the server's store: until it runs out, the new
    # daemon plans as a standby (counts by plan action), and finds the stream in sync
    assert read_until(again.stderr, "reconcile_finished")[-1]["counts"] == {"noop": 1}


def test_two_daemons_never_share_a_data_directory(
    tmp_path: Path, daemon_proc: list[subprocess.Popen[str]]
) -> None:
    first = watch_embedded(tmp_path, free_port())
    daemon_proc.append(first)
    assert first.stderr is not None
    events = read_until(first.stderr, "reconcile_finished")
    server_pid = next(e for e in events if e["event"] == "embedded_server_started")["pid"]
    second = watch_embedded(tmp_path, free_port())
    daemon_proc.append(second)
    _, stderr = second.communicate(timeout=30)
    assert second.returncode == 1
    errors = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert errors == [
        f"error: --embedded: {tmp_path / '.jetstream-reconciler'} is in use by "
        f"jetstream-reconciler PID {first.pid}, nats-server PID {server_pid}; stop that "
        "`watch --embedded` first, or run from another directory"
    ]
    assert first.poll() is None


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()
