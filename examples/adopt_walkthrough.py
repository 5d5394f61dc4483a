"""A stream that an application made itself, taken under management without a change.

NATS by Example's limits-based stream makes `events` in its own code: nats-py's `add_stream`
(`events.*`, file storage), six messages, then three `update_stream` calls that set 10
messages, 300 bytes and a 0.1 s max age. This script runs that application code first, then
the reconciler's CLI as a user would, in a temporary directory: `export` writes the manifest
from the server, `git` commits it, `plan` shows the stream as `adopt` (exit 0: in sync),
`apply` records ownership in the stream's metadata and changes nothing else, and the next
`plan` shows no changes. It compares the stream before and after the apply: the same
messages and sequence numbers, the same creation time, the same configuration.

It starts a nats-server of its own on a free loopback port, with its data in a temporary
directory removed at the end, so it never meets `make run` or leaves anything behind.
`--server URL` runs it against a server of yours instead: one without a stream named
`events`.

    .venv/bin/python examples/adopt_walkthrough.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nats

from reconciler.testing import scratch_server

SEED = ["events.page_loaded", "events.mouse_clicked", "events.mouse_clicked",
        "events.page_loaded", "events.mouse_clicked", "events.input_focused"]

# what adoption may add to a stream: these metadata keys, nothing else
OWNER_KEYS = ("jetstream-reconciler/owner", "jetstream-reconciler/manifest")


async def stream_info(nc: nats.NATS) -> dict[str, Any]:
    """The stream as the server reports it (the JetStream API's JSON, not nats-py's copy)."""
    reply = await nc.request("$JS.API.STREAM.INFO.events", b"", timeout=10)
    info: dict[str, Any] = json.loads(reply.data)
    if "error" in info:
        raise SystemExit(f"STREAM.INFO events: {info['error']}")
    return info


def state_line(step: str, info: dict[str, Any]) -> str:
    c, s = info["config"], info["state"]
    return (f"[{step}] messages={s['messages']} bytes={s['bytes']} first_seq={s['first_seq']} "
            f"last_seq={s['last_seq']} max_msgs={c['max_msgs']} max_bytes={c['max_bytes']} "
            f"max_age={c['max_age']}ns")


async def application(server: str) -> None:
    """The application as NATS by Example writes it, with plain nats-py: it makes `events`
    and sets its limits itself. (nats-py's `update_stream` replaces the whole configuration,
    so each call names all of it; a float `max_age` goes out as `int(s * 1e9)` ns, 100000000
    for 0.1.)"""
    nc = await nats.connect(server)
    try:
        js = nc.jetstream()
        await js.add_stream(name="events", subjects=["events.*"], storage="file")
        for subject in SEED:
            await js.publish(subject, b"")
        print(state_line("app: add_stream, 6 published", await stream_info(nc)))
        limits: dict[str, Any] = {}
        for field, value in (("max_msgs", 10), ("max_bytes", 300), ("max_age", 0.1)):
            limits[field] = value
            await js.update_stream(name="events", subjects=["events.*"], storage="file",
                                   **limits)
            print(state_line(f"app: update_stream {field}={value}", await stream_info(nc)))
        # as in the original: the messages outlive max_age and the server removes them
        for _ in range(400):
            info = await stream_info(nc)
            if info["state"]["messages"] == 0:
                break
            await asyncio.sleep(0.05)
        print(state_line("app: after max_age", info))
    finally:
        await nc.close()


async def snapshot(server: str) -> dict[str, Any]:
    nc = await nats.connect(server)
    try:
        return await stream_info(nc)
    finally:
        await nc.close()


def cli_env(server: str) -> dict[str, str]:
    """The user's environment for the CLI, pointed at this server: without settings of the
    reconciler's or the `nats` CLI's (a NATS_CONTEXT would name another server), and with a
    git of no user configuration (no hooks, no signing) and an author for the commit."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NATS_", "JETSTREAM_RECONCILER_", "GIT_"))}
    env.update(NATS_URL=server, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="Adopt Walkthrough", GIT_AUTHOR_EMAIL="walkthrough@example.invalid",
               GIT_COMMITTER_NAME="Adopt Walkthrough",
               GIT_COMMITTER_EMAIL="walkthrough@example.invalid")
    return env


def run(shown: list[str], argv: list[str], cwd: Path, env: dict[str, str],
        expect: int = 0) -> str:
    """Run a command as the user would, print it with its output and its exit code, and stop
    the walkthrough when the exit code is not the one expected."""
    print(f"\n$ {shlex.join(shown)}")
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    print(done.stdout, end="")
    for line in done.stderr.splitlines():
        try:  # the reconciler's events (JSON lines on a stderr that is not a terminal)
            event = json.loads(line)
            stream = f" stream={event['stream']}" if "stream" in event else ""
            print(f"  (stderr: event {event['event']}{stream})")
        except (ValueError, TypeError, KeyError):
            print(f"  (stderr: {line})")
    print(f"(exit {done.returncode})")
    if done.returncode != expect:
        raise SystemExit(f"{shlex.join(shown)}: exit {done.returncode}, expected {expect}")
    return done.stdout


def reconciler_cli(args: str, cwd: Path, env: dict[str, str]) -> str:
    return run(["jetstream-reconciler", *args.split()],
               [sys.executable, "-m", "reconciler", *args.split()], cwd, env)


def manage(server: str, home: Path) -> None:
    env = cli_env(server)
    reconciler_cli("export --stream events --out streams/", home, env)
    print("\n--- streams/events.yaml")
    print((home / "streams" / "events.yaml").read_text(), end="")
    git = shutil.which("git", path=env.get("PATH"))
    if git is None:
        print("\n(git is not installed here: not committing the manifest)")
    else:
        for args in (["init", "--quiet"], ["add", "streams/"],
                     ["commit", "--quiet", "--message", "The events stream, as exported"]):
            run(["git", *args], [git, *args], home, env)
    out = reconciler_cli("plan --detailed-exitcode streams/", home, env)
    assert "adopt: in sync" in out, out
    before = asyncio.run(snapshot(server))
    print("\n" + state_line("before apply", before))
    out = reconciler_cli("apply streams/", home, env)
    assert " 1 adopted," in out, out
    after = asyncio.run(snapshot(server))
    print("\n" + state_line("after apply", after))
    compare(before, after)
    out = reconciler_cli("plan --detailed-exitcode streams/", home, env)
    assert "= events (streams/events.yaml:4:1): no changes" in out, out


def compare(before: dict[str, Any], after: dict[str, Any]) -> None:
    """The apply changed nothing but the owner keys in the metadata."""
    if before["state"] != after["state"] or before["created"] != after["created"]:
        raise SystemExit(f"the stream's data changed: {before['state']} -> {after['state']}")
    old, new = dict(before["config"]), dict(after["config"])
    old_meta, new_meta = old.pop("metadata", {}), new.pop("metadata", {})
    if old != new:
        raise SystemExit(f"the configuration changed: {old} -> {new}")
    added = {k: v for k, v in new_meta.items() if old_meta.get(k) != v}
    if set(added) != set(OWNER_KEYS) or any(k not in new_meta for k in old_meta):
        raise SystemExit(f"the metadata changed beyond ownership: {old_meta} -> {new_meta}")
    print("same messages, sequence numbers, creation time and configuration; metadata "
          "gained " + ", ".join(f"{k}={added[k]}" for k in OWNER_KEYS))


def main(server: str) -> None:
    asyncio.run(application(server))
    with tempfile.TemporaryDirectory() as tmp:
        manage(server, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", metavar="URL",
                        help="use this server instead of starting one (it must not have a "
                             "stream named `events`)")
    server = parser.parse_args().server
    if server:
        main(server)
    else:
        with scratch_server(announce=print) as own:
            main(own.url)
