"""Fight benchmark: our updates per minute to a stream another writer keeps changing back.

A real nats-server and the daemon as a real subprocess (`python -m reconciler watch`, the
default `--conflict-window 60s` unless --window is given), on loopback. A client named
`fighter` changes `max_msgs` of the managed stream, then puts its own value back each time it
sees the daemon's update in `$JS.EVENT.ADVISORY.API` (that is: as fast as it can). The bench
counts the daemon's updates to the stream, per window (a minute at the default), and the
fighter's.

    .venv/bin/python bench/fight.py [--minutes 4] [--window 60s] [--json FILE]

Target: after the first window, at most 6 of our updates per window. Exit 0 whatever the
figures; with --check, 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from watch_latency import EVENTS, DaemonProcess, finished, git_commit, machine

from reconciler.testing import NatsServer, stop_process
from reconciler.units import parse_duration

TARGET = 6


async def fight(work: Path, minutes: float, window_s: float) -> dict[str, Any]:
    server = NatsServer(work / "js").start()
    config = work / "config"
    config.mkdir()
    (config / "events.yaml").write_text(EVENTS.format(max_msgs=1000))
    daemon = DaemonProcess([config], server.url, work / "daemon.log",
                           extra=("--conflict-window", f"{window_s}s")).start()
    nc = await nats.connect(server.url, name="fighter")
    ours: list[float] = []
    theirs: list[float] = []
    try:
        await daemon.wait_event(lambda e: finished(e) and e.get("counts", {}).get("created") == 1,
                                timeout=30)
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.events", b"")).data)
        mine = json.dumps(info["config"] | {"max_msgs": 7}).encode()

        async def change() -> None:
            theirs.append(time.monotonic())
            await nc.request("$JS.API.STREAM.UPDATE.events", mine, timeout=5)

        async def on_api(msg: Any) -> None:
            event = json.loads(msg.data)
            if event.get("subject") == "$JS.API.STREAM.UPDATE.events" and \
                    (event.get("client") or {}).get("name") == "jetstream-reconciler":
                ours.append(time.monotonic())
                await change()

        await nc.subscribe("$JS.EVENT.ADVISORY.API", cb=on_api)
        await nc.flush()
        started = time.monotonic()
        await change()
        await asyncio.sleep(minutes * window_s)
    finally:
        await nc.close()
        code = stop_process(daemon.proc) if daemon.proc is not None else None
        server.stop()
    windows = int(minutes)

    def per_window(times: list[float]) -> list[int]:
        return [sum(1 for t in times if started + i * window_s <= t < started + (i + 1) * window_s)
                for i in range(windows)]

    conflicts = [e for _, e in daemon.events if e.get("event") == "conflict_detected"]
    return {
        "window_s": window_s,
        "our_updates_per_window": per_window(ours),
        "their_updates_per_window": per_window(theirs),
        "conflicts_detected": len(conflicts),
        "pauses_s": [c.get("paused_s") for c in conflicts],
        "daemon_exit_code": code,
    }


def render(results: dict[str, Any]) -> str:
    r = results["fight"]
    ours = r["our_updates_per_window"]
    worst = max(ours[1:], default=0)
    verdict = "PASS" if worst <= TARGET else "FAIL"
    return "\n".join([
        f"machine: {results['machine']}",
        f"commit: {results['commit']}",
        f"window: {r['window_s']:g} s (--conflict-window)",
        f"our updates per window:   {ours}",
        f"their updates per window: {r['their_updates_per_window']}",
        f"conflict_detected events: {r['conflicts_detected']}, pauses {r['pauses_s']} s",
        f"after the first window, at most {TARGET} of our updates per window: "
        f"{worst} {verdict}",
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4,
                        help="how long to fight, in windows (a minute each by default)")
    parser.add_argument("--window", default="60s", help="--conflict-window of the daemon")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    window_s = parse_duration(args.window) / 1e9
    with tempfile.TemporaryDirectory(prefix="fight-") as tmp:
        results = {"machine": machine(), "commit": git_commit(),
                   "fight": asyncio.run(fight(Path(tmp), args.minutes, window_s))}
    print(render(results), end="")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    ours = results["fight"]["our_updates_per_window"]
    return 1 if args.check and max(ours[1:], default=0) > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
