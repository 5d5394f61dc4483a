"""Rendering of plans (pure): what people and programs read about degraded streams."""

from __future__ import annotations

import json

from reconciler.model import Action, Degraded, Location, Outcome, Plan, Status, StreamPlan
from reconciler.report import connection_lost_line, render_json, render_markdown, render_text

PLAN = Plan(
    streams=(StreamPlan("orders", Action.NOOP, location=Location("c/orders.yaml", 1, 1)),),
    unmanaged=("scratch",),
    degraded=(
        Degraded("ledger", "no leader", managed=True, location=Location("c/ledger.yaml", 1, 1)),
        Degraded("scratch", "no leader", managed=False),
    ),
)


def test_text_names_each_degraded_stream_once() -> None:
    assert render_text(PLAN).splitlines() == [
        "= orders (c/orders.yaml:1:1): no changes",
        "! ledger (c/ledger.yaml:1:1): degraded: could not read stream ledger: no leader; "
        "left as it is",
        "? scratch: unmanaged (on the server, in no manifest; left alone); degraded: could not "
        "read stream scratch: no leader",
        "",
        "Plan: 0 to create, 0 to update, 0 blocked, 1 unchanged, 1 unmanaged, 2 degraded.",
    ]


def test_markdown_and_json_list_degraded_streams() -> None:
    markdown = render_markdown(PLAN)
    assert "⚠️ Degraded: `ledger`: could not read stream ledger: no leader" in markdown
    assert "⚠️ Degraded (unmanaged): `scratch`: could not read stream scratch: no leader" in markdown
    document = json.loads(render_json(PLAN))
    assert document["summary"]["degraded"] == 2
    assert [d["name"] for d in document["degraded"]] == ["ledger", "scratch"]


def test_nothing_degraded_adds_nothing() -> None:
    plan = Plan(streams=PLAN.streams)
    assert "degraded" not in render_text(plan)
    assert "Degraded" not in render_markdown(plan)


def _outcome(name: str, action: Action, status: Status, **kw: bool) -> Outcome:
    return Outcome(StreamPlan(name, action), status, **kw)


def test_a_lost_connection_is_one_line_that_names_what_may_have_been_applied() -> None:
    outcomes = (
        _outcome("a", Action.CREATE, Status.CREATED),
        _outcome("b", Action.NOOP, Status.UNCHANGED),
        _outcome("c", Action.REPORT, Status.REPORTED),
        _outcome("d", Action.UPDATE, Status.FAILED, connection_lost=True, in_doubt=True),
        _outcome("e", Action.CREATE, Status.FAILED, connection_lost=True),
        _outcome("f", Action.CREATE, Status.FAILED, connection_lost=True, in_doubt=True),
        _outcome("g", Action.CREATE, Status.FAILED, in_doubt=True),  # a timeout
    )
    assert connection_lost_line(outcomes, "nats://h:4222") == (
        "the connection to nats://h:4222 was lost during the apply: 3 of 5 streams to create "
        "or update were not applied: 1 were not sent, 2 were sent but not answered and may or "
        "may not have been applied (d, f); run apply again once the server is back"
    )
    assert connection_lost_line(outcomes[:3], "nats://h:4222") is None
    assert connection_lost_line(outcomes[4:5], "nats://h:4222") == (
        "the connection to nats://h:4222 was lost during the apply: 1 of 1 streams to create "
        "or update were not applied: 1 were not sent; run apply again once the server is back"
    )
