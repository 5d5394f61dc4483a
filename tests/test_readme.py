"""The README's commands, run as written."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.natsserver import NatsServer, free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def console_sessions() -> list[list[tuple[str, str]]]:
    """Each ```console block as (command, expected output) pairs."""
    sessions = []
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        pairs: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            else:
                pairs[-1][1].append(line)
        sessions.append([(cmd, "\n".join(out) + "\n") for cmd, out in pairs])
    return sessions


def test_readme_has_a_console_session() -> None:
    assert console_sessions()


@pytest.mark.parametrize("session", console_sessions())
def test_console_session(session: list[tuple[str, str]], nats_server: NatsServer) -> None:
    env = {**os.environ, "NATS_URL": nats_server.url, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for command, expected in session:
        run = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, (command, run.stderr)
        assert run.stdout == expected, command


def test_two_commands_are_make_targets() -> None:
    assert "make run " in README and "make test " in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec make test" in ci


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed").exists(),
                    reason="make run needs the project venv made by `make test`")
def test_make_run_watches_config_with_an_embedded_server() -> None:
    port = free_port()
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{port}",
           "JETSTREAM_RECONCILER_HTTP_PORT": "0", "JETSTREAM_RECONCILER_LOG_FORMAT": "json"}
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    events: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            line = proc.stdout.readline() if ready else ""
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1]["event"] == "reconcile_finished":
                    break
            elif ready and not line:
                break  # make exited
        finished = [e for e in events if e["event"] == "reconcile_finished"]
        assert finished, events
        # `events` is created on a fresh machine, or already there from an earlier run
        assert finished[0]["counts"] in ({"created": 1}, {"unchanged": 1})
        assert asyncio.run(_stream_exists(f"nats://127.0.0.1:{port}", "events"))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    rest = proc.stdout.read()
    assert '"embedded_server_stopped"' in rest
    assert "Traceback" not in rest


async def _stream_exists(url: str, name: str) -> bool:
    from reconciler import jetstream
    from reconciler.model import ConnectOptions

    async with await jetstream.connect(ConnectOptions(servers=(url,))) as js:
        return await js.stream_info(name) is not None
