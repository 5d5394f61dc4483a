"""Watch mode and slow writers: a manifest read while it is still being written must never
be applied (README, "Data safety" / "Files being written").

Each test starts the daemon in process against a real nats-server, stores 100 messages,
then rewrites the manifest the way a slow writer does (two chunks with a pause, a cut in the
middle of a value or at a line boundary, a truncation first, or an atomic rename). A
`History` polls the live stream all along; at the end the live configuration must equal the
complete file, no other configuration may ever have been live, and no message may have been
lost on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from reconciler.manifest import load_or_raise
from reconciler.model import Action, LiveStream
from reconciler.plan import plan_stream
from reconciler.testing import NatsServer, TestClient
from tests.test_watch import events_of, running, settings_for

MESSAGES = 100
PAUSE_S = 1.5  # the slow writer's pause between chunks, as in the report of the bug
DEADLINE_S = 30.0  # generous: the machine is shared

CONSENT = """\
name: events
subjects: ["events.*"]
reconcile:
  allow_data_loss: true
"""


@dataclass
class History:
    """Every distinct live configuration of `events` seen while polling, and whether a
    message ever went missing."""

    js: TestClient
    configs: list[LiveStream] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    polls: int = 0

    async def poll(self) -> None:
        while True:
            live = await self.js.stream_info("events")
            assert live is not None
            self.polls += 1
            state = live.state
            if state.messages < MESSAGES or state.first_seq != 1:
                self.lost.append(f"{state.messages} messages from seq {state.first_seq}")
            if not self.configs or self.configs[-1].config != live.config:
                self.configs.append(live)
            await asyncio.sleep(0.02)

    def differs_from(self, manifest: Path, live: LiveStream) -> list[str]:
        """The fields in which `live` differs from the manifest (empty: equal)."""
        spec = load_or_raise([manifest])[0]
        plan = plan_stream(spec, live)
        return [] if plan.action is Action.NOOP else [c.path for c in plan.changes]


@contextlib.asynccontextmanager
async def watched(js: TestClient) -> AsyncIterator[History]:
    history = History(js)
    task = asyncio.create_task(history.poll())
    try:
        while history.polls == 0:
            await asyncio.sleep(0.01)
        yield history
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def fill(js: TestClient) -> None:
    for i in range(MESSAGES):
        await js.publish(f"events.{i % 3}", b"x")


async def converge(history: History, manifest: Path, deadline_s: float = DEADLINE_S) -> float:
    """Wait until the live stream equals the complete manifest; the time it did."""
    deadline = time.monotonic() + deadline_s
    while True:
        if history.configs and not history.differs_from(manifest, history.configs[-1]):
            return time.monotonic()
        if time.monotonic() > deadline:
            fields = history.differs_from(manifest, history.configs[-1])
            raise AssertionError(f"never converged; the live stream differs in {fields}")
        await asyncio.sleep(0.02)


def only_two_states(history: History, before: LiveStream, manifest: Path) -> None:
    """Every configuration that was ever live is the one before the write or the complete
    file's."""
    for live in history.configs:
        if live.config != before.config:
            assert not history.differs_from(manifest, live), (
                f"a half-written manifest was applied: {live.config}")
    assert not history.lost, history.lost


async def slow_write(path: Path, chunks: Sequence[str], *, pause_s: float = PAUSE_S,
                     truncate_first: bool = False) -> None:
    """Rewrite `path` in place, one chunk at a time with a pause in between (the file is
    truncated when opened: each chunk is what a reader sees so far)."""
    with open(path, "w") as f:
        if truncate_first:
            f.flush()
            await asyncio.sleep(pause_s)
        for i, chunk in enumerate(chunks):
            if i:
                await asyncio.sleep(pause_s)
            f.write(chunk)
            f.flush()


async def start(tmp_path: Path, nats_server: NatsServer, js: TestClient,
                text: str, **settings: Any) -> tuple[Path, Any]:
    manifest = tmp_path / "config" / "events.yaml"
    manifest.parent.mkdir()
    manifest.write_text(text)
    return manifest, settings_for(nats_server, manifest.parent, **settings)


async def test_a_value_cut_in_the_middle_is_never_applied(
    tmp_path: Path, nats_server: NatsServer, js: TestClient
) -> None:
    """The reported bug: `max_msgs: 100000` read as `max_msgs: 1` deleted 99 of 100."""
    text = CONSENT + "max_msgs: 100000\nmax_age: 7d\n"
    manifest, settings = await start(tmp_path, nats_server, js, text)
    async with running(settings):
        await fill(js)
        before = await js.stream_info("events")
        assert before is not None and before.state.messages == MESSAGES
        async with watched(js) as history:
            final = CONSENT + "max_msgs: 100000\nmax_age: 7d\ndescription: second version\n"
            cut = final.index("max_msgs: 1") + len("max_msgs: 1")
            await slow_write(manifest, [final[:cut], final[cut:]])
            await converge(history, manifest)
    only_two_states(history, before, manifest)


LIMITS = CONSENT + """\
max_msgs: 100
max_bytes: 1MiB
max_age: 7d
discard: new
"""


async def test_a_file_cut_at_a_line_boundary_is_never_applied(
    tmp_path: Path, nats_server: NatsServer, js: TestClient
) -> None:
    """Valid YAML whose missing lines mean "server default": every limit off and discard
    old for the length of the pause."""
    manifest, settings = await start(tmp_path, nats_server, js, LIMITS)
    async with running(settings):
        await fill(js)
        before = await js.stream_info("events")
        assert before is not None
        async with watched(js) as history:
            final = LIMITS.replace("max_bytes: 1MiB", "max_bytes: 2MiB")
            await slow_write(manifest, [CONSENT, final[len(CONSENT):]])
            await converge(history, manifest)
    only_two_states(history, before, manifest)


async def test_a_truncated_file_then_written_in_chunks_is_never_applied(
    tmp_path: Path, nats_server: NatsServer, js: TestClient
) -> None:
    """Truncate, pause, then write a first chunk that ends at a line, pause, the rest. The
    empty file in between must not make the daemon forget what the file used to say."""
    manifest, settings = await start(tmp_path, nats_server, js, LIMITS)
    async with running(settings):
        await fill(js)
        before = await js.stream_info("events")
        assert before is not None
        async with watched(js) as history:
            final = LIMITS.replace("max_age: 7d", "max_age: 8d")
            await slow_write(manifest, [CONSENT, final[len(CONSENT):]], truncate_first=True)
            await converge(history, manifest)
    only_two_states(history, before, manifest)


async def test_an_atomic_save_takes_the_fast_path_unless_it_discards(
    tmp_path: Path, nats_server: NatsServer, js: TestClient
) -> None:
    """A rename puts a whole file in place at once: a change that loses nothing is applied
    in the very next pass; one that discards messages (agreed to) still waits until the file
    has been left alone for the settle period, and is then applied."""
    settle_s = 3.0
    manifest, settings = await start(tmp_path, nats_server, js, LIMITS, settle_s=settle_s)
    with capture_logs() as logs:
        async with running(settings):
            await fill(js)
            before = await js.stream_info("events")
            assert before is not None
            async with watched(js) as history:
                loosened = LIMITS.replace("max_msgs: 100", "max_msgs: 1000")
                saved = save_by_rename(manifest, loosened)
                applied = await converge(history, manifest)
                # a pass already running when the file was swapped sees it change while
                # it reads; that hold is all there may be, and the next pass applies it
                assert not [e for e in events_of(logs, "manifest_settling")
                            if e["reasons"] != ["the file changed while it was read"]]
                assert applied - saved < settle_s
                only_two_states(history, before, manifest)

                discarding = loosened.replace("max_msgs: 1000", "max_msgs: 10").replace(
                    "discard: new", "discard: old")
                saved = save_by_rename(manifest, discarding)
                applied = await converge(history, manifest)
            # a read during the update may see the new limits with the oldest messages
            # still going; what stays is the ten newest
            after = await settled_state(js, messages=10)
    assert applied - saved >= settle_s
    settling = [e for e in events_of(logs, "manifest_settling")
                if "discard" in " ".join(e["reasons"])]
    assert settling and settling[0]["file"] == str(manifest)
    updated = events_of(logs, "stream_updated")
    assert updated[-1]["impact"]["messages"] == MESSAGES - 10
    assert after is not None
    assert (after.state.messages, after.state.first_seq) == (10, MESSAGES - 9)


async def settled_state(js: TestClient, *, messages: int) -> LiveStream | None:
    """The stream once it holds `messages` (or as it is after the deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        live = await js.stream_info("events")
        if live is None or live.state.messages == messages or time.monotonic() > deadline:
            return live
        await asyncio.sleep(0.02)


def save_by_rename(manifest: Path, text: str) -> float:
    tmp = manifest.parent / f".{manifest.name}.tmp"
    tmp.write_text(text)
    saved = time.monotonic()
    os.replace(tmp, manifest)
    return saved


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()
