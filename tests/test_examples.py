"""The examples run as written, against a real server."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


ADOPT = ROOT / "examples" / "adopt_walkthrough.py"


def check_adopt_output(stdout: str, git: bool) -> None:
    commands = stdout.split("\n$ ")[1:]
    ran = [tuple(c.split("\n", 1)) for c in commands]
    shown = [c for c, _ in ran if c.startswith("jetstream-reconciler")]
    assert shown == ["jetstream-reconciler export --stream events --out streams/",
                     "jetstream-reconciler plan --detailed-exitcode streams/",
                     "jetstream-reconciler apply streams/",
                     "jetstream-reconciler plan --detailed-exitcode streams/"]
    assert re.findall(r"^\(exit (\d+)\)$", stdout, re.M) == ["0"] * len(ran)
    git_commands = [c for c, _ in ran if c.startswith("git ")]
    if git:
        assert git_commands == ["git init --quiet", "git add streams/",
                                "git commit --quiet --message 'The events stream, as exported'"]
    else:
        assert git_commands == []
        assert "(git is not installed here: not committing the manifest)" in stdout
    exported = stdout.split("--- streams/events.yaml\n", 1)[1].split("\n\n", 1)[0]
    assert exported.splitlines()[3:] == [
        "name: events", "subjects: [events.*]", "max_msgs: 10", "max_bytes: 300",
        "max_age: 100ms"]
    adopt = ("@ events (streams/events.yaml:4:1): adopt: in sync; apply records ownership in "
             "its metadata")
    first_plan = stdout.split("$ jetstream-reconciler plan --detailed-exitcode streams/\n")[1]
    assert first_plan.startswith(adopt + "\n\nPlan: 0 to create, 0 to update, 1 to adopt, "
                                 "0 blocked, 0 unchanged.\n(exit 0)\n")
    assert ("Apply: 0 created, 0 updated, 1 adopted, 0 unchanged, 0 blocked, 0 reported, "
            "0 failed.\n  (stderr: event stream_adopted stream=events)") in stdout
    assert stdout.endswith(
        "$ jetstream-reconciler plan --detailed-exitcode streams/\n"
        "= events (streams/events.yaml:4:1): no changes\n\n"
        "Plan: 0 to create, 0 to update, 0 blocked, 1 unchanged.\n(exit 0)\n")
    # the messages the application published are as they were: six published, expired
    # under its 0.1 s max age before the export, and the same state around the apply
    states = {line.split("]")[0][1:]: line.split("] ")[1] for line in stdout.splitlines()
              if line.startswith("[")}
    assert states["app: update_stream max_age=0.1"] == (
        "messages=6 bytes=296 first_seq=1 last_seq=6 max_msgs=10 max_bytes=300 "
        "max_age=100000000ns")
    assert states["before apply"] == states["after apply"] == (
        "messages=0 bytes=0 first_seq=7 last_seq=6 max_msgs=10 max_bytes=300 "
        "max_age=100000000ns")
    assert ("same messages, sequence numbers, creation time and configuration; metadata gained "
            "jetstream-reconciler/owner=default, "
            "jetstream-reconciler/manifest=streams/events.yaml\n") in stdout


def test_adopt_walkthrough_on_a_given_server_without_git(nats_server: NatsServer) -> None:
    run = subprocess.run([sys.executable, str(ADOPT), "--server", nats_server.url],
                         capture_output=True, text=True, timeout=120, env={"PATH": ""})
    assert run.returncode == 0, run.stdout + run.stderr
    check_adopt_output(run.stdout, git=False)


async def test_adopt_walkthrough_runs_on_its_own_server(
    nats_server: NatsServer, js: jetstream.JetStream
) -> None:
    """As the README runs it: on a server of its own, never the one in NATS_URL; with git."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    await js.create_stream({"name": "events", "subjects": ["events.*"], "max_msgs": 3})
    run = subprocess.run([sys.executable, str(ADOPT)], capture_output=True, text=True,
                         timeout=120, env={"PATH": str(Path(git).parent),
                                           "NATS_URL": nats_server.url})
    assert run.returncode == 0, run.stdout + run.stderr
    check_adopt_output(run.stdout, git=True)
    info = await js.stream_info("events")
    assert info is not None
    assert (info.config["max_msgs"], info.state.messages) == (3, 0)
    assert "jetstream-reconciler/owner" not in (info.config.get("metadata") or {})
