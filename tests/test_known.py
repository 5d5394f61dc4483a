"""Passes after a change to a few streams read and prepare only those (`reconcile.Known`):
the plan is the one a full read makes, and an advisory's pass reads only the stream it
names (plus those not in sync), never the whole list."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nats
import pytest

from reconciler import jetstream
from reconciler.daemon import Daemon, passes
from reconciler.model import StreamSpec
from reconciler.plan.ownership import OWNER_KEY
from reconciler.reconcile import Known, compute_plan, reconcile
from reconciler.testing import NatsServer
from reconciler.testing.fake import FakeJetStream
from tests.test_daemon_fake import manifest_at, max_msgs, running, until

S = 1_000_000_000


def spec(name: str, **config: object) -> StreamSpec:
    return StreamSpec(name, {"name": name, "subjects": [f"{name}.*"], **config})


async def test_a_pass_that_reads_only_the_named_streams_plans_as_a_full_read(
    nats_server: NatsServer, js: jetstream.JetStream
) -> None:
    specs = [spec("a", max_msgs=10), spec("b", max_msgs=10), spec("c", max_msgs=10),
             spec("d", max_msgs=10)]
    await reconcile(js, specs[:3])  # created by us: ours
    await js.create_stream({"name": "other", "subjects": ["other.*"]})
    known = Known()
    first = await compute_plan(js, specs, known=known, changed=None)
    assert first == await compute_plan(js, specs)
    assert [str(s.action) for s in first.streams] == ["noop", "noop", "noop", "create"]
    nc = await nats.connect(nats_server.url, name="someone")
    try:
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.b", b"")).data)
        reply = await nc.request("$JS.API.STREAM.UPDATE.b", json.dumps(
            info["config"] | {"max_msgs": 20, "max_age": 600 * S}).encode())
        assert "error" not in json.loads(reply.data)
    finally:
        await nc.close()
    # b named by its advisory; d still missing (not in sync) is read again too
    again = await compute_plan(js, specs, known=known, changed={"b"})
    assert again == await compute_plan(js, specs)
    assert [str(s.action) for s in again.streams] == ["noop", "update", "noop", "create"]
    assert again.unmanaged == ("other",)


def manifests(tmp_path: Path, value: int) -> Path:
    """`events` (max_msgs: `value`) and 16 more streams: few enough changed to read one by
    one."""
    manifest_at(tmp_path, value)
    (tmp_path / "more.yaml").write_text("---\n".join(
        f'name: s{i}\nsubjects: ["s{i}.*"]\n' for i in range(16)))
    return tmp_path


async def settled(daemon: Daemon) -> None:
    """One more pass: the streams the first one created are read in sync."""
    daemon.trigger("resync")
    await daemon.wait_passes(daemon.passes + 1)


def reads_since(fake: FakeJetStream, before: int) -> list[str]:
    """The reads of live streams the daemon made since `fake.calls[before]`."""
    return [c for c in fake.calls[before:] if c.startswith(("list", "stream_info"))]


async def test_an_advisory_starts_a_pass_that_reads_only_its_stream(tmp_path: Path) -> None:
    fake = FakeJetStream()
    async with running(fake, manifests(tmp_path, 10)) as daemon:
        await settled(daemon)
        before = len(fake.calls)
        fake.change_as("someone", dict(fake.streams["events"].config) | {"max_msgs": 99})
        await until(daemon, lambda: max_msgs(fake) == 10)
        # one read for the plan, one just before the update
        assert reads_since(fake, before) == ["stream_info:events", "stream_info:events"]


async def test_a_manifest_change_reads_only_the_streams_it_changes(tmp_path: Path) -> None:
    fake = FakeJetStream()
    async with running(fake, manifests(tmp_path, 10)) as daemon:
        await settled(daemon)
        before = len(fake.calls)
        manifest_at(tmp_path, 20)
        daemon.trigger("manifest")
        await until(daemon, lambda: max_msgs(fake) == 20)
        assert reads_since(fake, before) == ["stream_info:events", "stream_info:events"]


async def test_other_triggers_read_every_stream(tmp_path: Path) -> None:
    fake = FakeJetStream()
    async with running(fake, manifests(tmp_path, 10)) as daemon:
        await settled(daemon)
        for trigger in ("resync", "reconnect", "leader", "retry"):
            before = len(fake.calls)
            daemon.trigger(trigger)
            await daemon.wait_passes(daemon.passes + 1)
            assert "list_streams" in fake.calls[before:], trigger


async def test_many_changed_streams_are_listed(tmp_path: Path) -> None:
    fake = FakeJetStream()
    async with running(fake, manifests(tmp_path, 10)) as daemon:
        await settled(daemon)
        before = len(fake.calls)
        for i in range(3):  # more than one in eight of 17
            fake.change_as("someone", dict(fake.streams[f"s{i}"].config) | {"max_msgs": 5})
        await until(daemon, lambda: all(
            fake.streams[f"s{i}"].config.get("max_msgs") != 5 for i in range(3)))
        assert "list_streams" in fake.calls[before:]


async def test_a_failed_read_of_the_named_stream_lists_them_all(tmp_path: Path) -> None:
    fake = FakeJetStream()
    async with running(fake, manifests(tmp_path, 10)) as daemon:
        await settled(daemon)
        before = len(fake.calls)
        fake.fail("stream_info")
        fake.change_as("someone", dict(fake.streams["events"].config) | {"max_msgs": 99})
        await until(daemon, lambda: max_msgs(fake) == 10)
        calls = fake.calls[before:]
        assert calls.index("stream_info:events") < calls.index("list_streams")


CASES = int(os.environ.get("RECONCILER_KNOWN_CASES", "3"))
SEED = os.environ.get("RECONCILER_KNOWN_SEED")
STEPS = 14


@pytest.mark.parametrize("seed", [int(SEED)] if SEED else range(CASES))
async def test_targeted_passes_plan_as_full_ones_through_random_changes(
    nats_server: NatsServer, js: jetstream.JetStream, seed: int
) -> None:
    """A seeded campaign on a real server: changes on the server (each named, as its
    advisory names it) and in the manifests, holds, applies; after each, the plan of a
    targeted pass (`Known`, the named streams) equals the plan of a full read.
    Replay one case with RECONCILER_KNOWN_SEED=<seed>."""
    rng = random.Random(seed)
    names = [f"k{seed}_{i}" for i in range(24)]
    specs = {n: spec(n, max_msgs=100) for n in names}
    await reconcile(js, list(specs.values()))
    await js.publish(f"{names[0]}.x", b"one")
    await js.publish(f"{names[0]}.x", b"two")
    known = Known()
    await compute_plan(js, list(specs.values()), known=known, changed=None)
    nc = await nats.connect(nats_server.url, name="someone")

    async def outside(name: str, **changes: object) -> None:
        info = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{name}", b"")).data)
        if "error" in info:
            return
        reply = await nc.request(f"$JS.API.STREAM.UPDATE.{name}",
                                 json.dumps(info["config"] | changes).encode())
        assert "error" not in json.loads(reply.data), (seed, reply.data)

    try:
        for step in range(STEPS):
            kind = rng.choice(["outside", "outside", "owner", "delete", "manifest",
                               "same", "apply", "nothing", "resync"])
            name = rng.choice(names)
            changed: set[str] | None = set()
            if kind == "outside":
                await outside(name, max_msgs=rng.choice([1, 50, 100, 200]))
                changed = {name}
            elif kind == "owner":
                await outside(name, metadata={OWNER_KEY: "someone-else"})
                changed = {name}
            elif kind == "delete":
                await nc.request(f"$JS.API.STREAM.DELETE.{name}", b"")
                changed = {name}
            elif kind == "manifest":
                specs[name] = spec(name, max_msgs=rng.choice([1, 50, 100, 300]))
            elif kind == "same":  # the file saved again: an equal spec, a new object
                specs[name] = spec(name, **{k: v for k, v in specs[name].config.items()
                                            if k not in ("name", "subjects")})
            elif kind == "apply":
                await reconcile(js, list(specs.values()), allow_data_loss=True)
            elif kind == "resync":
                changed = None
            holds = {rng.choice(names): "paused"} if rng.random() < 0.5 else {}
            declared = list(specs.values())
            targeted = await compute_plan(js, declared, known=known, changed=changed,
                                          holds=holds)
            full = await compute_plan(js, declared, holds=holds)
            assert targeted == full, f"seed {seed}, step {step} ({kind} {name})"
    finally:
        await nc.close()


async def test_a_pass_started_only_by_advisories_reads_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No trigger says a file changed: the pass goes by the manifests as last read; the
    next file change is read as ever."""
    fake = FakeJetStream()
    reads: list[object] = []
    real = passes.read_manifests

    def counted(paths: Sequence[str]) -> Any:
        reads.append(paths)
        return real(paths)

    monkeypatch.setattr(passes, "read_manifests", counted)
    async with running(fake, manifests(tmp_path, 10)) as daemon:
        await settled(daemon)
        before = len(reads)
        fake.change_as("someone", dict(fake.streams["events"].config) | {"max_msgs": 99})
        await until(daemon, lambda: max_msgs(fake) == 10)
        assert len(reads) == before
        manifest_at(tmp_path, 20)
        daemon.trigger("manifest")
        await until(daemon, lambda: max_msgs(fake) == 20)
        assert len(reads) > before
