"""Watch mode's pure parts as tables, with a fake clock: advisory correlation (our own
change's echo, the actor of another client's), trigger folding, retry backoff, drift
sources. No server, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reconciler.daemon.desired import Sources
from reconciler.daemon.echo import ACTOR_GRACE_S, IGNORE, OWN_ECHO_S, Correlator, Reaction
from reconciler.daemon.triggers import Backoff, Triggers, describe
from reconciler.ledger import Ledger
from reconciler.model import (
    LEASE_STREAM,
    Action,
    Advisory,
    Outcome,
    Plan,
    Policy,
    Status,
    StreamPlan,
    StreamSpec,
)
from reconciler.reconcile import Result


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def stream_advisory(stream: str = "events", kind: str = "updated") -> Advisory:
    return Advisory(kind=kind, stream=stream, actor=None, own=False,
                    subject=f"$JS.EVENT.ADVISORY.STREAM.{kind.upper()}.{stream}", time_ns=0)


def api_advisory(stream: str = "events", actor: str | None = "someone", *, own: bool = False,
                 op: str = "UPDATE", max_msgs: int = 99) -> Advisory:
    return Advisory(kind="api", stream=stream, actor=actor, own=own,
                    subject=f"$JS.API.STREAM.{op}.{stream}", time_ns=0, client_id=7,
                    config={"name": stream, "max_msgs": max_msgs})


def correlator() -> tuple[Correlator, Clock]:
    clock = Clock()
    return Correlator(Ledger(), clock), clock


@pytest.mark.parametrize(("advisory", "why"), [
    (api_advisory(own=True), "our own request"),
    (api_advisory(LEASE_STREAM), "the lease bucket is not ours to reconcile"),
    (stream_advisory(LEASE_STREAM), "the lease bucket is not ours to reconcile"),
    (api_advisory(op="PURGE"), "a purge changes no configuration"),
    (Advisory(kind="api", stream=None, actor="x", own=False, subject="$JS.API.STREAM.LIST",
              time_ns=0), "no stream"),
])
def test_advisories_that_are_no_news(advisory: Advisory, why: str) -> None:
    c, _ = correlator()
    assert c.heard(advisory) == IGNORE, why
    assert c.ledger.position() == 0, "nothing noted"


def test_another_clients_change_starts_a_pass_at_once_and_names_it() -> None:
    c, _ = correlator()
    assert c.heard(api_advisory(actor="someone", max_msgs=99)) == Reaction(now=True)
    assert c.ledger.actor_of("events", {"name": "events", "max_msgs": 99}) == "someone"
    assert c.ledger.actor_of("events", {"name": "events", "max_msgs": 98}) is None


def test_our_own_updates_echo_is_not_drift() -> None:
    c, clock = correlator()
    c.expect_echo([StreamPlan("events", Action.UPDATE), StreamPlan("orders", Action.NOOP),
                   StreamPlan("audit", Action.CREATE)])
    clock.now += OWN_ECHO_S - 0.01
    assert c.heard(stream_advisory("events")) == IGNORE
    assert c.heard(stream_advisory("audit", "created")) == IGNORE
    # a stream we did not touch, and a second advisory for one we did, are news
    assert c.heard(stream_advisory("orders")) == Reaction(at=clock.now + ACTOR_GRACE_S)
    assert c.heard(stream_advisory("events")) == Reaction(at=clock.now + ACTOR_GRACE_S)


def test_an_echo_expected_too_long_ago_is_news() -> None:
    c, clock = correlator()
    c.expect_echo([StreamPlan("events", Action.UPDATE)])
    clock.now += OWN_ECHO_S
    assert c.heard(stream_advisory()) == Reaction(at=clock.now + ACTOR_GRACE_S)


def test_a_stream_advisory_waits_for_the_api_advisory_that_names_the_actor() -> None:
    c, clock = correlator()
    started = clock.now
    assert c.heard(stream_advisory()) == Reaction(at=started + ACTOR_GRACE_S)
    clock.now += 0.02  # the API advisory follows, 20 ms later
    assert c.heard(api_advisory(actor="someone")) == Reaction(now=True)
    assert c.due(started + ACTOR_GRACE_S) == [], "the pass has started already"
    assert c.ledger.actor_of("events", {"name": "events", "max_msgs": 99}) == "someone"


def test_a_stream_advisory_without_its_api_advisory_starts_a_pass_after_the_grace() -> None:
    c, clock = correlator()
    at = clock.now + ACTOR_GRACE_S
    assert c.heard(stream_advisory()) == Reaction(at=at)
    clock.now += 0.1
    assert c.heard(stream_advisory(kind="deleted")) == IGNORE, "one pass is due already"
    assert c.due(at - 0.001) == []
    assert c.due(at) == ["events"]
    assert c.due(at + 1) == [], "once"


def test_an_old_grace_ending_does_not_cut_a_newer_one_short() -> None:
    c, clock = correlator()
    first = c.heard(stream_advisory()).at
    c.heard(api_advisory())
    clock.now += 0.1
    second = c.heard(stream_advisory()).at
    assert first is not None and second is not None and second > first
    assert c.due(first) == []
    assert c.due(second) == ["events"]


async def test_triggers_during_a_pass_fold_into_one_more() -> None:
    triggers = Triggers()
    triggers.add("startup")
    assert await triggers.take() == frozenset({"startup"})
    # a pass runs; these arrive meanwhile
    for source in ("manifest", "server", "manifest", "resync"):
        triggers.add(source)
    taken = await triggers.take()
    assert taken is not None and describe(taken) == "manifest,resync,server"
    triggers.add("server")
    triggers.stop()
    assert await triggers.take() is None, "stopping wins over pending triggers"


def test_retry_waits_double_up_to_the_resync_period_and_start_over_after_a_clean_pass() -> None:
    backoff = Backoff(ceiling_s=5.0)
    assert [backoff.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 1.0


def spec(max_msgs: int, name: str = "events") -> StreamSpec:
    return StreamSpec(name, {"max_msgs": max_msgs}, Policy())


def result(*outcomes: tuple[str, Status]) -> Result:
    return Result("r1", Plan(), tuple(Outcome(StreamPlan(n, Action.UPDATE), s)
                                      for n, s in outcomes))


@pytest.mark.parametrize(("status", "source"), [
    (Status.UPDATED, "server"),
    (Status.CREATED, "server"),
    (Status.UNCHANGED, "server"),
    (Status.FAILED, "manifest"),
    (Status.BLOCKED, "manifest"),
    (Status.REPORTED, "manifest"),
])
def test_drift_source_after_a_pass(status: Status, source: str) -> None:
    """Only a stream the pass left in sync takes its manifest as the new baseline: after a
    failed, blocked or report-only pass, the manifest change is still told as one."""
    sources = Sources()
    sources.remember([spec(10)], result(("events", Status.UPDATED)))
    sources.remember([spec(20)], result(("events", status)))
    assert sources.of([spec(20)]) == {"events": source}
    assert sources.of([spec(10)]) == {"events": "server" if source == "manifest" else "manifest"}


def test_drift_source_after_a_pass_that_failed_as_a_whole() -> None:
    sources = Sources()
    sources.remember([spec(10)], result(("events", Status.UNCHANGED)))
    sources.remember([spec(20)], None)  # the listing failed: nothing was reconciled
    assert sources.of([spec(20)]) == {"events": "manifest"}


def test_a_stream_no_longer_declared_is_forgotten() -> None:
    sources = Sources()
    sources.remember([spec(10)], result(("events", Status.UPDATED)))
    sources.remember([spec(5, "orders")], result(("orders", Status.UPDATED)))
    assert sources.of([spec(10)]) == {"events": "manifest"}, "declared again: news"
