"""NATS by Example's "limits-based stream", replayed through the reconciler.

An `events` stream on `events.*` (file storage) gets six messages, then three limit edits,
each made by changing the manifest and applying it: 10 messages, 300 bytes, 0.1 s max age.
The first two fit what is stored; the third would discard every message, so the data-loss
guard stops it until the manifest says `allow_data_loss: true`.

This is how an application and the reconciler share a stream: the manifest declares the
stream and every change to it; the application only publishes (the original example's
`add_stream`/`update_stream` calls are gone: beside `watch` they would fight it).

It starts a nats-server of its own on a free loopback port, with its data in a temporary
directory removed at the end, so it never meets `make run` or leaves anything behind.
`--server URL` runs it against a server of yours instead: one where nothing else manages a
stream named `events`.

    .venv/bin/python examples/limits_walkthrough.py
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import reconciler
from reconciler import testing
from reconciler.reconcile import reconcile
from reconciler.report import show_value
from reconciler.testing import TestClient, scratch_server

MANIFEST = """\
name: events
subjects: ["events.*"]
storage: file
{limits}"""

SEED = ["events.page_loaded", "events.mouse_clicked", "events.mouse_clicked",
        "events.page_loaded", "events.mouse_clicked", "events.input_focused"]


async def show(js: TestClient, step: str) -> None:
    info = await js.stream_info("events")
    assert info is not None
    c, s = info.config, info.state
    print(f"[{step}] messages={s.messages} bytes={s.bytes} "
          + " ".join(f"{k}={show_value(k, c[k])}" for k in ("max_msgs", "max_bytes", "max_age")))


async def edit(js: TestClient, manifest: Path, limits: str, step: str) -> None:
    manifest.write_text(MANIFEST.format(limits=limits))
    specs = reconciler.load_or_raise([manifest])
    print(f"\n--- {step}: {limits.strip().replace(chr(10), ', ')}")
    print(reconciler.render_text(await reconciler.compute_plan(js, specs)), end="")
    await reconcile(js, specs)
    await show(js, step)


async def main(server: str) -> None:
    js = await testing.connect(reconciler.ConnectOptions(servers=(server,)))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "events.yaml"
            await edit(js, manifest, "", "create")
            for subject in SEED:
                await js.publish(subject, b"")
            await show(js, "published 6")
            await edit(js, manifest, "max_msgs: 10\n", "max_msgs")
            await edit(js, manifest, "max_msgs: 10\nmax_bytes: 300B\n", "max_bytes")
            await asyncio.sleep(0.2)  # let the messages grow older than the new max age
            limits = "max_msgs: 10\nmax_bytes: 300B\nmax_age: 100ms\n"
            await edit(js, manifest, limits, "max_age")
            allowed = limits + "reconcile:\n  allow_data_loss: true\n"
            await edit(js, manifest, allowed, "max_age allowed")
            for _ in range(50):  # the server's age timer removes the expired messages
                info = await js.stream_info("events")
                if info is not None and info.state.messages == 0:
                    break
                await asyncio.sleep(0.05)
            await show(js, "expired")
    finally:
        await js.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", metavar="URL",
                        help="use this server instead of starting one (nothing else may "
                             "manage a stream named `events` there)")
    server = parser.parse_args().server
    reconciler.setup_logging("console")  # the product's events, as `watch` prints them
    if server:
        asyncio.run(main(server))
    else:
        with scratch_server(announce=print) as own:
            asyncio.run(main(own.url))
