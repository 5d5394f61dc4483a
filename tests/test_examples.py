"""The examples run as written, against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reconciler import jetstream
from reconciler.testing import NatsServer

ROOT = Path(__file__).resolve().parent.parent
WALKTHROUGH = ROOT / "examples" / "limits_walkthrough.py"


def check_walkthrough_output(stdout: str) -> None:
    states = [line for line in stdout.splitlines() if line.startswith("[")]
    # right after the update the server may not have run its age timer yet
    allowed = states.pop(5)
    assert allowed in (
        "[max_age allowed] messages=0 bytes=0 max_msgs=10 max_bytes=300B max_age=100ms",
        "[max_age allowed] messages=6 bytes=296 max_msgs=10 max_bytes=300B max_age=100ms",
    )
    assert states == [
        "[create] messages=0 bytes=0 max_msgs=unlimited max_bytes=unlimited max_age=0",
        "[published 6] messages=6 bytes=296 max_msgs=unlimited max_bytes=unlimited max_age=0",
        "[max_msgs] messages=6 bytes=296 max_msgs=10 max_bytes=unlimited max_age=0",
        "[max_bytes] messages=6 bytes=296 max_msgs=10 max_bytes=300B max_age=0",
        "[max_age] messages=6 bytes=296 max_msgs=10 max_bytes=300B max_age=0",
        "[expired] messages=0 bytes=0 max_msgs=10 max_bytes=300B max_age=100ms",
    ]
    assert ("blocked: max_age would discard 6 messages (296 bytes); set "
            "reconcile.allow_data_loss: true") in stdout


def test_limits_walkthrough_on_a_given_server(nats_server: NatsServer) -> None:
    run = subprocess.run([sys.executable, str(WALKTHROUGH), "--server", nats_server.url],
                         capture_output=True, text=True, timeout=60, env={"PATH": ""})
    assert run.returncode == 0, run.stderr
    check_walkthrough_output(run.stdout)


async def test_limits_walkthrough_runs_on_its_own_server(
    nats_server: NatsServer, js: jetstream.JetStream
) -> None:
    """As the README runs it: with no --server, not on NATS_URL (where a `make run` may be
    managing `events`), but on a server of its own, which it removes afterwards."""
    await js.create_stream({"name": "events", "subjects": ["events.*"], "max_msgs": 3})
    run = subprocess.run([sys.executable, str(WALKTHROUGH)], capture_output=True, text=True,
                         timeout=60, env={"PATH": "", "NATS_URL": nats_server.url})
    assert run.returncode == 0, run.stderr
    check_walkthrough_output(run.stdout)
    info = await js.stream_info("events")
    assert info is not None
    assert (info.config["max_msgs"], info.state.messages) == (3, 0)
