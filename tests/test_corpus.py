"""`validate` is the server's equal: generated manifests, validated and then applied.

Each seed of `tests/corpus.py` gives a few streams (an origin, the stream under test that may
mirror or source it). The test runs `validate` on the manifest file, then creates the streams
on a real nats-server the way `apply` does (`plan_stream` then `apply_stream`: the canonical
configuration, sent as a pedantic create), origin first, and reads each one back. The server
accepts a case when every create succeeds and the plan then shows no change (a stream that
the server stores differently from what was sent would never converge). `validate` must
accept exactly the cases the server accepts, and every problem it reports says what to write.

Out of scope for `validate`, so never generated, because the answer depends on the live server
and not on the manifests:
- `sealed: true`: the server refuses it on create and accepts it on update (an existing stream
  may be sealed), and validate cannot know which of the two apply will do;
- `num_replicas` above 1 (refused by a single server, accepted by a cluster), `placement`
  clusters and tags (the cluster's topology), `max_bytes` beyond the server's storage;
- subjects that overlap streams no manifest declares (every case starts on an empty server);
- stream names that cannot be the last token of an API subject (`.`, whitespace, a lone `*`
  or `>`): validate rejects them, and the server can only time out.

Text with a lone UTF-16 surrogate (`"a\\uD800"`) cannot be sent, or the server stores U+FFFD,
so the plan never converges: the check above (the stream read back shows no change) counts
that as a refusal. Where the server is lenient in a way that matters, `validate` is stricter on
purpose, and only these problems may stand against a server that accepts (`STRICTER`):
- a flag written against one that forces it (`allow_msg_ttl: false` next to
  `subject_delete_marker_ttl`, `allow_rollup_hdrs: false` next to it or to
  `allow_msg_schedules`, `deny_purge: true` next to it): the plan sends the forced value, so
  the manifest would say the opposite of what the stream does;
- a `sources` entry with an empty name: the plan drops it, so the stream would not source
  what the manifest seems to say;
- `metadata` keys under `_nats.`: the server's own, never compared, so never reconciled;
- `num_replicas: 0`: the server reads it as 1; write 1;
- a cycle of sources that the server finds only when the streams are created in one order
  (its check reads the subjects of the stream it starts from): created in the other order it
  is accepted, and then every update of the other stream is refused;
- a NUL character in a stream name: file storage cannot store it (the server refuses), memory
  storage takes it, but no tool that treats names as text or paths can handle it.

RECONCILER_CORPUS_SIZE sets the number of cases (default 1,000);
RECONCILER_CORPUS_SEED the first seed, to replay a failure.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler import testing
from reconciler.apply import apply_stream
from reconciler.manifest import load_manifests
from reconciler.model import Action, ConnectOptions, Problem, Status, StreamSpec
from reconciler.plan import plan_stream
from reconciler.testing import NatsServer, TestClient
from tests import corpus

SIZE = int(os.environ.get("RECONCILER_CORPUS_SIZE", "2000"))
FIRST_SEED = int(os.environ.get("RECONCILER_CORPUS_SEED", "0"))


#: (field path pattern, start of the message) of the problems that may stand against a
#: server that accepts: see the module's docstring for why each one is right
STRICTER = (
    (r"allow_msg_ttl", "subject_delete_marker_ttl needs message TTLs, so the server turns"),
    (r"allow_rollup_hdrs", "subject_delete_marker_ttl needs rollups, so the server turns"),
    (r"allow_rollup_hdrs", "allow_msg_schedules needs rollups, so the server turns"),
    (r"deny_purge", "(subject_delete_marker_ttl|allow_msg_schedules) needs purges, so the"),
    (r"sources\.\d+\.name", "the name is empty"),
    (r"metadata\._nats\..*", "keys starting with '_nats.' belong to the server"),
    (r"num_replicas", "0 is out of range"),
    (r"name", "'.*' contains a NUL character, which a name cannot have"),
    (r"(mirror|sources\.\d+)\.name", "reading from '.*' leads back to stream"),
)


def stricter_on_purpose(problem: Problem) -> bool:
    return any(
        re.fullmatch(path, problem.path) and re.match(message, problem.message)
        for path, message in STRICTER
    )


async def server_verdict(js: TestClient, streams: list[dict[str, Any]]) -> str | None:
    """None when the server takes every stream as it is; else why not."""
    created: list[str] = []
    try:
        for config in streams:
            spec = StreamSpec(name=config["name"], config=config)
            try:
                with capture_logs():  # apply_failed is expected here
                    outcome = await apply_stream(js, plan_stream(spec, None))
            except Exception as exc:  # the client could not even send it
                return f"{config['name']!r}: {type(exc).__name__}: {exc}"
            if outcome.status is not Status.CREATED:
                return f"{config['name']!r}: {outcome.error}"
            created.append(spec.name)
            live = await js.stream_info(spec.name)
            assert live is not None
            again = plan_stream(spec, live)
            if again.action is not Action.NOOP:
                changes = ", ".join(f"{c.path}: {c.live!r} != {c.desired!r}" for c in again.changes)
                return f"{config['name']!r}: stored differently: {changes}"
        return None
    finally:
        for name in created:
            await js.delete_stream(name)


async def test_validate_agrees_with_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = NatsServer(tmp_path / "js").start()
    disagreements: list[str] = []
    accepted = refused = 0
    started = time.monotonic()
    try:
        async with await testing.connect(ConnectOptions(servers=(server.url,))) as js:
            for seed in range(FIRST_SEED, FIRST_SEED + SIZE):
                streams = corpus.case(seed)
                path = tmp_path / "case.yaml"
                path.write_text(corpus.render(streams), encoding="utf-8")
                result = load_manifests([path])
                verdict = await server_verdict(js, streams)
                accepted += verdict is None
                refused += verdict is not None
                problems = [str(p) for p in result.problems]
                unhelpful = [p for p in result.problems if not p.hint]
                if result.ok:
                    read = [dict(s.config) for s in result.specs]
                    assert read == streams, f"seed {seed}: the manifest reads back differently"
                if result.ok and verdict is not None:
                    disagreements.append(f"seed {seed}: validate accepts, server: {verdict}")
                elif not result.ok and verdict is None and not all(
                    stricter_on_purpose(p) for p in result.problems
                ):
                    disagreements.append(f"seed {seed}: server accepts, validate: {problems}")
                elif unhelpful:
                    disagreements.append(f"seed {seed}: no hint in {unhelpful}")
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\nvalidate corpus: {SIZE} cases from seed {FIRST_SEED} in {elapsed:.1f}s: "
            f"{accepted} accepted, {refused} refused by the server, "
            f"{len(disagreements)} disagreements"
        )
    assert not disagreements, (
        f"{len(disagreements)} of {SIZE} cases disagree (replay one with "
        f"RECONCILER_CORPUS_SEED=<seed> RECONCILER_CORPUS_SIZE=1):\n" + "\n".join(disagreements)
    )
