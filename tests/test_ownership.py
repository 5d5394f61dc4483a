"""Ownership and prune as pure functions: which streams are ours, adoption, and every guard
on deleting a stream that no manifest declares any more."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model import (
    Action,
    DriftMode,
    LiveStream,
    Location,
    Policy,
    StreamSpec,
    StreamState,
)
from reconciler.plan import build_plan, canonical, plan_stream, prepare_pass
from reconciler.plan.ownership import (
    DEFAULT_OWNER,
    MANIFEST_KEY,
    OWNER_KEY,
    RESERVED_BYTES,
    owned,
    owner_of,
    valid_owner,
)
from reconciler.plan.prune import Prune, plan_prune

AT = Location("config/events.yaml", 1, 1)


def spec(name: str = "events", policy: Policy | None = None, **config: Any) -> StreamSpec:
    return StreamSpec(name, {"name": name, "subjects": [f"{name}.>"], **config},
                      policy or Policy(), AT)


def live(name: str = "events", owner: str | None = DEFAULT_OWNER, messages: int = 0,
         manifest: str | None = "config/events.yaml", **config: Any) -> LiveStream:
    metadata: dict[str, str] = {"_nats.req.level": "0"}
    if owner is not None:
        metadata[OWNER_KEY] = owner
    if manifest is not None and owner is not None:
        metadata[MANIFEST_KEY] = manifest
    body = {"name": name, "subjects": [f"{name}.>"], "metadata": metadata, **config}
    return LiveStream(name, canonical(body) | {"metadata": metadata},
                      StreamState(messages=messages, bytes=messages * 100))


# --- declared streams: ours, nobody's, someone else's -----------------------------------------


def test_a_stream_of_ours_that_matches_is_left_alone() -> None:
    assert plan_stream(spec(), live()).action is Action.NOOP


def test_ownership_keys_never_show_up_as_drift() -> None:
    """The recorded manifest is for people: a stream declared in another file is no change."""
    plan = plan_stream(spec(), live(manifest="old/place.yaml"))
    assert plan.action is Action.NOOP
    assert canonical(live().config) == canonical(live(owner=None).config)


def test_a_matching_stream_that_is_nobodys_is_adopted_and_nothing_else_changes() -> None:
    plan = plan_stream(spec(), live(owner=None))
    assert plan.action is Action.ADOPT and plan.changes == () and plan.adopt
    assert plan.config is not None
    assert owner_of(plan.config) == DEFAULT_OWNER
    assert plan.config["metadata"][MANIFEST_KEY] == "config/events.yaml"
    assert canonical(plan.config) == canonical(live(owner=None).config)


def test_an_update_of_a_stream_that_is_nobodys_adopts_it_too() -> None:
    plan = plan_stream(spec(max_msgs=10), live(owner=None))
    assert plan.action is Action.UPDATE and plan.adopt
    assert plan.config is not None and owner_of(plan.config) == DEFAULT_OWNER


def test_a_create_records_ownership() -> None:
    plan = plan_stream(spec(), None, owner="team-a")
    assert plan.action is Action.CREATE and plan.config is not None
    assert owner_of(plan.config) == "team-a"


@pytest.mark.parametrize("config", [{}, {"max_msgs": 10}])
def test_a_stream_another_owner_records_is_never_written(config: dict[str, Any]) -> None:
    plan = plan_stream(spec(**config), live(owner="team-b"), owner="team-a")
    assert plan.action is Action.BLOCKED
    assert "belongs to owner 'team-b'" in plan.reasons[0]
    assert "--owner team-b" in plan.reasons[0]


def test_report_only_streams_are_never_adopted() -> None:
    plan = plan_stream(spec(policy=Policy(drift=DriftMode.REPORT)), live(owner=None))
    assert plan.action is Action.NOOP


def test_a_stream_held_by_watch_mode_is_not_adopted_meanwhile() -> None:
    plan = plan_stream(spec(), live(owner=None), hold="paused: a fight")
    assert plan.action is Action.NOOP


def test_a_long_manifest_path_is_cut_to_the_room_kept() -> None:
    config = owned(canonical({"name": "x"}), "o" * 64, "d/" * 2000 + "x.yaml")
    metadata = config["metadata"]
    used = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    assert used <= RESERVED_BYTES
    assert metadata[MANIFEST_KEY].endswith("x.yaml")


@pytest.mark.parametrize(("name", "ok"), [
    ("default", True), ("team-a", True), ("a.b_c", True), ("", False), ("a b", False),
    ("x" * 65, False), ("a/b", False),
])
def test_owner_names(name: str, ok: bool) -> None:
    assert valid_owner(name) is ok


# --- undeclared streams: listed always, deleted only with prune -------------------------------


def test_undeclared_owned_streams_are_listed_with_where_they_were_declared() -> None:
    plan = build_plan([spec()], [live(), live("old", messages=3, manifest="config/old.yaml"),
                                 live("legacy", owner=None), live("theirs", owner="team-b")])
    assert [s.name for s in plan.streams] == ["events"]
    (old,) = plan.undeclared
    assert (old.name, old.manifest, old.messages, old.bytes) == ("old", "config/old.yaml", 3, 300)
    assert plan.unmanaged == ("legacy", "theirs")


def prune(*streams: LiveStream, allow_data_loss: bool = False,
          **options: Any) -> dict[str, tuple[Action, tuple[str, ...]]]:
    plans, kept = plan_prune(streams, Prune(**options), allow_data_loss=allow_data_loss)
    out = {p.name: (p.action, p.reasons) for p in plans}
    out.update({k.name: (Action.NOOP, (k.note or "",)) for k in kept})
    return out


def test_an_empty_undeclared_stream_is_deleted() -> None:
    plans, kept = plan_prune([live("old")], Prune(), allow_data_loss=False)
    (plan,) = plans
    assert (plan.action, plan.impact, plan.undeclared, kept) == (Action.DELETE, None, True, ())
    assert plan.location == Location("config/events.yaml")


def test_deleting_messages_needs_the_data_loss_consent() -> None:
    action, reasons = prune(live("old", messages=5))["old"]
    assert action is Action.BLOCKED
    assert "destroys 5 messages (500 bytes)" in reasons[0] and "--allow-data-loss" in reasons[0]
    plans, _ = plan_prune([live("old", messages=5)], Prune(), allow_data_loss=True)
    assert plans[0].action is Action.DELETE
    assert plans[0].impact is not None and (plans[0].impact.messages, plans[0].impact.bytes) \
        == (5, 500)


@pytest.mark.parametrize("config", [{"deny_delete": True}, {"sealed": True}])
def test_streams_that_forbid_deleting_messages_are_never_deleted(config: dict[str, Any]) -> None:
    action, reasons = prune(live("old", **config), allow_data_loss=True)["old"]
    assert action is Action.BLOCKED and "prune never deletes the stream" in reasons[0]


def test_more_deletions_than_allowed_block_them_all() -> None:
    streams = [live("a"), live("b"), live("c")]
    assert {a for a, _ in prune(*streams, max_deletes=3).values()} == {Action.DELETE}
    result = prune(*streams, max_deletes=2)
    assert {a for a, _ in result.values()} == {Action.BLOCKED}
    assert "3 streams would be deleted, more than --max-deletes 2" in result["a"][1][0]


def test_streams_that_cannot_be_deleted_do_not_count_against_the_limit() -> None:
    result = prune(live("a"), live("b", deny_delete=True), max_deletes=1)
    assert result["a"][0] is Action.DELETE and result["b"][0] is Action.BLOCKED


def test_a_refusal_blocks_every_deletion_with_its_reason() -> None:
    result = prune(live("a"), live("b", messages=1), refuse="no manifest declares any stream")
    assert {a for a, _ in result.values()} == {Action.BLOCKED}
    assert all(r[0] == "no manifest declares any stream" for _, r in result.values())


def test_in_watch_mode_only_streams_past_their_grace_period_go() -> None:
    result = prune(live("a"), live("b"), ripe=frozenset({"a"}), hold="in its grace period")
    assert result == {"a": (Action.DELETE, ()), "b": (Action.NOOP, ("in its grace period",))}


def test_without_prune_nothing_is_planned_for_undeclared_streams() -> None:
    plans, kept = plan_prune([live("a", messages=2)], None, allow_data_loss=True)
    assert plans == () and [k.name for k in kept] == ["a"] and kept[0].note is None


def test_a_stream_to_delete_still_takes_its_subjects_while_the_plan_runs() -> None:
    """A create that overlaps a stream being pruned is blocked: the deletion may come after."""
    plan = prepare_pass([spec("new", subjects=["old.>"])], [live("old")]).plan(prune=Prune())
    actions = {s.name: s.action for s in plan.streams}
    assert actions == {"new": Action.BLOCKED, "old": Action.DELETE}


# --- how plans with ownership and prune read --------------------------------------------------


def test_adoption_deletion_and_undeclared_streams_in_every_output() -> None:
    from reconciler.report import plan_document, render_markdown, render_text

    plan = prepare_pass(
        [spec("events"), spec("kept")],
        [live("events", owner=None), live("kept"), live("old", messages=2),
         live("older", manifest="config/older.yaml")],
    ).plan(prune=Prune(max_deletes=5, ripe=frozenset({"old"}), hold="in its grace period"),
           allow_data_loss=True)
    text = render_text(plan)
    assert "@ events (config/events.yaml:1:1): adopt: in sync; apply records ownership" in text
    assert "- old (last declared in config/events.yaml): delete" in text
    assert "    data loss (allowed): deleting the stream would discard 2 messages (200 bytes)" \
        in text
    assert ("? older: undeclared: owned, in no manifest (last declared in config/older.yaml); "
            "0 messages (0 bytes); in its grace period") in text
    assert text.endswith("Plan: 0 to create, 0 to update, 1 to adopt, 1 to delete, 0 blocked, "
                         "1 unchanged, 1 undeclared.\n")
    document = plan_document(plan)
    assert document["summary"]["pending"] is True  # the deletion, not the adoption
    assert [(s["name"], s["action"], s["adopt"], s["undeclared"]) for s in document["streams"]] \
        == [("events", "adopt", True, False), ("kept", "noop", False, False),
            ("old", "delete", False, True)]
    assert document["undeclared"] == [{"name": "older", "manifest": "config/older.yaml",
                                       "messages": 0, "bytes": 0,
                                       "note": "in its grace period"}]
    markdown = render_markdown(plan)
    assert "**To delete (1)**" in markdown and "**To adopt" in markdown
    assert "**Undeclared: owned, in no manifest (1)**" in markdown


def test_an_adoption_alone_is_not_pending() -> None:
    plan = build_plan([spec()], [live(owner=None)])
    assert not plan.pending and plan.writes
