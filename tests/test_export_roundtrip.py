"""Export, then plan: streams made by raw API calls (as another tool makes them) come back
with no change, on file and on memory storage.

`test_every_field` uses every field the server accepts; `test_generated_streams` is the
differential part: seeded stream configurations (`tests/corpus.py`, which mixes in values the
server refuses: those cases are skipped) created on the server, exported and planned.
RECONCILER_EXPORT_CASES sets the number of generated cases (default 500),
RECONCILER_EXPORT_SEED the first seed, to replay a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler import export as exporting
from reconciler import testing
from reconciler.cli import main
from reconciler.errors import ApiError, RequestTimeout
from reconciler.fields import STREAM
from reconciler.model import LEASE_BUCKET, ConnectOptions, Listing, Problem, ServerIdentity
from reconciler.testing import NatsServer
from tests import corpus, test_corpus

S = 1_000_000_000
MS = 1_000_000

CASES = int(os.environ.get("RECONCILER_EXPORT_CASES", "500"))
FIRST_SEED = int(os.environ.get("RECONCILER_EXPORT_SEED", "0"))

#: fields no stream below sets, and why
NOT_SET = {
    "placement.preferred": "the server refuses a preferred server in a stream's placement",
}


def every_field(storage: str) -> list[tuple[str, dict[str, Any]]]:
    """(verb, config) requests that together set every field the server accepts."""
    file_only: dict[str, Any] = {"persist_mode": "async"} if storage == "file" else {}
    return [
        ("CREATE", {  # every limit and most flags on one stream
            "name": "orders",
            "description": "Orders, kept a day and an hour: é and 😀 too",
            "subjects": ["orders.>", "returns.*"],
            "retention": "limits",
            "max_consumers": 10,
            "max_msgs": 1_000_000,
            "max_bytes": 1 << 30,
            "max_age": 90_061 * S,
            "max_msgs_per_subject": 5,
            "max_msg_size": 1024,
            "storage": storage,
            "compression": "s2",
            "num_replicas": 1,
            "no_ack": False,
            "discard": "new",
            "discard_new_per_subject": True,
            "duplicate_window": 30 * S + 7,
            "allow_rollup_hdrs": True,
            "allow_direct": True,
            "deny_delete": True,
            "metadata": {"owner": "team a", "tier": "gold", "_nats.req.level": "0"},
            "republish": {"src": "orders.>", "dest": "repub.>", "headers_only": True},
            "subject_transform": {"src": "returns.*", "dest": "returns.{{wildcard(1)}}.x"},
            "consumer_limits": {"inactive_threshold": 10 * S + 1, "max_ack_pending": 100},
            "allow_atomic": True,
            "allow_batched": True,
            "first_seq": 100,
            "placement": {"cluster": "", "tags": ["ssd"]},
        }),
        ("CREATE", {  # per-message TTLs, delete markers and schedules
            "name": "ttl", "subjects": ["ttl.>"], "storage": storage, "allow_msg_ttl": True,
            "subject_delete_marker_ttl": 5 * S, "allow_msg_schedules": True, "max_age": 60 * S,
        }),
        ("CREATE", {"name": "short", "subjects": ["short.>"], "storage": storage,
                    "max_age": 100 * MS}),
        ("CREATE", {"name": "queue", "subjects": ["queue.>"], "storage": storage,
                    "retention": "workqueue", "max_msgs_per_subject": 1}),
        ("CREATE", {"name": "interest", "subjects": ["interest.>"], "storage": storage,
                    "retention": "interest", "no_ack": True, "deny_purge": True}),
        ("CREATE", {"name": "counter", "subjects": ["count.>"], "storage": storage,
                    "allow_msg_counter": True, **file_only}),
        ("CREATE", {  # sources with filters, transforms, start points and another domain
            "name": "sourced",
            "subjects": ["sourced.>"],
            "storage": storage,
            "sources": [
                {"name": "orders", "filter_subject": "orders.eu.>", "opt_start_seq": 2},
                {"name": "ttl", "subject_transforms": [
                    {"src": "ttl.>", "dest": "t.>"}, {"src": "x.*", "dest": "y.{{wildcard(1)}}"}]},
                {"name": "short", "opt_start_time": "2024-05-01T10:00:00.123456789Z"},
                {"name": "remote", "external": {"api": "$JS.hub.API", "deliver": "deliver.hub"}},
                {"name": "interest", "consumer": {"name": "dur", "deliver_subject": "dlv.s"}},
            ],
        }),
        ("CREATE", {  # a mirror with a filter, a transform and a start time to the ns
            "name": "mirror",
            "storage": storage,
            "mirror": {"name": "orders", "opt_start_time": "2024-05-01T10:00:00.000000001Z",
                       "subject_transforms": [{"src": "orders.>", "dest": "copy.>"}]},
            "mirror_direct": True,
            "allow_direct": True,
        }),
        ("CREATE", {"name": "filtered", "storage": storage,
                    "mirror": {"name": "ttl", "filter_subject": "ttl.a.>", "opt_start_seq": 3}}),
        ("CREATE", {"name": "far", "storage": storage,
                    "mirror": {"name": "hub-orders",
                               "external": {"api": "$JS.hub.API", "deliver": "dlv.hub"}}}),
        ("CREATE", {"name": "durable", "storage": storage,
                    "mirror": {"name": "counter",
                               "consumer": {"name": "m", "deliver_subject": "dlv.m"}}}),
        ("CREATE", {"name": "placed", "subjects": ["placed"], "storage": storage,
                    "placement": {"cluster": "east", "tags": ["ssd", "az:1"]}}),
        ("CREATE", {"name": "plain", "storage": storage}),
        ("CREATE", {"name": f"KV_{LEASE_BUCKET}x", "subjects": [f"$KV.{LEASE_BUCKET}x.>"],
                    "storage": storage, "max_msgs_per_subject": 1, "allow_rollup_hdrs": True,
                    "deny_delete": True, "allow_direct": True, "discard": "new",
                    "duplicate_window": 2 * 60 * S}),
        ("CREATE", {"name": "sealed", "subjects": ["sealed.>"], "storage": storage}),
        ("UPDATE", {"name": "sealed", "subjects": ["sealed.>"], "storage": storage,
                    "sealed": True}),
    ]


def paths_of(config: Any, prefix: str = "") -> set[str]:
    """Every dotted field path a configuration sets, `*` for list elements."""
    found: set[str] = set()
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{prefix}{key}"
            found.add(path)
            found |= paths_of(value, path + ".")
    elif isinstance(config, list):
        for value in config:
            found |= paths_of(value, prefix + "*.")
    return found


def test_every_field_is_set_by_some_stream() -> None:
    """So that "every field" stays true when the schema grows."""
    set_here = set().union(*(paths_of(c) for _, c in every_field("file")))
    known = {f.path for f in STREAM}
    unset = {p for p in known - set_here if not any(p.startswith(n) for n in NOT_SET)}
    assert unset == set()
    assert {p for p in set(NOT_SET) if p in set_here or p not in known} == set()


def export_then_plan(url: str, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`export --all --out DIR`, then `plan --detailed-exitcode DIR`: exit 0 from both;
    the plan's text."""
    code = main(["export", "--all", "--out", str(out), "--server", url])
    _, err = capsys.readouterr()
    assert code == 0, err
    code = main(["plan", "--detailed-exitcode", "--server", url, str(out)])
    printed, err = capsys.readouterr()
    assert code == 0, printed + err
    return printed


def send(url: str, requests: list[tuple[str, dict[str, Any]]], *, clear: bool = False,
         refused_ok: bool = False) -> list[str]:
    """Each request as it is, in order (after deleting every stream, with `clear`); the
    names of the streams made. With `refused_ok`, a request the server refuses is skipped."""
    async def run() -> list[str]:
        made: list[str] = []
        async with await testing.connect(ConnectOptions(servers=(url,))) as js:
            if clear:
                for stream in (await js.list_streams()).streams:
                    await js.delete_stream(stream.name)
            for verb, config in requests:
                try:
                    await js.raw_stream_request(verb, config)
                except (ApiError, RequestTimeout, UnicodeEncodeError, ValueError):
                    if not refused_ok:
                        raise
                    continue
                made.append(config["name"])
        return made

    return asyncio.run(run())


@pytest.mark.parametrize("storage", ["file", "memory"])
def test_every_field(storage: str, nats_server: NatsServer, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    send(nats_server.url, every_field(storage))
    names = {c["name"] for _, c in every_field(storage)}
    printed = export_then_plan(nats_server.url, tmp_path / "out", capsys)
    # made by raw API calls, so in sync but nobody's: only to adopt
    assert printed.endswith(f"Plan: 0 to create, 0 to update, {len(names)} to adopt, 0 blocked, "
                            "0 unchanged.\n"), printed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}.yaml" for n in names)
    orders = (tmp_path / "out" / "orders.yaml").read_text()
    for line in ("max_age: 1d1h1m1s\n", "max_bytes: 1GiB\n", "max_msgs: 1000000\n",
                 "duplicate_window: 30s7ns\n", "  inactive_threshold: 10s1ns\n"):
        assert line in orders
    assert "_nats" not in orders
    assert (tmp_path / "out" / "plain.yaml").read_text().splitlines()[3:] == (
        ["name: plain"] if storage == "file" else ["name: plain", "storage: memory"])


def pedantic_refusal(url: str, name: str) -> str | None:
    """Delete the stream, then send its live configuration back as a pedantic create, as
    apply would: the server's refusal, or None when it accepts it."""
    async def run() -> str | None:
        async with await testing.connect(ConnectOptions(servers=(url,))) as js:
            live = await js.stream_info(name)
            assert live is not None
            await js.delete_stream(name)
            try:
                await js.raw_stream_request("CREATE", {**live.config, "pedantic": True})
            except ApiError as exc:
                return exc.description
            return None

    return asyncio.run(run())


#: (field path, start of the message) of problems that `validate` reports where the server
#: accepts the configuration as it is, on purpose (`tests/test_corpus.py` says why for each),
#: and so leave a stream out of an export
STRICTER = (
    *test_corpus.STRICTER,
    # a mirror or source whose name no stream can have: nothing can ever be read from it
    (r"(mirror|sources\.\d+)\.name",
     "(the name (is|takes) \\d+ (characters long|bytes)|'.*' contains a NUL character)"),
)


def stricter_on_purpose(problem: Problem) -> bool:
    return any(re.fullmatch(path, problem.path) and re.match(message, problem.message)
               for path, message in STRICTER)


def read_listing(url: str) -> tuple[Listing, ServerIdentity]:
    async def run() -> tuple[Listing, ServerIdentity]:
        async with await testing.connect(ConnectOptions(servers=(url,))) as js:
            return await exporting.read(js)

    return asyncio.run(run())


def test_generated_streams(nats_server: NatsServer, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Each seed's streams, created as they are on an emptied server (the server refuses
    some: skipped), exported and planned: no change. A stream that export leaves out must be
    one that no manifest can declare: the server itself refuses its configuration when it
    is sent back as apply sends it (pedantic; a counter stream made with
    subject_delete_marker_ttl, say, whose message TTLs the server turned on although a
    counter stream cannot have them), or `validate` refuses it on purpose (STRICTER). The
    failing seed is named."""
    created = refused = left_out = 0
    for seed in range(FIRST_SEED, FIRST_SEED + CASES):
        made = send(nats_server.url, [("CREATE", c) for c in corpus.case(seed)], clear=True,
                    refused_ok=True)
        refused += not made
        if not made:
            continue
        replay = (f"seed {seed} (replay with RECONCILER_EXPORT_SEED={seed} "
                  f"RECONCILER_EXPORT_CASES=1): {corpus.case(seed)}")
        listing, server = read_listing(nats_server.url)
        result = exporting.export_streams(listing, server, "now", everything=True)
        out = tmp_path / f"seed-{seed}"
        exporting.write_files(out, result)
        code = main(["plan", "--detailed-exitcode", "--server", nats_server.url, str(out)])
        printed, err = capsys.readouterr()
        assert code == 0, f"{replay}\n{printed}{err}"
        for failed in result.failed:
            assert failed.problems, f"{replay}\n{failed.error}"
            if all(stricter_on_purpose(p) for p in failed.problems):
                continue
            assert pedantic_refusal(nats_server.url, failed.name) is not None, (
                f"{replay}\nexport left out {failed.name}, which the server accepts as it is: "
                f"{failed.error}")
        created += len(result.written)
        left_out += len(result.failed)
    with capsys.disabled():
        print(f"\nexport differential: {CASES} cases from seed {FIRST_SEED}: {created} streams "
              f"exported and planned with no change, {left_out} left out that no manifest "
              f"can declare; {refused} cases refused by the server")
