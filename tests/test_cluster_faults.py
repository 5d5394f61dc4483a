"""Watch mode in a three-node cluster while nodes die: the stream leader, then the meta leader.

One cluster of real nats-server processes for the module; three R3 streams. The daemon runs
in-process, connected with all three URLs. Each node is killed with SIGKILL (no goodbye to
its peers) and started again before the next kill, so the cluster keeps its quorum. After
each kill the daemon must heal a change (made behind its back, or to a manifest) within a
deadline, report ready again, and then sit still: no crash, no pass after pass.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import nats
import pytest
import structlog
from structlog.testing import capture_logs

from reconciler.daemon import Daemon
from reconciler.jetstream import connect
from reconciler.manifest import load_or_raise
from reconciler.model import ConnectOptions
from reconciler.reconcile import reconcile
from reconciler.settings import Settings
from reconciler.testing import NatsCluster, free_port
from tests.test_watch import _get

STREAMS = ("orders", "payments", "ledger")
#: how long the daemon may take to heal after a kill (elections take a few seconds)
HEAL_DEADLINE_S = 20.0
#: an idle daemon looks at the server this often at most, in passes per second
QUIET_WINDOW_S = 3.0


def declaration(name: str, max_msgs: int = 10) -> str:
    return f'name: {name}\nsubjects: ["{name}.>"]\nnum_replicas: 3\nmax_msgs: {max_msgs}\n'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


async def _config(cluster: NatsCluster, name: str) -> dict[str, Any] | None:
    """The stream's live configuration, asked of any running node; None if no answer."""
    try:
        nc = await nats.connect(servers=[cluster.url(n) for n in cluster.running],
                                connect_timeout=2, allow_reconnect=False)
    except Exception:
        return None
    try:
        reply = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{name}", b"", 2)).data)
    except Exception:
        return None
    finally:
        await nc.close()
    config = reply.get("config")
    return config if isinstance(config, dict) else None


async def _edit_behind_its_back(cluster: NatsCluster, name: str, **changes: Any) -> None:
    """Change a stream from another client, retrying while the cluster elects leaders."""
    deadline = time.monotonic() + HEAL_DEADLINE_S
    while True:
        config = await _config(cluster, name)
        if config is not None:
            nc = await nats.connect(servers=[cluster.url(n) for n in cluster.running],
                                    name="someone", allow_reconnect=False)
            try:
                body = json.dumps(config | changes).encode()
                reply = json.loads((await nc.request(f"$JS.API.STREAM.UPDATE.{name}", body,
                                                     2)).data)
                if "error" not in reply:
                    return
            except Exception:
                pass
            finally:
                await nc.close()
        assert time.monotonic() < deadline, f"could not edit {name} behind the daemon's back"
        await asyncio.sleep(0.2)


async def _within(deadline_s: float, check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Seconds until `check()` holds, polled; fails after `deadline_s`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < deadline_s, f"not within {deadline_s:g}s: {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def _ready(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            return (await asyncio.to_thread(_get, port, "/readyz"))[0] == 200
        except OSError:  # not listening yet
            return False

    return check


def _degraded(port: int) -> Callable[[], Awaitable[bool]]:
    """/readyz says a declared stream cannot be read (its leader is being elected)."""

    async def check() -> bool:
        status, body = await asyncio.to_thread(_get, port, "/readyz")
        return status == 503 and "degraded" in body

    return check


def _max_msgs(cluster: NatsCluster, name: str, expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        config = await _config(cluster, name)
        return config is not None and config.get("max_msgs") == expected

    return check


async def _quiet(daemon: Daemon, logs: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Passes and stream writes during `QUIET_WINDOW_S` of a converged daemon."""
    passes, writes = daemon.passes, _writes(logs)
    await asyncio.sleep(QUIET_WINDOW_S)
    return daemon.passes - passes, _writes(logs) - writes


def _writes(logs: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for e in logs if e["event"] in ("stream_created", "stream_updated"))


async def test_watch_survives_the_stream_leader_and_the_meta_leader_dying(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for name in STREAMS:
        (config / f"{name}.yaml").write_text(declaration(name))
    async with await connect(ConnectOptions(servers=tuple(cluster.urls))) as js:
        applied = await reconcile(js, load_or_raise([config]))
    assert applied.counts() == {"created": 3}
    meta = await asyncio.to_thread(cluster.meta_leader)
    stream, leader = await _led_elsewhere(cluster, meta)
    other = next(n for n in cluster.nodes if n not in (meta, leader))
    # The daemon is connected to the stream leader (the first URL), so it sees that node die;
    # it is on neither node when the meta leader dies, so nothing but its own retry brings it
    # back to a pass after a pass that failed.
    servers = tuple(cluster.url(n) for n in (leader, other, meta))
    port = free_port()
    settings = Settings(paths=(str(config),), connect=ConnectOptions(servers=servers),
                        http_port=port, http_host="127.0.0.1", settle_s=0.5)
    figures: dict[str, Any] = {}
    daemon = Daemon(settings)
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.serve())
        try:
            await _within(HEAL_DEADLINE_S, _ready(port), "ready at start")
            # the lease outlives any one node: its bucket has three replicas
            lease = await _config(cluster, "KV_jetstream_reconciler")
            assert lease is not None and lease["num_replicas"] == 3

            # 1. the leader of a stream dies: the daemon, connected to it, reconnects to
            # another node while the stream elects a new leader; it must be ready again on
            # its own, then heal a change made behind its back
            cluster.kill(leader)
            killed, passes = time.monotonic(), daemon.passes
            await _within(HEAL_DEADLINE_S, _degraded(port), "not ready while degraded")
            await _within(HEAL_DEADLINE_S, _ready(port), "ready after the stream leader died")
            figures["stream leader: ready again"] = time.monotonic() - killed
            figures["stream leader: passes until ready"] = daemon.passes - passes
            await _edit_behind_its_back(cluster, stream, max_msgs=99)
            figures["stream leader: healed"] = await _within(
                HEAL_DEADLINE_S, _max_msgs(cluster, stream, 10), f"{stream} healed")
            assert not task.done()
            figures["stream leader: quiet passes, writes"] = await _quiet(daemon, logs)
            await asyncio.to_thread(cluster.restart, leader)
            await asyncio.to_thread(cluster.wait_for_meta_leader)

            # 2. the meta leader dies just as a manifest is edited
            meta = await asyncio.to_thread(cluster.meta_leader)
            cluster.kill(meta)
            killed, passes = time.monotonic(), daemon.passes
            (config / f"{stream}.yaml").write_text(declaration(stream, max_msgs=20))
            figures["meta leader: applied"] = await _within(
                HEAL_DEADLINE_S, _max_msgs(cluster, stream, 20), f"{stream} applied")
            await _within(HEAL_DEADLINE_S, _ready(port), "ready after the meta leader died")
            figures["meta leader: ready again"] = time.monotonic() - killed
            figures["meta leader: passes until ready"] = daemon.passes - passes
            assert not task.done()
            figures["meta leader: quiet passes, writes"] = await _quiet(daemon, logs)
            await asyncio.to_thread(cluster.restart, meta)
        finally:
            daemon.stop()
            assert await asyncio.wait_for(task, 10) == 0
    print(figures)
    assert not [e for e in logs if e["event"] == "watch_failed"]
    for phase in ("stream leader", "meta leader"):
        # idle: nothing written, at most the echo of the last change (in a cluster a stream
        # advisory can come after the API advisory that already started the healing pass)
        passes, writes = figures[f"{phase}: quiet passes, writes"]
        assert writes == 0 and passes <= 1, figures
        # retries back off: a few passes while the cluster elects, not one after another
        assert figures[f"{phase}: passes until ready"] <= 6, figures


async def _led_elsewhere(cluster: NatsCluster, meta: str) -> tuple[str, str]:
    """A declared stream whose leader is not the meta leader, and its leader (when the meta
    leader leads them all, the first one's leader steps down in favour of another node)."""
    leaders = {name: await asyncio.to_thread(cluster.stream_leader, name) for name in STREAMS}
    for name, leader in leaders.items():
        if leader != meta:
            return name, leader
    name, other = STREAMS[0], next(n for n in cluster.running if n != meta)
    nc = await nats.connect(servers=cluster.urls)
    try:
        body = json.dumps({"placement": {"preferred": other}}).encode()
        reply = json.loads((await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{name}", body,
                                             5)).data)
        assert "error" not in reply, reply
    finally:
        await nc.close()
    deadline = time.monotonic() + HEAL_DEADLINE_S
    while (leader := await asyncio.to_thread(cluster.stream_leader, name)) == meta:
        assert time.monotonic() < deadline, f"{name} still led by {meta}"
        await asyncio.sleep(0.1)
    return name, leader
