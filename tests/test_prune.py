"""Ownership, undeclared streams and prune against a real server: adoption, the report of a
stream whose manifest is gone, and each guard on deleting it (CLI and watch mode)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.cli import main
from reconciler.model import LEASE_STREAM
from reconciler.plan.ownership import MANIFEST_KEY, OWNER_KEY
from reconciler.plan.prune import Prune
from reconciler.testing import NatsServer, TestClient
from tests.test_watch import events_of, running, settings_for, until

pytestmark = pytest.mark.usefixtures("clean_env")




def declare(directory: Path, *names: str, extra: str = "") -> Path:
    """One manifest file per stream in `directory` (made if missing); other files removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        if old.stem not in names:
            old.unlink()
    for name in names:
        (directory / f"{name}.yaml").write_text(
            f"name: {name}\nsubjects: ['{name}.>']\nstorage: memory\n{extra}")
    return directory


class Cli:
    def __init__(self, server: NatsServer, capsys: pytest.CaptureFixture[str]) -> None:
        self.server, self.capsys = server, capsys

    async def __call__(self, *args: str) -> tuple[int, str, list[dict[str, Any]]]:
        """The command as a user runs it (in a thread: it runs its own event loop)."""
        code = await asyncio.to_thread(
            main, [*args, "--server", self.server.url, "--log-format", "json"])
        out, err = self.capsys.readouterr()
        logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        return code, out, logs


@pytest.fixture
def cli(nats_server: NatsServer, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(nats_server, capsys)


async def names(js: TestClient) -> set[str]:
    """The streams on the server, but the reconcilers' lease bucket."""
    return {s.name for s in (await js.list_streams()).streams} - {LEASE_STREAM}


async def fill(js: TestClient, name: str, count: int) -> tuple[int, int]:
    for i in range(count):
        await js.publish(f"{name}.x", b"m" * (i + 1))
    info = await js.stream_info(name)
    assert info is not None
    return info.state.messages, info.state.bytes


# --- ownership ---------------------------------------------------------------------------------


async def test_a_stream_made_elsewhere_is_adopted_by_apply_and_then_in_sync(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    await js.raw_stream_request("CREATE", {"name": "events", "subjects": ["events.>"],
                                           "storage": "memory"})
    config = str(declare(tmp_path / "config", "events"))
    code, out, _ = await cli("plan", "--detailed-exitcode", config)
    assert code == 0  # in sync: adoption changes no stream
    assert "@ events" in out and "adopt: in sync; apply records ownership" in out
    assert "Plan: 0 to create, 0 to update, 1 to adopt, 0 blocked, 0 unchanged." in out
    code, out, logs = await cli("apply", config)
    assert code == 0 and "1 adopted" in out
    (adopted,) = events_of(logs, "stream_adopted")
    assert adopted["manifest"] == f"{config}/events.yaml"
    live = await js.stream_info("events")
    assert live is not None
    assert live.config["metadata"][OWNER_KEY] == "default"
    assert live.config["metadata"][MANIFEST_KEY] == f"{config}/events.yaml"
    assert (await cli("plan", "--detailed-exitcode", config))[0] == 0


async def test_a_stream_of_another_owner_is_never_written(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = str(declare(tmp_path / "config", "events"))
    assert (await cli("apply", config, "--owner", "team-b"))[0] == 0
    declare(tmp_path / "config", "events", extra="max_msgs: 5\n")
    code, out, _ = await cli("apply", config, "--owner", "team-a")
    assert code == 3
    assert "belongs to owner 'team-b'" in out and "--owner team-b" in out
    live = await js.stream_info("events")
    assert live is not None and live.config["max_msgs"] == -1
    assert live.config["metadata"][OWNER_KEY] == "team-b"


async def test_a_manifest_may_not_write_the_ownership_keys(tmp_path: Path, cli: Cli) -> None:
    config = declare(tmp_path / "config", "events",
                     extra="metadata:\n  jetstream-reconciler/owner: me\n")
    code, _, _ = await cli("validate", str(config))
    assert code == 1


# --- undeclared streams --------------------------------------------------------------------------


async def test_a_stream_whose_manifest_is_gone_is_reported_and_kept(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b")
    assert (await cli("apply", str(config)))[0] == 0
    messages, size = await fill(js, "b", 3)
    await js.raw_stream_request("CREATE", {"name": "legacy", "storage": "memory"})
    declare(config, "a")
    code, out, _ = await cli("plan", "--detailed-exitcode", str(config))
    assert code == 0  # nothing to write: a kept stream is not a pending change
    assert (f"? b: undeclared: owned, in no manifest (last declared in {config}/b.yaml); "
            f"3 messages ({size} bytes); kept; --prune deletes it") in out
    assert "? legacy: unmanaged" in out
    assert out.endswith("Plan: 0 to create, 0 to update, 0 blocked, 1 unchanged, 1 undeclared, "
                        "1 unmanaged.\n")
    document = json.loads((await cli("plan", "--output", "json", str(config)))[1])
    assert document["undeclared"] == [{"name": "b", "manifest": f"{config}/b.yaml",
                                       "messages": messages, "bytes": size, "note": None}]
    assert document["summary"]["undeclared"] == 1
    code, _, logs = await cli("apply", str(config))
    assert code == 0
    (event,) = events_of(logs, "stream_undeclared")
    assert (event["stream"], event["messages"], event["bytes"], event["prune"]) == (
        "b", messages, size, "kept")
    assert events_of(logs, "reconcile_finished")[0]["undeclared"] == 1
    assert await names(js) == {"a", "b", "legacy"}


# --- prune and its guards ------------------------------------------------------------------------


async def test_prune_deletes_an_empty_owned_stream_and_says_so(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b")
    assert (await cli("apply", str(config)))[0] == 0
    declare(config, "a")
    code, out, _ = await cli("plan", "--prune", "--detailed-exitcode", str(config))
    assert code == 2
    assert f"- b (last declared in {config}/b.yaml): delete" in out
    code, out, logs = await cli("apply", "--prune", str(config))
    assert code == 0 and "1 deleted" in out
    (deleted,) = events_of(logs, "stream_deleted")
    assert deleted["stream"] == "b" and deleted["impact"] is None
    assert await names(js) == {"a"}


async def test_deleting_messages_needs_consent_and_destroys_exactly_what_was_planned(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b")
    assert (await cli("apply", str(config)))[0] == 0
    messages, size = await fill(js, "b", 4)
    declare(config, "a")
    code, out, _ = await cli("apply", "--prune", str(config))
    assert code == 3
    assert f"blocked: deleting it destroys 4 messages ({size} bytes)" in out
    assert await names(js) == {"a", "b"}
    document = json.loads((await cli("plan", "--prune", "--allow-data-loss", "--output",
                                      "json", str(config)))[1])
    (planned,) = [s for s in document["streams"] if s["name"] == "b"]
    assert planned["action"] == "delete" and planned["undeclared"] is True
    assert (planned["impact"]["messages"], planned["impact"]["bytes"]) == (messages, size)
    code, _, logs = await cli("apply", "--prune", "--allow-data-loss", str(config))
    assert code == 0
    (deleted,) = events_of(logs, "stream_deleted")
    assert (deleted["impact"]["messages"], deleted["impact"]["bytes"]) == (messages, size)
    assert await names(js) == {"a"}


async def test_nothing_is_pruned_when_no_manifest_declares_any_stream(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a")
    assert (await cli("apply", str(config)))[0] == 0
    declare(config)
    code, out, _ = await cli("apply", "--prune", "--allow-data-loss", "--max-deletes", "5",
                       str(config))
    assert code == 3
    assert "no manifest declares any stream: pruning would delete every stream" in out
    assert await names(js) == {"a"}


async def test_nothing_changes_when_a_path_is_missing_or_a_manifest_is_invalid(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b")
    assert (await cli("apply", str(config)))[0] == 0
    declare(config, "a")
    code, _, _ = await cli("apply", "--prune", str(config), str(tmp_path / "not-cloned-yet"))
    assert code == 1
    (config / "broken.yaml").write_text("name: c\nmax_age: 30\n")
    code, _, _ = await cli("apply", "--prune", str(config))
    assert code == 1
    assert await names(js) == {"a", "b"}


async def test_more_deletions_than_max_deletes_block_them_all(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b", "c")
    assert (await cli("apply", str(config)))[0] == 0
    declare(config, "a")
    code, out, _ = await cli("apply", "--prune", str(config))
    assert code == 3
    assert "2 streams would be deleted, more than --max-deletes 1 allows" in out
    assert await names(js) == {"a", "b", "c"}
    code, out, _ = await cli("apply", "--prune", "--max-deletes", "2", str(config))
    assert code == 0 and "2 deleted" in out
    assert await names(js) == {"a"}


async def test_streams_not_ours_and_streams_that_deny_delete_are_never_pruned(
    tmp_path: Path, cli: Cli, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "kept", extra="deny_delete: true\n")
    assert (await cli("apply", str(config)))[0] == 0
    await js.raw_stream_request("CREATE", {"name": "legacy", "storage": "memory"})
    other = str(declare(tmp_path / "other", "theirs"))
    assert (await cli("apply", other, "--owner", "team-b"))[0] == 0
    declare(config, "a", extra="deny_delete: true\n")
    code, out, _ = await cli("apply", "--prune", "--allow-data-loss", "--max-deletes", "10",
                       str(config))
    assert code == 3
    assert "blocked: deny_delete is set: its messages may not be deleted, so prune never " \
        "deletes the stream" in out
    assert "? legacy: unmanaged" in out and "? theirs: unmanaged" in out
    assert await names(js) == {"a", "kept", "legacy", "theirs"}


# --- watch mode ------------------------------------------------------------------------------


async def test_watch_prunes_only_after_the_grace_period(
    tmp_path: Path, nats_server: NatsServer, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b", "c")
    settings = settings_for(nats_server, config, prune=True, prune_grace_s=1.5, max_deletes=5)
    with capture_logs() as logs:
        async with running(settings) as daemon:
            assert await names(js) == {"a", "b", "c"}
            # c goes and comes back within the grace period (a file moved in two steps)
            declare(config, "a", "b")
            await until(daemon, lambda: _has(logs, "stream_undeclared", "c"))
            declare(config, "a", "b", "c")
            await asyncio.sleep(0.1)
            removed = time.monotonic()
            declare(config, "a")
            await until(daemon, lambda: _has(logs, "stream_undeclared", "b"))
            assert "b" in await names(js)
            await until(daemon, lambda: _gone(js, "b"), timeout=15)
            assert time.monotonic() - removed >= 1.5
            assert daemon.metrics.registry.get_sample_value(
                "jetstream_reconciler_streams_deleted_total", {"stream": "b"}) >= 1
    assert await names(js) == {"a"}
    undeclared = [e["stream"] for e in events_of(logs, "stream_undeclared")]
    assert undeclared.count("b") == 1  # once per appearance, not at every pass
    held = [e for e in events_of(logs, "stream_undeclared") if e["stream"] == "b"]
    assert held[0]["prune"] == "held"
    assert [e["stream"] for e in events_of(logs, "stream_deleted")].count("b") == 1


async def test_watch_prunes_nothing_while_a_manifest_is_invalid(
    tmp_path: Path, nats_server: NatsServer, js: TestClient
) -> None:
    config = declare(tmp_path / "config", "a", "b")
    settings = settings_for(nats_server, config, prune=True, prune_grace_s=0.3)
    with capture_logs() as logs:
        async with running(settings) as daemon:
            declare(config, "a")
            (config / "c.yaml").write_text("name: c\nmax_age: 30\n")  # no unit: invalid
            # past its grace period, b is planned for deletion and refused
            await until(daemon, lambda: _has(logs, "change_blocked", "b"))
            assert "b" in await names(js)
            blocked = [e for e in events_of(logs, "change_blocked") if e["stream"] == "b"]
            assert "missing, unreadable or invalid" in blocked[-1]["reasons"][0]
            (config / "c.yaml").write_text("name: c\nsubjects: [c]\nstorage: memory\n")
            await until(daemon, lambda: _gone(js, "b"), timeout=15)
    assert await names(js) == {"a", "c"}


async def _has(logs: list[dict[str, Any]], event: str, stream: str) -> bool:
    return any(e["event"] == event and e.get("stream") == stream for e in logs)


async def _gone(js: TestClient, name: str) -> bool:
    return await js.stream_info(name) is None


# --- the order of a pass (the fake records each call) ---------------------------------------


async def test_deletions_come_after_every_other_write_and_after_a_fresh_read() -> None:
    """A create never races the server's clean-up after a deletion (10049), and each
    deletion reads its stream again first."""
    from reconciler.model import LiveStream, StreamSpec
    from reconciler.plan import canonical
    from reconciler.plan.ownership import owned
    from reconciler.reconcile import reconcile
    from reconciler.testing import FakeJetStream

    fake = FakeJetStream()
    old = owned(canonical({"name": "old", "storage": "memory"}), "default", "config/old.yaml")
    fake.streams["old"] = LiveStream("old", old)
    specs = [StreamSpec(f"new{i}", {"name": f"new{i}", "storage": "memory"}) for i in range(3)]
    held = fake.pause("create_stream")  # the creates take their time
    with capture_logs():
        run = asyncio.create_task(reconcile(fake, specs, prune=Prune()))
        await held.entered.wait()
        for _ in range(20):
            await asyncio.sleep(0)
        assert "old" in fake.streams and "stream_info:old" not in fake.calls
        held.release()
        result = await run
    assert sorted(fake.streams) == ["new0", "new1", "new2"]
    assert fake.calls[-2:] == ["stream_info:old", "delete_stream:old"]
    assert result.counts() == {"created": 3, "deleted": 1}
