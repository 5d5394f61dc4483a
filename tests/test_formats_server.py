"""NACK's examples and natscli's JSON against a real server: a stream made the way NACK or
`nats stream add` makes it (their JetStream API requests, sent as they are) is in sync with
the file it was made from: `plan` shows no change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest

from reconciler.cli import main
from reconciler.testing import NatsServer
from tests.test_formats import INFO, NACK

#: what NACK's default controller sends for a Stream: jsm.go's DefaultStream, then the spec
#: as Kubernetes hands it over (the CRD's defaults filled in)
_NACK_BASE: dict[str, Any] = {
    "retention": "limits", "max_consumers": -1, "max_msgs_per_subject": -1, "max_msgs": -1,
    "max_bytes": -1, "max_age": 0, "max_msg_size": -1, "storage": "memory", "discard": "old",
    "num_replicas": 1, "duplicate_window": 0,
}
NACK_CREATES: dict[str, dict[str, Any]] = {
    "stream.yml": {"name": "mystream", "subjects": ["orders.*"], "storage": "file",
                   "max_age": 3_600_000_000_000},
    "stream_mirror.yml": {"name": "mystream-mirror", "storage": "file", "mirror": {
        "name": "my-publish-subj",
        "external": {"api": "FOO.JS.API", "deliver": "FOO.DELIVER.SYNC.MIRRORS"}}},
    "stream_placement.yml": {"name": "mystream-placement", "storage": "file",
                             "placement": {"tags": ["NODE_0"]}},
    "stream_servers.yml": {"name": "mystream"},
    "stream_sources.yml": {"name": "mystream-sources", "storage": "file",
                           "sources": [{"name": "m1"}, {"name": "m2"}]},
}


async def api(url: str, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        reply = await nc.request(subject, json.dumps(body).encode() if body else b"",
                                 timeout=10)
    finally:
        await nc.close()
    answer: dict[str, Any] = json.loads(reply.data)
    assert "error" not in answer, answer
    return answer


def plan(capsys: Any, url: str, *paths: Path) -> tuple[int, str]:
    code = main(["plan", "--detailed-exitcode", "-s", url, "--log-format", "json",
                 *map(str, paths)])
    return code, capsys.readouterr().out


def in_sync(code: int, out: str) -> bool:
    """`plan --detailed-exitcode` found nothing to change: the stream, made by another
    tool, is only to be adopted."""
    return code == 0 and out.endswith("\nPlan: 0 to create, 0 to update, 1 to adopt, 0 blocked, "
                                      "0 unchanged.\n") and ": adopt: in sync;" in out


@pytest.fixture
def tagged_server(tmp_path: Path) -> Any:
    """A server with the tag NACK's placement example asks for."""
    conf = tmp_path / "tags.conf"
    conf.write_text('server_tags: ["NODE_0"]\n')
    server = NatsServer(tmp_path / "js", extra_args=("-c", str(conf))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("example", sorted(NACK_CREATES))
def test_a_stream_nack_made_is_in_sync_with_its_nack_object(
    example: str, tagged_server: NatsServer, capsys: Any
) -> None:
    body = {**_NACK_BASE, **NACK_CREATES[example]}
    if "mirror" in body or "sources" in body:
        body.pop("duplicate_window")
    name = body["name"]
    asyncio.run(api(tagged_server.url, f"$JS.API.STREAM.CREATE.{name}", body))
    code, out = plan(capsys, tagged_server.url, NACK / example)
    assert in_sync(code, out), out


def test_a_nack_object_without_storage_would_not_match_a_file_stream(
    nats_server: NatsServer, capsys: Any
) -> None:
    """The default applied is NACK's (memory), not the server's (file): a stream made with
    the server's default differs, and the plan says so."""
    asyncio.run(api(nats_server.url, "$JS.API.STREAM.CREATE.mystream", {"name": "mystream"}))
    code, out = plan(capsys, nats_server.url, NACK / "stream_servers.yml")
    assert code == 3 and "storage" in out, out


#: a file for `nats stream add --config`: the whole configuration, durations in nanoseconds
ADD_CONFIG = {
    "name": "orders", "subjects": ["orders.>"], "retention": "limits", "max_consumers": -1,
    "max_msgs_per_subject": 100, "max_msgs": -1, "max_bytes": 1_073_741_824,
    "max_age": 86_400_000_000_000, "max_msg_size": -1, "storage": "file", "discard": "old",
    "num_replicas": 1, "duplicate_window": 120_000_000_000, "sealed": False,
    "deny_delete": False, "deny_purge": False, "allow_rollup_hdrs": True,
    "allow_direct": True, "mirror_direct": False, "compression": "s2",
    "consumer_limits": {"inactive_threshold": 300_000_000_000, "max_ack_pending": 1000},
    "metadata": {"owner": "team-a"},
}


def test_a_natscli_config_file_and_the_info_it_prints_are_in_sync(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    config = tmp_path / "orders.json"
    config.write_text(json.dumps(ADD_CONFIG, indent=2))
    asyncio.run(api(nats_server.url, "$JS.API.STREAM.CREATE.orders", ADD_CONFIG))
    code, out = plan(capsys, nats_server.url, config)
    assert in_sync(code, out), out
    # `nats stream info --json`: the configuration under "config", with the server's
    # _nats.* metadata and the state beside it
    info = asyncio.run(api(nats_server.url, "$JS.API.STREAM.INFO.orders"))
    assert any(k.startswith("_nats.") for k in info["config"]["metadata"])
    shown = tmp_path / "info" / "orders.json"
    shown.parent.mkdir()
    shown.write_text(json.dumps(info, indent="\t"))
    code, out = plan(capsys, nats_server.url, shown)
    assert in_sync(code, out), out


def test_the_converted_manifests_are_in_sync_too(
    tmp_path: Path, nats_server: NatsServer, capsys: Any
) -> None:
    info = tmp_path / "orders.json"
    info.write_text(INFO)
    body = json.loads(INFO)["config"]
    asyncio.run(api(nats_server.url, "$JS.API.STREAM.CREATE.orders", body))
    assert main(["convert", "--out", str(tmp_path / "yaml"), str(info)]) == 0
    code, out = plan(capsys, nats_server.url, tmp_path / "yaml")
    assert in_sync(code, out), out


async def test_watch_applies_a_nack_object_and_warns_once(
    tmp_path: Path, nats_server: NatsServer, js: Any
) -> None:
    from structlog.testing import capture_logs

    from tests.test_watch import events_of, running, settings_for, write

    manifest = tmp_path / "m" / "mystream.yaml"
    write(manifest, (NACK / "stream_servers.yml").read_text())
    with capture_logs() as logs:
        async with running(settings_for(nats_server, manifest.parent, resync_s=0.2)) as daemon:
            info = await js.stream_info("mystream")
            assert info is not None and info.config["storage"] == "memory"
            await asyncio.wait_for(daemon.wait_passes(daemon.passes + 2), 15)
    warned = events_of(logs, "manifest_warning")
    assert [(w["field"], w["line"]) for w in warned] == [
        ("spec.servers", 7), ("spec.tls", 9), ("spec.creds", 14)]
