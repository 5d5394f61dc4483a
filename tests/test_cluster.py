"""A stream the cluster cannot describe: reported and skipped, every other stream reconciled.

One three-node JetStream cluster of real nats-server processes for the whole module. R1
streams are pinned to a node by its server tag; node n3 is killed (SIGKILL), so its two
streams, `ledger` (declared) and `scratch` (in no manifest), have no leader to answer.
STREAM.LIST then waits 4 s for them (the server's own limit) and names them `missing`.
The lease bucket exists before the node goes, as it does once a reconciler has run: an R3
stream with a replica on n3, which keeps a leader on the two nodes left.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from reconciler.cli import main
from reconciler.jetstream import JetStream, connect
from reconciler.model import LEASE_BUCKET, ConnectOptions
from reconciler.settings import Settings
from reconciler.testing import NatsCluster, free_port
from tests.test_watch import _get, running, until

#: stream -> node it lives on
PLACED = {"orders": "n1", "payments": "n2", "ledger": "n3", "scratch": "n3"}
DECLARED = ("orders", "payments", "ledger")
#: what the server's STREAM.LIST says of a stream whose leader does not answer
NO_LEADER = (
    "its leader did not answer within the server's 4 s (the node holding it may be down, "
    "or a leader election is under way)"
)


def declaration(name: str, max_msgs: int = 10) -> str:
    return (f"name: {name}\nsubjects: [\"{name}.>\"]\nmax_msgs: {max_msgs}\n"
            f"placement:\n  tags: [\"node:{PLACED.get(name, 'n1')}\"]\n")


def manifests(directory: Path, *names: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.yaml").write_text(declaration(name))
    return str(directory)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        asyncio.run(_create_streams(cluster.url("n1")))
        cluster.kill("n3")
        cluster.wait_for_meta_leader()  # n3 may have been the meta leader
        cluster.stream_leader(f"KV_{LEASE_BUCKET}")  # ... or the lease bucket's leader
        yield cluster
    finally:
        cluster.stop()


async def _create_streams(url: str) -> None:
    async with await connect(ConnectOptions(servers=(url,))) as js:
        for name, node in PLACED.items():
            live = await js.create_stream({"name": name, "subjects": [f"{name}.>"],
                                           "max_msgs": 10, "placement": {"tags": [f"node:{node}"]}})
            assert live.name == name
        await js.ensure_kv_bucket(LEASE_BUCKET, replicas=3)


@pytest.fixture
async def js(cluster: NatsCluster) -> AsyncIterator[JetStream]:
    async with await connect(ConnectOptions(servers=(cluster.url("n1"),))) as client:
        yield client


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


#: streams the cluster fixture made with raw requests: in sync, and nobody's
ADOPT = "adopt: in sync; apply records ownership in its metadata"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


async def test_listing_names_streams_without_a_leader_in_one_pass(js: JetStream) -> None:
    started = time.monotonic()
    listing = await js.list_streams()
    elapsed = time.monotonic() - started
    assert sorted(s.name for s in listing.streams) == [f"KV_{LEASE_BUCKET}", "orders", "payments"]
    assert dict(listing.unreadable) == {"ledger": NO_LEADER, "scratch": NO_LEADER}
    # one LIST page: the server's 4 s wait for the dead leader, not twice that plus an INFO
    assert elapsed < 8, elapsed


async def test_plan_reports_the_unreadable_stream_and_plans_the_rest(
    cluster: NatsCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = manifests(tmp_path / "config", *DECLARED, "audit")
    server = ("--server", cluster.url("n1"), "--log-format", "json")
    code, out, err, elapsed = await asyncio.to_thread(cli, capsys, "plan", config, *server)
    assert code == 1, err
    where = f"{config}/ledger.yaml:1:1"
    assert out.splitlines() == [
        f"+ audit ({config}/audit.yaml:1:1): create",
        '    subjects: ["audit.>"]',
        "    max_msgs: 10",
        '    placement.tags: ["node:n1"]',
        f"@ orders ({config}/orders.yaml:1:1): {ADOPT}",
        f"@ payments ({config}/payments.yaml:1:1): {ADOPT}",
        f"! ledger ({where}): degraded: could not read stream ledger: {NO_LEADER}; "
        "left as it is",
        "? scratch: unmanaged (on the server, in no manifest; left alone); degraded: could not "
        f"read stream scratch: {NO_LEADER}",
        "",
        "Plan: 1 to create, 0 to update, 2 to adopt, 0 blocked, 0 unchanged, 1 unmanaged, "
        "2 degraded.",
    ]
    assert f"error: could not read stream ledger: {NO_LEADER}; it was left as it is" in err
    assert elapsed < 10, elapsed

    code, out, _, _ = await asyncio.to_thread(cli, capsys, "plan", "-o", "json", config, *server)
    assert code == 1
    document = json.loads(out)
    assert document["summary"]["degraded"] == 2 and document["summary"]["create"] == 1
    assert document["unmanaged"] == ["scratch"]
    assert document["degraded"] == [
        {"name": "ledger", "managed": True, "file": f"{config}/ledger.yaml", "line": 1,
         "error": f"could not read stream ledger: {NO_LEADER}"},
        {"name": "scratch", "managed": False, "file": None, "line": None,
         "error": f"could not read stream scratch: {NO_LEADER}"},
    ]


async def test_apply_reconciles_every_other_stream(
    cluster: NatsCluster, js: JetStream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await js.update_stream({"name": "payments", "subjects": ["payments.>"], "max_msgs": 5,
                            "placement": {"tags": ["node:n2"]}})
    config = manifests(tmp_path / "config", *DECLARED, "refunds")
    server = ("--server", cluster.url("n1"), "--log-format", "json")
    code, out, err, elapsed = await asyncio.to_thread(cli, capsys, "apply", config, *server)
    assert code == 1, err
    assert "Apply: 1 created, 1 updated, 1 adopted, 0 unchanged, 0 blocked, 0 reported, " \
        "0 failed." in out
    assert f"error: could not read stream ledger: {NO_LEADER}; it was left as it is" in err
    assert elapsed < 10, elapsed
    payments = await js.stream_info("payments")
    refunds = await js.stream_info("refunds")
    assert payments is not None and payments.config["max_msgs"] == 10
    assert refunds is not None and refunds.config["placement"] == {"tags": ["node:n1"]}

    # in sync except for the stream that could not be read: still exit 1, nothing changed
    code, out, _, _ = await asyncio.to_thread(cli, capsys, "apply", config, *server)
    assert code == 1
    assert "Apply: 0 created, 0 updated, 3 unchanged, 0 blocked, 0 reported, 0 failed." in out


async def test_watch_heals_the_rest_and_readiness_names_the_degraded_stream(
    cluster: NatsCluster, js: JetStream, tmp_path: Path
) -> None:
    config = manifests(tmp_path / "config", *DECLARED)
    port = free_port()
    settings = Settings(paths=(config,), connect=ConnectOptions(servers=(cluster.url("n1"),)),
                        http_port=port, http_host="127.0.0.1")
    with capture_logs() as logs:
        async with running(settings) as daemon:
            status, body = await asyncio.to_thread(_get, port, "/readyz")
            assert status == 503
            first, second = body.splitlines()
            assert first == f"not ready: degraded: could not read stream ledger: {NO_LEADER}"
            assert second.startswith("leader: this process (")
            await js.update_stream({"name": "orders", "subjects": ["orders.>"], "max_msgs": 3,
                                    "placement": {"tags": ["node:n1"]}})
            await until(daemon, lambda: _max_msgs(js, "orders", 10), timeout=30)
            metrics = (await asyncio.to_thread(_get, port, "/metrics"))[1]
    assert 'jetstream_reconciler_streams{state="degraded"} 1.0' in metrics
    assert not [e for e in logs if e["event"] == "reconcile_failed"]
    unreadable = [e for e in logs if e["event"] == "stream_unreadable"]
    assert {(e["stream"], e["managed"]) for e in unreadable} == {
        ("ledger", True), ("scratch", False)}
    finished = [e for e in logs if e["event"] == "reconcile_finished"]
    assert finished[0]["degraded"] == ["ledger", "scratch"]


async def _max_msgs(js: JetStream, name: str, expected: int) -> bool:
    info = await js.stream_info(name)
    return info is not None and info.config["max_msgs"] == expected

