"""Watch mode end to end: real manifest files, a real nats-server, real signals."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
import structlog
from structlog.testing import capture_logs

from reconciler import jetstream
from reconciler.daemon import Daemon
from reconciler.model import ConnectOptions
from reconciler.settings import Settings
from reconciler.testing import NatsServer, free_port

EVENTS = """\
name: events
subjects: ["events.*"]
storage: {storage}
max_msgs: {max_msgs}
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Daemon]:
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.serve())
    try:
        await asyncio.wait_for(daemon.wait_passes(1), 10)
        yield daemon
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 10) == 0


async def until(daemon: Daemon, check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    """Wait, pass after pass, until `check()` holds."""
    deadline = time.monotonic() + timeout
    while True:
        seen = daemon.passes
        if await check():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("condition not reached")
        try:
            await asyncio.wait_for(daemon.wait_passes(seen + 1), remaining)
        except TimeoutError:
            if not await check():
                raise AssertionError("condition not reached") from None
            return



def settings_for(server: NatsServer, path: Path, **kw: Any) -> Settings:
    return Settings(paths=(str(path),), connect=ConnectOptions(servers=(server.url,)),
                    http_port=kw.pop("http_port", 0), **kw)


async def max_msgs(js: jetstream.JetStream, name: str = "events") -> int | None:
    info = await js.stream_info(name)
    return None if info is None else int(info.config["max_msgs"])


def sample(daemon: Daemon, name: str, **labels: str) -> float:
    """A metric's value as /metrics shows it."""
    value = daemon.metrics.registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name}{labels}"
    return value


def events_of(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_edits_are_applied(tmp_path: Path, nats_server: NatsServer, js: Any) -> None:
    manifest = tmp_path / "config" / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    with capture_logs() as logs:
        async with running(settings_for(nats_server, manifest.parent)) as daemon:
            assert await max_msgs(js) == 10
            write(manifest, EVENTS.format(storage="file", max_msgs=20))
            await until(daemon, lambda: _eq(max_msgs(js), 20))
            # an editor that saves by writing a new file and renaming it over the old one
            tmp = manifest.parent / ".events.yaml.swp"
            write(tmp, EVENTS.format(storage="file", max_msgs=30))
            os.replace(tmp, manifest)
            await until(daemon, lambda: _eq(max_msgs(js), 30))
    drift = [e for e in events_of(logs, "drift_detected") if e["action"] == "update"]
    assert drift[0]["source"] == "manifest"
    assert drift[0]["changes"] == [{"field": "max_msgs", "live": 10, "desired": 20}]
    assert events_of(logs, "stream_updated")[0]["reconcile_id"] == drift[0]["reconcile_id"]


async def _eq(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


def configmap(root: Path, files: dict[str, str], generation: int) -> None:
    """Lay out or update a directory as the kubelet does for a ConfigMap volume."""
    stamp = root / f"..2026_11_27_00_00_0{generation}.000000000"
    stamp.mkdir(parents=True)
    for name, text in files.items():
        (stamp / name).write_text(text)
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(stamp.name)
    os.replace(tmp_link, root / "..data")  # the atomic swap
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    for old in root.glob("..2026_*"):
        if old != stamp:
            for f in old.iterdir():
                f.unlink()
            old.rmdir()


async def test_own_changes_and_unrelated_files_start_no_pass(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    with capture_logs() as logs:
        async with running(settings_for(nats_server, manifest)) as daemon:
            write(tmp_path / "notes.txt", "beside the manifest, not a manifest")
            # the server's advisory of our own create, and the unrelated file, would each
            # have started a pass by now
            await asyncio.sleep(0.5)
            assert daemon.passes == 1
            # the positive controls: both watchers are alive, a manifest edit and another
            # client's change each start a pass
            write(manifest, EVENTS.format(storage="file", max_msgs=11))
            await until(daemon, lambda: _eq(max_msgs(js), 11))
            await _edit_as(nats_server, "someone", max_msgs=99)
            await until(daemon, lambda: _healed_to(logs, js, 11))
    triggers = [e["trigger"] for e in events_of(logs, "reconcile_finished")]
    assert "startup" in triggers[0].split(","), triggers
    assert "manifest" in triggers[1].split(","), triggers
    assert any("server" in t.split(",") for t in triggers[2:]), triggers


async def _healed_to(logs: list[dict[str, Any]], js: Any, value: int) -> bool:
    return len(events_of(logs, "stream_updated")) >= 2 and await max_msgs(js) == value


async def test_configmap_symlink_swap_is_applied(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    root = tmp_path / "configmap"
    configmap(root, {"events.yaml": EVENTS.format(storage="file", max_msgs=10)}, 1)
    async with running(settings_for(nats_server, root)) as daemon:
        assert await max_msgs(js) == 10
        configmap(root, {"events.yaml": EVENTS.format(storage="file", max_msgs=42)}, 2)
        await until(daemon, lambda: _eq(max_msgs(js), 42))


async def test_git_sync_link_swap_is_applied(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    """git-sync checks out each commit in a new directory and swaps a `current` link."""
    root = tmp_path / "git"
    write(root / "rev1" / "streams" / "events.yaml", EVENTS.format(storage="file", max_msgs=10))
    (root / "current").symlink_to("rev1")
    async with running(settings_for(nats_server, root / "current" / "streams")) as daemon:
        assert await max_msgs(js) == 10
        write(root / "rev2" / "streams" / "events.yaml",
              EVENTS.format(storage="file", max_msgs=11))
        (root / "tmp-link").symlink_to("rev2")
        os.replace(root / "tmp-link", root / "current")
        await until(daemon, lambda: _eq(max_msgs(js), 11))


def git_sync_checkout(root: Path, sha: str, max_msgs: int) -> None:
    """What git-sync v4 does for a new commit: objects under .git, a worktree, a link swap."""
    git = root / ".git"
    write(git / "objects" / sha[:2] / sha[2:], f"object {sha}")
    write(root / ".worktrees" / sha / "streams" / "events.yaml",
          EVENTS.format(storage="file", max_msgs=max_msgs))
    (root / f"tmp-link-{sha}").symlink_to(Path(".worktrees") / sha)
    os.replace(root / f"tmp-link-{sha}", root / "current")


def git_fetch_without_new_commit(root: Path) -> None:
    """git-sync's writes on every period even when the ref has not moved."""
    git = root / ".git"
    write(git / "FETCH_HEAD", f"{time.time()}\tbranch 'main'")
    write(git / "shallow.lock", "")
    os.replace(git / "shallow.lock", git / "shallow")
    write(git / "objects" / "pack" / "tmp_pack_x", "pack")
    (git / "objects" / "pack" / "tmp_pack_x").unlink()


def test_git_sync_watch_counts_only_the_link_and_its_checkout(tmp_path: Path) -> None:
    from reconciler.daemon.files import watch_target

    root = tmp_path / "git"
    git_sync_checkout(root, "aa11", 10)
    directory, relevant = watch_target(root / "current" / "streams")
    assert directory == root, "the link's directory, so that the swap is seen"
    assert relevant(str(root / "current"))
    assert relevant(str(root / ".worktrees" / "aa11" / "streams" / "events.yaml"))
    assert not relevant(str(root / ".git" / "FETCH_HEAD"))
    assert not relevant(str(root / ".git" / "objects" / "pack" / "tmp_pack_x"))
    assert not relevant(str(root / ".worktrees" / "aa11" / "README.md")), "outside the subdir"
    assert not relevant(str(root / ".worktrees" / "bb22" / "streams" / "events.yaml"))
    assert not relevant(str(root / "tmp-link-bb22"))
    git_sync_checkout(root, "bb22", 11)
    assert relevant(str(root / ".worktrees" / "bb22" / "streams" / "events.yaml"))
    assert not relevant(str(root / ".worktrees" / "aa11" / "streams" / "events.yaml"))


def test_git_sync_watch_set_up_before_the_first_checkout(tmp_path: Path) -> None:
    """In a pod the reconciler often starts before git-sync's first clone: /git is empty."""
    from reconciler.daemon.files import watch_target

    root = tmp_path / "git"
    root.mkdir()
    directory, relevant = watch_target(root / "current" / "streams")
    assert directory == root
    git_sync_checkout(root, "aa11", 10)
    assert relevant(str(root / "current")), "the first link is created"
    assert not relevant(str(root / ".git" / "FETCH_HEAD"))
    assert not relevant(str(root / ".worktrees" / "cc33" / "streams" / "events.yaml"))
    assert relevant(str(root / ".worktrees" / "aa11" / "streams" / "events.yaml"))


def test_a_missing_file_or_directory_counts_only_itself(tmp_path: Path) -> None:
    from reconciler.daemon.files import watch_target

    directory, relevant = watch_target(tmp_path / "config" / "events.yaml")
    assert directory == tmp_path
    assert relevant(str(tmp_path / "config" / "events.yaml"))
    assert relevant(str(tmp_path / "config")), "created with the file in it"
    assert not relevant(str(tmp_path / "notes.txt"))
    directory, relevant = watch_target(tmp_path / "config")
    assert relevant(str(tmp_path / "config" / "events.yaml"))
    assert not relevant(str(tmp_path / "configs"))


def test_configmap_file_watch_counts_the_data_link_swap(tmp_path: Path) -> None:
    from reconciler.daemon.files import watch_target

    root = tmp_path / "configmap"
    configmap(root, {"events.yaml": EVENTS.format(storage="file", max_msgs=10)}, 1)
    directory, relevant = watch_target(root / "events.yaml")
    assert directory == root
    assert relevant(str(root / "events.yaml"))
    assert relevant(str(root / "..data")), "a ConfigMap update renames ..data"
    assert not relevant(str(root / "other.yaml"))


async def test_git_sync_fetches_without_a_new_commit_start_no_pass(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    """Only the link swap of a new commit counts, not git's writes beside it."""
    root = tmp_path / "git"
    git_sync_checkout(root, "aa11", 10)
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            async with running(settings_for(nats_server, root / "current" / "streams")) as daemon:
                assert await max_msgs(js) == 10
                for _ in range(3):
                    git_fetch_without_new_commit(root)
                # events arrive in order: once the swap is applied, the fetches were seen
                git_sync_checkout(root, "bb22", 11)
                await until(daemon, lambda: _eq(max_msgs(js), 11))
    finally:
        structlog.configure(**saved)
    changed = [p for e in events_of(logs, "files_changed") for p in e["files"]]
    assert str(root / "current") in changed
    assert not [p for p in changed if "/.git/" in p or p.endswith("/.git")], changed


async def test_out_of_band_change_is_healed_and_named(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    with capture_logs() as logs:
        async with running(settings_for(nats_server, manifest)) as daemon:
            await _edit_as(nats_server, "someone", max_msgs=99)
            await until(daemon, lambda: _healed(logs, js))
    drift = [e for e in events_of(logs, "drift_detected") if e["action"] == "update"]
    assert drift[0]["source"] == "server"
    assert drift[0]["actor"] == "someone"
    assert drift[0]["changes"] == [{"field": "max_msgs", "live": 99, "desired": 10}]


async def _healed(logs: list[dict[str, Any]], js: Any) -> bool:
    return bool(events_of(logs, "stream_updated")) and await max_msgs(js) == 10


async def _edit_as(server: NatsServer, name: str, **changes: Any) -> None:
    """Change the live stream the way `nats stream edit` does, from another client."""
    nc = await nats.connect(server.url, name=name)
    try:
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.events", b"")).data)
        config = info["config"] | changes
        reply = json.loads((await nc.request("$JS.API.STREAM.UPDATE.events",
                                             json.dumps(config).encode())).data)
        assert "error" not in reply, reply
    finally:
        await nc.close()


async def test_report_mode_leaves_the_server_alone(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10)
          + "reconcile:\n  drift: report\n")
    await js.create_stream({"name": "events", "subjects": ["events.*"], "max_msgs": 10})
    with capture_logs() as logs:
        async with running(settings_for(nats_server, manifest)) as daemon:
            await _edit_as(nats_server, "someone", max_msgs=99)
            await until(daemon, lambda: _reported(logs))
            assert await max_msgs(js) == 99
            assert sample(daemon, "jetstream_reconciler_streams", state="drifted") == 1
            assert sample(daemon, "jetstream_reconciler_reconciles_total", result="blocked") == 0
            assert sample(daemon, "jetstream_reconciler_reconciles_total",
                          result="success") >= 2
    assert not events_of(logs, "stream_updated")


async def _reported(logs: list[dict[str, Any]]) -> bool:
    return any(e["action"] == "report" and e["source"] == "server"
               for e in events_of(logs, "drift_detected"))


async def test_deleted_stream_is_recreated(tmp_path: Path, nats_server: NatsServer,
                                           js: Any) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    async with running(settings_for(nats_server, manifest)) as daemon:
        created = daemon.passes
        await js.delete_stream("events")
        await until(daemon, lambda: _eq(max_msgs(js), 10))
        # the pass that recreated it may still be finishing
        await asyncio.wait_for(daemon.wait_passes(created + 1), 10)


async def test_server_restart_converges(tmp_path: Path, nats_server: NatsServer) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="memory", max_msgs=10))
    async with running(settings_for(nats_server, manifest)) as daemon:
        nats_server.restart()  # memory streams are gone after a restart
        js = await jetstream.connect(ConnectOptions(servers=(nats_server.url,)))
        try:
            await until(daemon, lambda: _eq(max_msgs(js), 10))
        finally:
            await js.close()
        assert daemon.readiness() == (True, [])


async def test_unreachable_at_start_then_connects(tmp_path: Path) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="memory", max_msgs=10))
    server = NatsServer(tmp_path / "js", port=free_port())
    daemon = Daemon(settings_for(server, manifest))
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.serve())
        try:
            while not events_of(logs, "nats_unreachable"):
                await asyncio.sleep(0.05)
            assert daemon.readiness()[0] is False
            server.start()
            await asyncio.wait_for(daemon.wait_passes(1), 15)
            js = await jetstream.connect(ConnectOptions(servers=(server.url,)))
            assert await max_msgs(js) == 10
            await js.close()
        finally:
            daemon.stop()
            assert await asyncio.wait_for(task, 10) == 0
            server.stop()


async def test_invalid_edit_changes_nothing_until_fixed(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    with capture_logs() as logs:
        async with running(settings_for(nats_server, manifest)) as daemon:
            write(manifest, EVENTS.format(storage="file", max_msgs=20) + "max_age: 30\n")
            await until(daemon, lambda: _has(logs, "manifest_invalid"))
            ready, reasons = daemon.readiness()
            assert not ready and reasons[0].startswith("1 manifest problem (first: ")
            assert await max_msgs(js) == 10
            write(manifest, EVENTS.format(storage="file", max_msgs=20) + "max_age: 30s\n")
            await until(daemon, lambda: _eq(max_msgs(js), 20))
            assert daemon.readiness() == (True, [])
    invalid = events_of(logs, "manifest_invalid")[0]
    assert invalid["file"] == str(manifest) and invalid["line"] == 5


async def _has(logs: list[dict[str, Any]], event: str) -> bool:
    return bool(events_of(logs, event))


async def test_http_endpoints(tmp_path: Path, nats_server: NatsServer) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    port = free_port()
    async with running(settings_for(nats_server, manifest, http_port=port,
                                    http_host="127.0.0.1")):
        health = await asyncio.to_thread(_get, port, "/healthz")
        ready = await asyncio.to_thread(_get, port, "/readyz")
        metrics = await asyncio.to_thread(_get, port, "/metrics")
    assert health == (200, "ok\n")
    assert ready[0] == 200
    assert ready[1].startswith("ready\nleader: this process (")
    assert ready[1].endswith(") holds the lease default\n")
    assert metrics[0] == 200
    assert "jetstream_reconciler_reconciles_total{result=\"success\"} 0.0" not in metrics[1]
    for name in ("jetstream_reconciler_reconciles_total{result=\"success\"}",
                 "jetstream_reconciler_reconcile_duration_seconds_bucket",
                 "jetstream_reconciler_drift_events_total{source=\"manifest\",stream=\"events\"}",
                 "jetstream_reconciler_streams{state=\"in_sync\"} 1.0",
                 "jetstream_reconciler_nats_connected 1.0",
                 "jetstream_reconciler_last_success_timestamp_seconds"):
        assert name in metrics[1], name


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_http_port_in_use_is_a_clear_error(tmp_path: Path, nats_server: NatsServer) -> None:
    import socket

    from reconciler.errors import SettingsError

    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = Daemon(settings_for(nats_server, manifest, http_port=port,
                                     http_host="127.0.0.1"))
        with pytest.raises(SettingsError, match=f"cannot serve HTTP on 127.0.0.1:{port}: "):
            await daemon.serve()


def test_sigterm_stops_quickly_and_cleanly(tmp_path: Path, nats_server: NatsServer) -> None:
    manifest = tmp_path / "events.yaml"
    write(manifest, EVENTS.format(storage="file", max_msgs=10))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "watch", str(manifest), "--server", nats_server.url,
         "--http-port", "0", "--log-format", "json"],
        stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if '"reconcile_finished"' in line:
            break
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    rest = proc.stderr.read()
    assert code == 0
    assert elapsed < 5
    assert "Traceback" not in rest
    assert json.loads(rest.strip().splitlines()[-1])["event"] == "watch_stopped"


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()
