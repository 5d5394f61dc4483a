"""Fights end by themselves, end to end: a real server, our daemon, and another client that
puts its own configuration back each time we change the stream."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nats
import pytest
import structlog
from structlog.testing import capture_logs

from reconciler.testing import NatsServer
from tests.test_watch import EVENTS, events_of, running, sample, settings_for, write

WINDOW_S = 2.0  # the minute of the product, scaled down
FIGHT_WINDOWS = 4


class Fighter:
    """Re-applies its own `max_msgs` each time the reconciler updates the stream (bounded)."""

    def __init__(self, nc: Any, config: dict[str, Any]) -> None:
        self.nc, self.config = nc, config
        self.ours: list[float] = []  # when the reconciler's updates were seen
        self.fighting = True
        self.replies = 0

    async def start(self) -> None:
        await self.nc.subscribe("$JS.EVENT.ADVISORY.API", cb=self._on_api)
        await self.nc.flush()
        await self.change()

    async def change(self) -> None:
        self.replies += 1
        reply = json.loads((await self.nc.request(
            "$JS.API.STREAM.UPDATE.events", json.dumps(self.config).encode())).data)
        assert "error" not in reply, reply

    async def _on_api(self, msg: Any) -> None:
        event = json.loads(msg.data)
        client = event.get("client") or {}
        if event.get("subject") != "$JS.API.STREAM.UPDATE.events":
            return
        if client.get("name") != "jetstream-reconciler":
            return
        self.ours.append(time.monotonic())
        if self.fighting and self.replies < 200:
            await self.change()


async def test_a_fight_is_paused_with_a_growing_back_off_and_ends_when_the_other_side_stops(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    nc = await nats.connect(nats_server.url, name="fighter")
    settings = settings_for(nats_server, manifest, conflict_window_s=WINDOW_S)
    try:
        with capture_logs() as logs:
            async with running(settings) as daemon:
                info = json.loads((await nc.request("$JS.API.STREAM.INFO.events", b"")).data)
                fighter = Fighter(nc, info["config"] | {"max_msgs": 99})
                started = time.monotonic()
                await fighter.start()
                await asyncio.sleep(WINDOW_S * FIGHT_WINDOWS)
                ready, reasons = daemon.readiness()
                gauge = sample(daemon, "jetstream_reconciler_conflicts")
                fighter.fighting = False
                deadline = time.monotonic() + 25
                while not daemon.readiness()[0] and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                resumed = daemon.readiness()
                live = await js.stream_info("events")
    finally:
        await nc.close()

    per_window = [
        sum(1 for t in fighter.ours if started + i * WINDOW_S <= t < started + (i + 1) * WINDOW_S)
        for i in range(FIGHT_WINDOWS)
    ]
    assert all(n <= 6 for n in per_window[1:]), per_window
    conflicts = events_of(logs, "conflict_detected")
    assert conflicts, per_window
    first = conflicts[0]
    assert (first["stream"], first["fields"], first["actor"], first["count"]) == (
        "events", ["max_msgs"], "fighter", 3)
    assert [c["paused_s"] for c in conflicts][:3] == [1.0, 2.0, 4.0][:len(conflicts)]
    assert not ready and any(r.startswith("conflict over stream events (max_msgs) with "
                                          "fighter, changed back") for r in reasons), reasons
    assert gauge == 1
    # the other side stopped: healed once more, then the conflict is over
    assert resumed == (True, []), resumed
    assert live is not None and live.config["max_msgs"] == 10


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()
