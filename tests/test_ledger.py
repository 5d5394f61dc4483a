"""Accounting of outside changes, as a pure value: who changed which field, logged once."""

from __future__ import annotations

from typing import Any

from reconciler.ledger import Ledger
from reconciler.model import FieldChange

BASE: dict[str, Any] = {"name": "events", "subjects": ["events.*"], "max_msgs": 10}


def cfg(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def test_a_read_accounts_for_the_changes_noted_before_it() -> None:
    ledger = Ledger()
    ledger.note("events", "ops", cfg(description="x"))
    at = ledger.position()
    ledger.note("events", "bot", cfg(description="x", max_age=600 * 10**9))
    settled = ledger.settle("events", at, cfg(description="x", max_age=600 * 10**9))
    assert settled.actors == ("ops",)
    # the later change waits for a later read
    assert [c.actor for c in ledger.pending("events")] == ["bot"]
    assert ledger.settle("events", ledger.position(), cfg()).actors == ("bot",)
    assert ledger.pending("events") == ()


def test_a_change_our_update_put_back_unseen_is_overwritten() -> None:
    ledger = Ledger()
    at = ledger.position()
    live_when_planned = cfg(description="x")  # the read our update was planned against
    ledger.note("events", "bot", cfg(description="x", max_age=600 * 10**9))  # lands just after it
    ledger.wrote("events", live_when_planned, at)
    settled = ledger.settle("events", ledger.position(), cfg())  # our update stands
    assert settled.overwritten == (
        ("bot", (FieldChange("max_age", 600 * 10**9, 0),)),
    )


def test_a_change_after_our_update_is_live_not_overwritten() -> None:
    ledger = Ledger()
    at = ledger.position()
    ledger.wrote("events", cfg(), at)
    ledger.note("events", "bot", cfg(max_msgs=99))
    assert ledger.settle("events", ledger.position(), cfg(max_msgs=99)).overwritten == ()


def test_a_field_changed_again_later_is_judged_by_the_later_change() -> None:
    ledger = Ledger()
    at = ledger.position()
    ledger.wrote("events", cfg(), at)
    ledger.note("events", "a", cfg(max_msgs=99))
    ledger.note("events", "b", cfg(max_msgs=50, description="y"))
    settled = ledger.settle("events", ledger.position(), cfg())
    assert settled.actors == ("a", "b")
    assert settled.overwritten == (
        ("b", (FieldChange("description", "y", None), FieldChange("max_msgs", 50, 10))),
    )


def test_a_change_seen_before_our_update_was_planned_is_not_overwritten() -> None:
    ledger = Ledger()
    ledger.note("events", "bot", cfg(max_msgs=99))
    at = ledger.position()
    assert ledger.settle("events", at, cfg(max_msgs=99)).actors == ("bot",)
    ledger.wrote("events", cfg(max_msgs=99), at)
    assert ledger.settle("events", ledger.position(), cfg()).overwritten == ()


def test_a_drift_left_in_place_is_news_once() -> None:
    ledger = Ledger()
    drift = (FieldChange("max_msgs", 99, 10),)
    assert ledger.first_report("events", drift)
    assert not ledger.first_report("events", drift)  # the next resync
    assert ledger.first_report("events", (FieldChange("max_msgs", 98, 10),))
    assert not ledger.first_report("events", ())  # in sync again
    assert ledger.first_report("events", drift)
    ledger.wrote("events", cfg(), 0)  # healed: the same drift again is a new change
    assert ledger.first_report("events", drift)


def test_tracked_names_every_stream_settle_or_first_report_has_news_of() -> None:
    ledger = Ledger()
    assert ledger.tracked() == set()
    ledger.note("a", "ops", cfg())
    assert ledger.first_report("b", (FieldChange("max_msgs", 10, 20),))
    assert ledger.tracked() == {"a", "b"}
    ledger.settle("a", ledger.position(), cfg())
    assert ledger.first_report("b", ()) is False
    assert ledger.tracked() == set()
    # for any stream it does not name, both are no-ops
    assert ledger.settle("c", ledger.position(), cfg()).actors == ()
    assert ledger.first_report("c", ()) is False
