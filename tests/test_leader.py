"""Exactly one writer, end to end: `jetstream-reconciler watch` daemons as real processes on
one real nats-server, each with a DIFFERENT manifest for the same stream (what a rollout or a
ConfigMap change does to sidecars). Who wrote is read from the server's own audit trail, the
`$JS.EVENT.ADVISORY.API` advisories, which name each request's client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest

from reconciler.testing import NatsServer, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
TTL = "3s"
EVENTS = 'name: events\nsubjects: ["events.*"]\nmax_msgs: {max_msgs}\n'


@dataclass(eq=False)
class Proc:
    """A reconciler process whose JSON events are collected as they come."""

    proc: subprocess.Popen[str]
    port: int | None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return str(self.first("watch_started")["identity"])

    @property
    def client(self) -> str:
        return f"jetstream-reconciler/{self.identity}"

    def named(self, event: str, **keys: Any) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == event
                and all(e.get(k) == v for k, v in keys.items())]

    def first(self, event: str, **keys: Any) -> dict[str, Any]:
        found = self.named(event, **keys)
        assert found, (event, keys, self.events[-20:])
        return found[0]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def start(args: list[str]) -> Proc:
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", *args, "--log-format", "json"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=ROOT)
    port = int(args[args.index("--http-port") + 1]) if "--http-port" in args else None
    p = Proc(proc, port)

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                p.events.append(json.loads(line))
            except ValueError:
                p.events.append({"event": "raw", "line": line})

    threading.Thread(target=read, daemon=True).start()
    return p


def watch(server: NatsServer, manifest: Path, *extra: str) -> Proc:
    return start(["watch", str(manifest), "--server", server.url, "--http-host", "127.0.0.1",
                  "--http-port", str(free_port()), "--lease-ttl", TTL, "--resync", "60s",
                  *extra])


async def until(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> float:
    """Await `check()`; the time it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not reached within {timeout}s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@dataclass
class Write:
    client: str
    op: str
    at: float


class Audit:
    """Every successful STREAM.CREATE/UPDATE of `events`, with the client that sent it."""

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def by(self, client: str, since: float = 0.0) -> list[Write]:
        return [w for w in self.writes if w.client == client and w.at >= since]

    def clients(self, since: float = 0.0) -> list[str]:
        """Writers in order, consecutive repeats folded: [A, B] is a handover, [A, B, A]
        two writers interleaving."""
        out: list[str] = []
        for w in self.writes:
            if w.at >= since and (not out or out[-1] != w.client):
                out.append(w.client)
        return out


@pytest.fixture
async def audit(nats_server: NatsServer) -> AsyncIterator[Audit]:
    found = Audit()

    async def on_api(msg: Any) -> None:
        payload = json.loads(msg.data)
        subject = payload.get("subject", "")
        if subject not in ("$JS.API.STREAM.CREATE.events", "$JS.API.STREAM.UPDATE.events"):
            return
        if "error" in json.loads(payload.get("response") or "{}"):
            return
        found.writes.append(Write((payload.get("client") or {}).get("name", ""),
                                  subject.split(".")[3], time.monotonic()))

    nc = await nats.connect(nats_server.url, name="auditor")
    await nc.subscribe("$JS.EVENT.ADVISORY.API", cb=on_api)
    await nc.flush()
    try:
        yield found
    finally:
        await nc.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            with_continue(p)
            stop_process(p.proc)


def with_continue(p: Proc) -> None:
    """A stopped process cannot handle SIGTERM: wake it first."""
    os.kill(p.proc.pid, signal.SIGCONT)


def manifests(tmp_path: Path, *values: int) -> list[Path]:
    out = []
    for i, value in enumerate(values):
        path = tmp_path / f"m{i}" / "events.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(EVENTS.format(max_msgs=value))
        out.append(path)
    return out


async def elect(procs: list[Proc]) -> tuple[Proc, list[Proc]]:
    """Wait until each process has finished a pass and one of them leads."""
    await until(lambda: all(p.named("reconcile_finished") for p in procs), 60,
                "every daemon finished a pass")
    leaders = [p for p in procs if p.named("leader_elected", this_process=True)]
    assert len(leaders) == 1, [p.events[-10:] for p in procs]
    return leaders[0], [p for p in procs if p is not leaders[0]]


async def max_msgs(server: NatsServer) -> int:
    nc = await nats.connect(server.url, name="checker")
    try:
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.events", b"")).data)
        return int(info["config"]["max_msgs"])
    finally:
        await nc.close()


async def test_three_daemons_with_different_manifests_one_writes(
    tmp_path: Path, nats_server: NatsServer, audit: Audit, procs: list[Proc]
) -> None:
    paths = manifests(tmp_path, 10, 20, 30)
    procs += [watch(nats_server, p) for p in paths]
    leader, standbys = await elect(procs)
    wanted = {p: v for p, v in zip(procs, (10, 20, 30), strict=True)}
    await until(lambda: bool(audit.writes), 30, "the leader created the stream")
    # the standbys see the server differ from their manifests, pass after pass; without the
    # lease each of them would put its own value back, forever
    for s in standbys:
        (paths[procs.index(s)]).write_text(EVENTS.format(max_msgs=wanted[s]) + "# touched\n")
    await until(lambda: all(len(s.named("reconcile_finished")) >= 2 for s in standbys), 30,
                "the standbys planned again")
    assert {w.client for w in audit.writes} == {leader.client}
    assert len(audit.writes) == 1, audit.writes
    assert await max_msgs(nats_server) == wanted[leader]
    for s in standbys:
        assert s.first("leader_elected", holder=leader.identity)["this_process"] is False
        status, body = s.get("/readyz")
        assert status == 200, body
        assert body == f"ready\nstandby: the lease default is held by {leader.identity}\n"
        assert "jetstream_reconciler_leader 0.0" in s.get("/metrics")[1]
        drift = s.named("drift_detected")
        assert drift and drift[-1]["changes"][0]["desired"] == wanted[s]
        assert not s.named("stream_updated") and not s.named("stream_created")
    assert "jetstream_reconciler_leader 1.0" in leader.get("/metrics")[1]
    status, body = leader.get("/readyz")
    assert (status, body) == (200, f"ready\nleader: this process ({leader.identity}) "
                                   "holds the lease default\n")


async def test_a_killed_leader_is_replaced_within_15_seconds(
    tmp_path: Path, nats_server: NatsServer, audit: Audit, procs: list[Proc]
) -> None:
    procs += [watch(nats_server, p) for p in manifests(tmp_path, 10, 20)]
    leader, (standby,) = await elect(procs)
    await until(lambda: bool(audit.writes), 30, "the leader wrote")
    killed = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL)
    took = await until(lambda: bool(audit.by(standby.client)), 30, "the standby wrote")
    assert took < 15, took
    assert audit.clients() == [leader.client, standby.client]
    assert not audit.by(leader.client, since=killed)
    assert standby.named("leader_elected", this_process=True)
    assert await max_msgs(nats_server) == 20 if standby is procs[1] else 10


async def test_a_paused_leader_does_not_write_when_it_wakes_up(
    tmp_path: Path, nats_server: NatsServer, audit: Audit, procs: list[Proc]
) -> None:
    paths = manifests(tmp_path, 10, 20)
    procs += [watch(nats_server, p) for p in paths]
    leader, (standby,) = await elect(procs)
    await until(lambda: bool(audit.writes), 30, "the leader wrote")
    os.kill(leader.proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    await until(lambda: bool(audit.by(standby.client)), 30, "the standby took over")
    # the old leader has a pass to run when it wakes: the standby's change advisory (and a
    # change to its own manifest) are waiting for it
    paths[procs.index(leader)].write_text(EVENTS.format(max_msgs=99))
    os.kill(leader.proc.pid, signal.SIGCONT)
    await until(lambda: bool(leader.named("leadership_lost")), 30, "the old leader noticed")
    passes = len(leader.named("reconcile_finished"))
    await until(lambda: len(leader.named("reconcile_finished")) > passes, 30,
                "the old leader planned again")
    assert not audit.by(leader.client, since=stopped)
    assert audit.clients() == [leader.client, standby.client]
    assert await max_msgs(nats_server) == (20 if standby is procs[1] else 10)
    status, body = leader.get("/readyz")
    assert status == 200 and body.endswith(f"held by {standby.identity}\n"), body


def apply(server: NatsServer, manifest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "apply", str(manifest),
                           "--server", server.url, "--log-format", "json", *extra],
                          capture_output=True, text=True, timeout=90, cwd=ROOT)


async def test_apply_respects_a_running_daemons_lease(
    tmp_path: Path, nats_server: NatsServer, audit: Audit, procs: list[Proc]
) -> None:
    daemon_manifest, cli_manifest = manifests(tmp_path, 10, 42)
    procs.append(watch(nats_server, daemon_manifest))
    (daemon,) = (await elect(procs))[:1]
    await until(lambda: bool(audit.writes), 30, "the daemon wrote")

    held = await asyncio.to_thread(apply, nats_server, cli_manifest)
    assert held.returncode == 1, held.stderr
    assert (f"error: the lease default is a running reconciler: {daemon.identity} holds it; "
            "stop it, wait for it (--wait DURATION) or take it over (--force)") in held.stderr
    assert {w.client for w in audit.writes} == {daemon.client}

    forced = await asyncio.to_thread(apply, nats_server, cli_manifest, "--force")
    assert forced.returncode == 0, forced.stderr
    events = [json.loads(line) for line in forced.stderr.splitlines()]
    taken = [e for e in events if e["event"] == "lease_taken_over"]
    assert taken and taken[0]["level"] == "warning"
    assert taken[0]["previous_holder"] == daemon.identity
    await until(lambda: bool(daemon.named("leadership_lost")), 30, "the daemon stood down")
    cli_client = f"jetstream-reconciler/{taken[0]['holder']}"
    # the CLI wrote once; when it released the lease, the daemon took it back
    assert audit.clients()[:2] == [daemon.client, cli_client]
    assert len(audit.by(cli_client)) == 1


async def test_apply_waits_for_the_lease(
    tmp_path: Path, nats_server: NatsServer, audit: Audit, procs: list[Proc]
) -> None:
    daemon_manifest, cli_manifest = manifests(tmp_path, 10, 42)
    procs.append(watch(nats_server, daemon_manifest))
    (daemon,) = (await elect(procs))[:1]
    await until(lambda: bool(audit.writes), 30, "the daemon wrote")
    waiting = asyncio.create_task(asyncio.to_thread(
        apply, nats_server, cli_manifest, "--wait", "60s"))
    await asyncio.sleep(1.5)  # apply is now watching the lease
    assert not waiting.done()
    stop_process(daemon.proc)  # SIGTERM: the daemon releases the lease as it stops
    done = await waiting
    assert done.returncode == 0, done.stderr
    assert daemon.named("lease_released")
    assert await max_msgs(nats_server) == 42
    assert len(audit.clients()) == 2


class Partition:
    """A TCP relay between one client and the server that can be cut (bytes are held, as a
    network that drops packets while TCP keeps retransmitting) and healed (held bytes are
    delivered late, then traffic flows again)."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self._upstream = upstream_port
        self._open = threading.Event()
        self._open.set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def cut(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.heal()
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        for pipe in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held: list[bytes] = []
        while data := await reader.read(65536):
            held.append(data)
            while not self._open.is_set():
                await asyncio.sleep(0.01)
            writer.write(b"".join(held))
            held.clear()
            await writer.drain()
        writer.close()


async def test_a_leader_cut_off_from_the_server_stops_and_does_not_write_after(
    tmp_path: Path, nats_server: NatsServer, audit: Audit, procs: list[Proc]
) -> None:
    """The leader reaches the server through a relay that is cut: it cannot renew, stops
    writing at its deadline, the standby takes over; when the relay heals, the bytes it held
    arrive late and the old leader finds the lease taken."""
    paths = manifests(tmp_path, 10, 20)
    relay = Partition(nats_server.port)
    try:
        first = start(["watch", str(paths[0]), "--server", f"nats://127.0.0.1:{relay.port}",
                       "--http-host", "127.0.0.1", "--http-port", str(free_port()),
                       "--lease-ttl", TTL])
        procs.append(first)
        await until(lambda: bool(first.named("leader_elected", this_process=True)), 60,
                    "the first daemon leads")
        procs.append(watch(nats_server, paths[1]))
        leader, (standby,) = await elect(procs)
        assert leader is first
        await until(lambda: bool(audit.writes), 30, "the leader wrote")
        relay.cut()
        cut_at = time.monotonic()
        paths[0].write_text(EVENTS.format(max_msgs=77))  # the leader wants to write again
        await until(lambda: bool(leader.named("leadership_lost")), 30, "the leader stood down")
        lost_after = time.monotonic() - cut_at
        await until(lambda: bool(audit.by(standby.client)), 30, "the standby took over")
        relay.heal()
        await until(lambda: leader.named("leader_elected", holder=standby.identity) != [], 30,
                    "the old leader saw the new one")
        passes = len(leader.named("reconcile_finished"))
        paths[0].write_text(EVENTS.format(max_msgs=78))
        await until(lambda: len(leader.named("reconcile_finished")) > passes, 30,
                    "the old leader planned after the partition")
        assert lost_after < 3.0  # its deadline: ttl - ttl/5 after its last renew
        assert not audit.by(leader.client, since=cut_at)
        assert audit.clients() == [leader.client, standby.client]
        assert await max_msgs(nats_server) == 20
    finally:
        relay.close()
