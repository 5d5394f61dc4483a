"""Plans that predict the server's refusals from what else is on it: subjects that overlap a
stream no manifest declares, more replicas than servers, sources that close a cycle.

The rules are table tests of the pure `plan.server_blockers`; each refusal is also pinned on
a real server (the request the plan now blocks is refused there) and seen through the CLI:
`plan` shows `blocked`, `apply` leaves the stream alone, `validate --live` names it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reconciler import testing
from reconciler.cli import main
from reconciler.errors import ApiError
from reconciler.model import (
    Action,
    ConnectOptions,
    DriftMode,
    LiveStream,
    Policy,
    StreamSpec,
    Topology,
)
from reconciler.plan import build_plan, server_blockers, with_server_checks
from reconciler.testing import NatsCluster, NatsServer

pytestmark = pytest.mark.usefixtures("clean_env")

SINGLE = Topology(None, 1)
THREE = Topology("c", 3)


def spec(name: str, **config: Any) -> StreamSpec:
    return StreamSpec(name, {"name": name, **config})


def live(name: str, **config: Any) -> LiveStream:
    return LiveStream(name, {"name": name, **config})


def blockers(specs: list[StreamSpec], streams: list[LiveStream],
             topology: Topology | None = SINGLE) -> dict[str, tuple[tuple[str, str], ...]]:
    return server_blockers(build_plan(specs, streams), streams, topology)


OVERLAP = (
    "subject 'orders.>' overlaps 'orders.eu.*' of stream 'legacy', which is on the server and "
    "in no manifest (the server refuses overlapping subjects: 10065); choose subjects that "
    "'legacy' does not take, or declare or remove 'legacy'"
)


def test_overlap_with_an_undeclared_stream_is_named() -> None:
    got = blockers([spec("orders", subjects=["orders.>"])],
                   [live("legacy", subjects=["orders.eu.*"])])
    assert got == {"orders": (("subjects", OVERLAP),)}


@pytest.mark.parametrize(("ours", "theirs"), [
    (["orders.>"], ["payments.>"]),   # disjoint
    (["orders.*"], ["orders.eu.x"]),  # one token apart
])
def test_no_overlap_no_reason(ours: list[str], theirs: list[str]) -> None:
    assert blockers([spec("orders", subjects=ours)], [live("legacy", subjects=theirs)]) == {}


def test_a_declared_stream_is_not_its_own_obstacle() -> None:
    # its live subjects are its own; overlaps between declared streams are validate's work
    assert blockers([spec("orders", subjects=["orders.>"], max_msgs=5)],
                    [live("orders", subjects=["orders.>"])]) == {}


@pytest.mark.parametrize(("replicas", "topology", "reason"), [
    (3, SINGLE, "num_replicas: 3 needs a cluster, and the server is a single server (it "
                "refuses more than one replica: 10074); write num_replicas: 1"),
    (5, THREE, "num_replicas: 5 needs 5 servers, and cluster 'c' has 3 (the server finds no "
               "peers for it: 10005); write num_replicas: 3 at most"),
    (3, THREE, None),
    (1, SINGLE, None),
    (5, None, None),               # not known: not blocked
    (5, Topology("c", None), None),
])
def test_replicas_against_servers(replicas: int, topology: Topology | None,
                                  reason: str | None) -> None:
    got = blockers([spec("orders", num_replicas=replicas)], [], topology)
    assert got == ({"orders": (("num_replicas", reason),)} if reason else {})


def test_replicas_in_another_cluster_are_not_judged_here() -> None:
    assert blockers([spec("orders", num_replicas=5, placement={"cluster": "east"})], [],
                    THREE) == {}


def test_replicas_judged_only_when_they_change() -> None:
    # an existing R3 stream in a cluster that has lost servers: other changes go through
    streams = [live("orders", num_replicas=3)]
    assert blockers([spec("orders", num_replicas=3, max_msgs=5)], streams,
                    Topology("c", 2)) == {}


CYCLE = ("its mirror and sources would close a cycle: a -> b -> a ('b' in no manifest) (the "
         "server refuses it: detected cycle, 10052); remove the source that leads back, or "
         "give it a filter_subject the subjects of the stream reading it do not match")


def test_a_source_closing_a_cycle_through_an_undeclared_stream() -> None:
    got = blockers([spec("a", subjects=["a.>"], sources=[{"name": "b"}])],
                   [live("b", sources=[{"name": "a"}])])
    assert got == {"a": (("sources", CYCLE),)}


def test_a_filter_that_the_subjects_do_not_match_is_no_cycle() -> None:
    assert blockers([spec("a", subjects=["a.>"], sources=[{"name": "b"}])],
                    [live("b", subjects=["b.>"],
                          sources=[{"name": "a", "filter_subject": "x.>"}])]) == {}


def test_blocked_streams_are_not_applied_and_keep_their_changes() -> None:
    specs = [spec("orders", subjects=["orders.>"]), spec("other", subjects=["other.>"])]
    streams = [live("legacy", subjects=["orders.eu.*"])]
    plan = with_server_checks(build_plan(specs, streams), streams, SINGLE)
    orders, other = plan.streams
    assert (orders.action, orders.reasons) == (Action.BLOCKED, (OVERLAP,))
    assert orders.changes and orders.config is not None
    assert other.action is Action.CREATE


# --- against real servers --------------------------------------------------------------------




def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str) -> str:
    directory = tmp_path / "config"
    directory.mkdir(exist_ok=True)
    (directory / "stream.yaml").write_text(text)
    return str(directory)


async def _create(url: str, *configs: dict[str, Any]) -> None:
    async with await testing.connect(ConnectOptions(servers=(url,))) as js:
        for config in configs:
            await js.create_stream(config)


async def _refused(url: str, config: dict[str, Any]) -> int:
    """The server's error code for creating `config` (the request the plan blocks)."""
    async with await testing.connect(ConnectOptions(servers=(url,))) as js:
        try:
            await js.create_stream(config)
        except ApiError as exc:
            return exc.err_code
        await js.delete_stream(config["name"])
    return 0


async def _names(url: str) -> set[str]:
    async with await testing.connect(ConnectOptions(servers=(url,))) as js:
        return {s.name for s in (await js.list_streams()).streams}


def _refused_everywhere(capsys: Any, url: str, config_dir: str, stream: str,
                        reason: str, at: str) -> None:
    """plan shows the stream blocked with `reason`; apply exits 3 and creates nothing;
    validate --live names it and exits 1; plain validate contacts no server and passes."""
    before = asyncio.run(_names(url))
    code, out, err = run(capsys, "plan", config_dir, "-s", url, "--detailed-exitcode")
    assert code == 3, out + err
    assert f"! {stream} (" in out and f"    blocked: {reason}\n" in out
    code, out, err = run(capsys, "apply", config_dir, "-s", url)
    assert code == 3, out + err
    assert "0 created" in out and "1 blocked" in out and "0 failed" in out
    assert asyncio.run(_names(url)) == before
    code, out, err = run(capsys, "validate", config_dir, "--live", "-s", url)
    assert code == 1, out + err
    assert err.endswith(f"/stream.yaml:{at}: stream {stream}: {reason}\n"
                        "1 stream the server would refuse; nothing was changed.\n"), err
    assert run(capsys, "validate", config_dir)[0] == 0


def test_single_server_overlap(nats_server: NatsServer, tmp_path: Path, capsys: Any) -> None:
    url = nats_server.url
    asyncio.run(_create(url, {"name": "legacy", "subjects": ["orders.eu.*"]}))
    assert asyncio.run(_refused(url, {"name": "orders", "subjects": ["orders.>"]})) == 10065
    config = write(tmp_path, 'name: orders\nsubjects: ["orders.>"]\n')
    _refused_everywhere(capsys, url, config, "orders", OVERLAP, "2:11: subjects")


def test_single_server_replicas(nats_server: NatsServer, tmp_path: Path, capsys: Any) -> None:
    url = nats_server.url
    assert asyncio.run(_refused(url, {"name": "orders", "num_replicas": 3})) == 10074
    config = write(tmp_path, "name: orders\nnum_replicas: 3\n")
    _refused_everywhere(capsys, url, config, "orders", blockers(
        [spec("orders", num_replicas=3)], [])["orders"][0][1], "2:15: num_replicas")


def test_single_server_cycle(nats_server: NatsServer, tmp_path: Path, capsys: Any) -> None:
    url = nats_server.url
    asyncio.run(_create(url, {"name": "b", "sources": [{"name": "a"}]}))
    a = {"name": "a", "subjects": ["a.>"], "sources": [{"name": "b"}]}
    assert asyncio.run(_refused(url, a)) == 10052
    config = write(tmp_path, 'name: a\nsubjects: ["a.>"]\nsources:\n  - name: b\n')
    _refused_everywhere(capsys, url, config, "a", CYCLE, "4:3: sources")


def test_validate_live_passes_what_the_server_accepts(
    nats_server: NatsServer, tmp_path: Path, capsys: Any
) -> None:
    config = write(tmp_path, 'name: orders\nsubjects: ["orders.>"]\n')
    assert run(capsys, "validate", config, "--live", "-s", nats_server.url) == (
        0, "1 manifest file valid: 1 stream (orders); the server would accept them.\n", "")


def test_cluster_of_three_refuses_five_replicas(tmp_path: Path, capsys: Any) -> None:
    cluster = NatsCluster(tmp_path / "cluster").start()
    try:
        url = cluster.url("n1")
        assert asyncio.run(_refused(url, {"name": "orders", "num_replicas": 5})) == 10005
        reason = blockers([spec("orders", num_replicas=5)], [], THREE)["orders"][0][1]
        _refused_everywhere(capsys, url, write(tmp_path, "name: orders\nnum_replicas: 5\n"),
                            "orders", reason, "2:15: num_replicas")
        # three replicas fit: planned and created
        write(tmp_path, "name: orders\nnum_replicas: 3\n")
        code, out, err = run(capsys, "apply", str(tmp_path / "config"), "-s", url)
        assert code == 0, out + err
        assert "1 created" in out
    finally:
        cluster.stop()


def test_a_report_only_stream_is_left_to_report() -> None:
    # drift: report sends nothing, so the server has nothing to refuse
    report = StreamSpec("orders", {"name": "orders", "subjects": ["orders.>"]},
                        Policy(drift=DriftMode.REPORT))
    streams = [live("legacy", subjects=["orders.eu.*"])]
    plan = build_plan([report], streams)
    assert plan.streams[0].action is Action.REPORT
    assert server_blockers(plan, streams, SINGLE) == {}
