"""The watch daemon's logic on an in-memory JetStream (`reconciler.testing.fake`): which
passes run, what they are told, what they name. Nothing here is about the server's
behaviour (that is tested against a real nats-server); the waits are for conditions, with
generous deadlines, never sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from reconciler.daemon import Daemon
from reconciler.model import ConnectOptions, LiveStream
from reconciler.settings import Settings
from reconciler.testing.fake import FakeJetStream

DEADLINE_S = 20
EVENTS = 'name: events\nsubjects: ["events.*"]\nmax_msgs: {max_msgs}\n'


def settings(manifest: Path, **kw: Any) -> Settings:
    kw = {"lease": None, "http_port": 0, "settle_s": 0.0, "resync_s": 600.0} | kw
    return Settings(paths=(str(manifest),), connect=ConnectOptions(servers=("nats://fake",)),
                    **kw)


@asynccontextmanager
async def running(fake: FakeJetStream, manifest: Path, **kw: Any) -> AsyncIterator[Daemon]:
    daemon = Daemon(settings(manifest, **kw), connect=fake.connect)
    task = asyncio.create_task(daemon.serve())
    try:
        await asyncio.wait_for(daemon.wait_passes(1), DEADLINE_S)
        yield daemon
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, DEADLINE_S) == 0
    assert fake.handler_errors == []


async def until(daemon: Daemon, check: Callable[[], bool]) -> None:
    """Wait, pass after pass, until `check()` holds."""
    async def passes() -> None:
        while not check():
            await daemon.wait_passes(daemon.passes + 1)
    await asyncio.wait_for(passes(), DEADLINE_S)


def named(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == event]


def max_msgs(fake: FakeJetStream) -> Any:
    return fake.streams["events"].config.get("max_msgs")


def manifest_at(tmp_path: Path, value: int) -> Path:
    manifest = tmp_path / "events.yaml"
    manifest.write_text(EVENTS.format(max_msgs=value))
    return manifest


async def test_triggers_during_a_pass_fold_into_exactly_one_more(tmp_path: Path) -> None:
    fake = FakeJetStream()
    with capture_logs() as logs:
        async with running(fake, manifest_at(tmp_path, 10)) as daemon:
            assert max_msgs(fake) == 10
            held = fake.pause("list_streams")
            daemon.trigger("resync")
            await asyncio.wait_for(held.entered.wait(), DEADLINE_S)
            for source in ("manifest", "server", "manifest", "resync"):
                daemon.trigger(source)
            held.release()
            await asyncio.wait_for(daemon.wait_passes(3), DEADLINE_S)
            # nothing was left over: the next pass is told only of the next trigger
            daemon.trigger("leader")
            await asyncio.wait_for(daemon.wait_passes(4), DEADLINE_S)
    triggers = [e["trigger"] for e in named(logs, "reconcile_finished")]
    assert triggers == ["startup", "resync", "manifest,resync,server", "leader"]
    assert [c for c in fake.calls if c.startswith(("create_stream", "update_stream"))] == [
        "create_stream:events"], "what we created is what we declared: nothing to update"


async def test_the_actor_is_named_when_its_advisory_comes_after_the_read(
    tmp_path: Path,
) -> None:
    """The race an end-to-end test lost once on a loaded machine, in a fixed order: the pass
    reads another client's change before the advisory that names the client arrives."""
    fake = FakeJetStream()
    with capture_logs() as logs:
        async with running(fake, manifest_at(tmp_path, 10)) as daemon:
            changed = dict(fake.streams["events"].config) | {"max_msgs": 99}
            held = fake.pause("list_streams")
            daemon.trigger("resync")
            await asyncio.wait_for(held.entered.wait(), DEADLINE_S)
            fake.streams["events"] = LiveStream("events", changed)  # advisories on their way
            held.release()
            await asyncio.wait_for(held.left.wait(), DEADLINE_S)
            fake.announce("updated", "events", actor="someone", client_id=7, config=changed)
            await until(daemon, lambda: max_msgs(fake) == 10)
    drift = [e for e in named(logs, "drift_detected") if e["action"] == "update"]
    assert [(d["source"], d["actor"]) for d in drift] == [("server", "someone")]
    assert drift[0]["changes"] == [{"field": "max_msgs", "live": 99, "desired": 10}]


async def test_another_clients_change_starts_a_pass_that_names_it(tmp_path: Path) -> None:
    fake = FakeJetStream()
    with capture_logs() as logs:
        async with running(fake, manifest_at(tmp_path, 10)) as daemon:
            fake.change_as("someone", dict(fake.streams["events"].config) | {"max_msgs": 99})
            await until(daemon, lambda: max_msgs(fake) == 10)
    finished = named(logs, "reconcile_finished")
    assert finished[1]["trigger"] == "server"
    drift = [e for e in named(logs, "drift_detected") if e["action"] == "update"]
    assert [(d["source"], d["actor"]) for d in drift] == [("server", "someone")]


async def test_a_manifest_change_is_told_as_one_after_a_failed_pass(tmp_path: Path) -> None:
    fake = FakeJetStream()
    manifest = manifest_at(tmp_path, 10)
    with capture_logs() as logs:
        async with running(fake, manifest) as daemon:
            fake.fail("list_streams")
            manifest_at(tmp_path, 20)
            daemon.trigger("manifest")
            await until(daemon, lambda: bool(named(logs, "reconcile_failed")))
            assert max_msgs(fake) == 10
            daemon.trigger("resync")
            await until(daemon, lambda: max_msgs(fake) == 20)
    drift = [e for e in named(logs, "drift_detected") if e["action"] == "update"]
    assert [(d["source"], d["changes"]) for d in drift] == [
        ("manifest", [{"field": "max_msgs", "live": 10, "desired": 20}])]


async def test_a_daemon_that_takes_the_lease_writes(tmp_path: Path) -> None:
    fake = FakeJetStream()
    async with running(fake, manifest_at(tmp_path, 10), lease="default") as daemon:
        assert max_msgs(fake) == 10
        assert daemon.about()[0].startswith("leader: this process (")
        assert daemon.metrics.registry.get_sample_value("jetstream_reconciler_leader") == 1


async def test_readiness_follows_the_connection(tmp_path: Path) -> None:
    fake = FakeJetStream()
    fake.refuse_connects = 1
    with capture_logs() as logs:
        async with running(fake, manifest_at(tmp_path, 10)) as daemon:
            assert named(logs, "nats_unreachable")
            assert daemon.readiness() == (True, [])
            await fake.disconnect()
            assert daemon.readiness() == (False, ["not connected to NATS"])
            passes = daemon.passes
            await fake.reconnect()
            await asyncio.wait_for(daemon.wait_passes(passes + 1), DEADLINE_S)
            assert daemon.readiness() == (True, [])
    assert named(logs, "reconcile_finished")[-1]["trigger"] == "reconnect"
