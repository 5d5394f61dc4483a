"""`kill -9` of nats-server in the middle of `apply`, then a restart on the same store.

The CLI runs as a subprocess against a real server holding its data in a fixed directory.
500 streams are declared (five multi-document files); once the apply reports progress the
server is frozen (SIGSTOP, so that requests are certainly in flight) and killed (SIGKILL).
The run must exit 1 with one line saying what happened and how many streams were not
applied, naming those whose request was sent but never answered (they may or may not have
been applied). Every stream it says it created must exist after the restart, and every
stream the restarted server does not hold as declared must be one the run reported as not
applied. The next apply converges.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing import NatsServer

COUNT = int(os.environ.get("RECONCILER_KILL_STREAMS", "500"))
FILES = 5


def write_manifests(root: Path) -> Path:
    config = root / "config"
    config.mkdir()
    for f in range(FILES):
        docs = [f"name: s{i}\nsubjects: ['s{i}.>']\nmax_msgs: 10\n"
                for i in range(f, COUNT, FILES)]
        (config / f"streams-{f}.yaml").write_text("---\n".join(docs))
    return config


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", *args]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "js").start()
    try:
        yield server
    finally:
        server.stop()


def events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_server_killed_mid_apply(tmp_path: Path, server: NatsServer) -> None:
    config = write_manifests(tmp_path)
    run = subprocess.Popen(cli("apply", str(config), "--server", server.url, "--log-format",
                               "json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None and run.stdout is not None
    # stdout (the plan, long) is read beside stderr, so that neither pipe fills up
    with ThreadPoolExecutor(1) as pool:
        stdout = pool.submit(run.stdout.read)
        err: list[str] = []
        for line in run.stderr:
            err.append(line.rstrip("\n"))
            if '"apply_progress"' in line and server.proc is not None:
                # the first hundred streams are applied
                os.kill(server.proc.pid, signal.SIGSTOP)  # requests in flight stay unanswered
                os.kill(server.proc.pid, signal.SIGKILL)
                server.proc.wait()
                server.proc = None
        out = stdout.result().splitlines()
    run.wait(timeout=60)
    assert run.returncode == 1, (out[-3:], err[-3:])

    logged = events(err)
    created = [e["stream"] for e in logged if e["event"] == "stream_created"]
    failed = {e["stream"]: e for e in logged if e["event"] == "apply_failed"}
    in_doubt = [name for name, e in failed.items() if e["in_doubt"]]
    assert len(created) >= 100 and in_doubt, (len(created), len(in_doubt))
    missing = {f"s{i}" for i in range(COUNT)} - set(created) - set(failed)
    assert not missing, (out[-1], [line for line in err if any(
        f'"{m}"' in line for m in missing)], [line for line in err if not line.startswith("{")])
    assert len(created) + len(failed) == COUNT
    assert not set(created) & set(failed)
    assert out[-1] == (f"Apply: {len(created)} created, 0 updated, 0 unchanged, 0 blocked, "
                       f"0 reported, {len(failed)} failed.")
    # one line for people: what happened, how many, which ones may have been applied
    errors = [line for line in err if not line.startswith("{")]
    assert errors == [
        f"error: the connection to {server.url} was lost during the apply: {len(failed)} of "
        f"{COUNT} streams to write were not applied: {len(failed) - len(in_doubt)} "
        f"were not sent, {len(in_doubt)} were sent but not answered and may or may not have "
        f"been applied ({', '.join(_in_plan_order(in_doubt))}); run apply again once the "
        "server is back"
    ]
    assert len(in_doubt) <= 32  # --concurrency: no more can be in flight

    server.start()  # same store directory, same port
    plan = subprocess.run(cli("plan", str(config), "--server", server.url, "-o", "json"),
                          capture_output=True, text=True, check=True)
    streams = {s["name"]: s["action"] for s in json.loads(plan.stdout)["streams"]}
    # every stream reported created is there as declared; what is not was reported failed
    assert {n for n in created if streams[n] != "noop"} == set()
    pending = {n for n, action in streams.items() if action != "noop"}
    assert pending <= set(failed)
    # what was not sent did not happen; what was in flight is either way
    assert set(failed) - set(in_doubt) <= pending
    assert {action for n, action in streams.items() if n in pending} == {"create"}

    again = subprocess.run(cli("apply", str(config), "--server", server.url, "--log-format",
                               "json"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.splitlines()[-1] == (
        f"Apply: {len(pending)} created, 0 updated, {COUNT - len(pending)} unchanged, "
        "0 blocked, 0 reported, 0 failed.")
    check = subprocess.run(cli("plan", "--detailed-exitcode", str(config), "--server",
                               server.url), capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-500:]


def _in_plan_order(names: list[str]) -> list[str]:
    """The plan lists streams in manifest order: file by file, document by document."""
    def key(name: str) -> tuple[int, int]:
        i = int(re.sub(r"\D", "", name))
        return i % FILES, i
    return sorted(names, key=key)
