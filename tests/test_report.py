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
    assert ("- ⚠️ <code>ledger</code> c/ledger.yaml:1: could not read stream ledger: no leader"
            in markdown)
    assert ("- ⚠️ <code>scratch</code> (unmanaged): could not read stream scratch: no leader"
            in markdown)
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
        "the connection to nats://h:4222 was lost during the apply: 3 of 5 streams to write "
        "were not applied: 1 were not sent, 2 were sent but not answered and may or "
        "may not have been applied (d, f); run apply again once the server is back"
    )
    assert connection_lost_line(outcomes[:3], "nats://h:4222") is None
    assert connection_lost_line(outcomes[4:5], "nats://h:4222") == (
        "the connection to nats://h:4222 was lost during the apply: 1 of 1 streams to write "
        "were not applied: 1 were not sent; run apply again once the server is back"
    )


# --- Markdown for pull-request comments ------------------------------------------------------

from markdown_it import MarkdownIt  # noqa: E402

from reconciler.model import FieldChange  # noqa: E402
from reconciler.report import MARKDOWN_MARKER, MARKDOWN_OPEN_ROWS  # noqa: E402

HOSTILE = "a | b `c` <script>alert(1)</script> *d* [e](f) &amp; \\|"


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def _cells(html: str) -> list[list[str]]:
    """The text of every table row's cells, as a browser shows it."""
    import html as html_lib
    import re

    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [[html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)] for row in rows]


def test_markdown_values_render_as_written() -> None:
    plan = Plan(streams=(StreamPlan(
        "orders", Action.UPDATE, (FieldChange("description", "old", HOSTILE),),
        config={}, location=Location("config/orders.yaml", 4, 1)),))
    html = _html(render_markdown(plan))
    assert "<script>" not in html and "<a " not in html and "<em>" not in html
    header, row = _cells(html)
    assert len(header) == len(row) == 4  # no `|` in a value splits the cell
    assert row[1:] == ["orders", "config/orders.yaml:4", f"description: old -> {HOSTILE}"]


def test_markdown_links_each_stream_to_its_line() -> None:
    plan = Plan(streams=(
        StreamPlan("orders", Action.CREATE, location=Location("config/my orders.yaml", 7, 1)),
        StreamPlan("tmp", Action.CREATE, location=Location("/abs/tmp.yaml", 2, 1)),
    ))
    markdown = render_markdown(plan, link_base="https://github.com/o/r/blob/abc123/")
    assert ("[config/my orders.yaml:7](https://github.com/o/r/blob/abc123/config/"
            "my%20orders.yaml#L7)") in markdown
    assert "| /abs/tmp.yaml:2 |" in markdown  # not under the base: not linked
    assert "](" not in render_markdown(plan)  # no base, no links


def test_markdown_starts_with_a_stable_marker() -> None:
    first = render_markdown(PLAN).splitlines()[0]
    assert first == MARKDOWN_MARKER == "<!-- jetstream-reconciler plan -->"
    assert render_markdown(Plan()).splitlines()[0] == first
    assert MARKDOWN_MARKER not in _html(render_markdown(PLAN)).replace(
        "<!-- jetstream-reconciler plan -->\n", "", 1)  # hidden: an HTML comment


def test_markdown_collapses_long_sections_but_not_short_ones() -> None:
    many = tuple(StreamPlan(f"s{i}", Action.NOOP) for i in range(MARKDOWN_OPEN_ROWS + 1))
    blocked = StreamPlan("b", Action.BLOCKED, reasons=("no",))
    markdown = render_markdown(Plan(streams=(blocked, *many)))
    assert "**Blocked (1)**" in markdown
    assert f"<details><summary>Unchanged ({MARKDOWN_OPEN_ROWS + 1})</summary>" in markdown
    assert "</details>" in markdown
    html = _html(markdown)
    assert "<details><summary>Unchanged (11)</summary>" in html and "<code>s10</code>" in html
