"""The plan as a pure function: tables of desired specs and live configs in, plans out."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from reconciler.model import (
    Action,
    DriftMode,
    FieldChange,
    Impact,
    LiveStream,
    MessageSample,
    Policy,
    StoredMessage,
    StreamSpec,
    StreamState,
)
from reconciler.plan import (
    build_plan,
    canonical,
    desired_config,
    diff,
    normalise_timestamp,
    plan_stream,
    predict_impact,
    same_as_read,
    sample_request,
    stored_size,
)
from reconciler.plan.ownership import DEFAULT_OWNER, OWNER_KEY

S = 1_000_000_000
MS = 1_000_000

# What nats-server 2.15 answers for `{"name": "events", "subjects": ["events.*"]}`.
LIVE_EVENTS: dict[str, Any] = {
    "name": "events",
    "subjects": ["events.*"],
    "retention": "limits",
    "max_consumers": -1,
    "max_msgs": -1,
    "max_bytes": -1,
    "max_age": 0,
    "max_msgs_per_subject": -1,
    "max_msg_size": -1,
    "discard": "old",
    "storage": "file",
    "num_replicas": 1,
    "duplicate_window": 120 * S,
    "compression": "none",
    "allow_direct": False,
    "mirror_direct": False,
    "sealed": False,
    "deny_delete": False,
    "deny_purge": False,
    "allow_rollup_hdrs": False,
    "consumer_limits": {},
    "metadata": {"_nats.req.level": "0", "_nats.ver": "2.15.1", "_nats.level": "1"},
}


def spec(name: str = "events", policy: Policy | None = None, **config: Any) -> StreamSpec:
    return StreamSpec(name=name, config={"name": name, **config}, policy=policy or Policy())


def live(config: dict[str, Any] | None = None, **state: Any) -> LiveStream:
    """A live stream this reconciler owns (see tests/test_ownership.py for the others)."""
    config = LIVE_EVENTS if config is None else config
    metadata = {**(config.get("metadata") or {}), OWNER_KEY: DEFAULT_OWNER}
    return LiveStream(config["name"], {**config, "metadata": metadata}, StreamState(**state))


def with_live(**changes: Any) -> dict[str, Any]:
    return {**LIVE_EVENTS, **changes}


# --- canonical form: what makes a just-applied stream show no change --------------------------


@pytest.mark.parametrize(
    ("desired", "live_config"),
    [
        ({"subjects": ["events.*"]}, LIVE_EVENTS),
        ({"subjects": ["events.*"], "max_msgs": 0, "max_bytes": 0}, LIVE_EVENTS),
        ({"subjects": ["events.*"], "num_replicas": 0}, LIVE_EVENTS),
        ({"subjects": ["events.*"], "storage": "file", "retention": "limits"}, LIVE_EVENTS),
        ({"subjects": ["events.*"], "metadata": {}}, LIVE_EVENTS),
        ({"subjects": ["events.*"], "persist_mode": "default"}, LIVE_EVENTS),
        ({"subjects": ["events.*"], "description": ""}, LIVE_EVENTS),
        # duplicate_window follows a short max_age
        ({"subjects": ["events.*"], "max_age": 100 * MS},
         with_live(max_age=100 * MS, duplicate_window=100 * MS)),
        # subjects default to the name
        ({}, with_live(subjects=["events"])),
        # subject order carries no meaning
        ({"subjects": ["b.*", "a.*"]}, with_live(subjects=["a.*", "b.*"])),
        # user metadata compared, the server's own keys never
        ({"subjects": ["events.*"], "metadata": {"owner": "team-a"}},
         with_live(metadata={"owner": "team-a", "_nats.req.level": "0"})),
        # what the server forces along with subject_delete_marker_ttl
        ({"subjects": ["events.*"], "subject_delete_marker_ttl": 5 * S},
         with_live(subject_delete_marker_ttl=5 * S, allow_msg_ttl=True,
                   allow_rollup_hdrs=True)),
        # timestamps compared as instants
        ({"sources": [{"name": "a", "opt_start_time": "2024-01-01T01:00:00+01:00"}]},
         with_live(subjects=None, duplicate_window=0,
                   sources=[{"name": "a", "opt_start_time": "2024-01-01T00:00:00Z",
                             "filter_subject": ""}])),
    ],
)
def test_no_false_drift(desired: dict[str, Any], live_config: dict[str, Any]) -> None:
    plan = plan_stream(spec(**desired), live(live_config))
    assert plan.action is Action.NOOP, plan.changes


def test_canonical_is_idempotent() -> None:
    once = canonical(LIVE_EVENTS)
    assert canonical(once) == once


def test_removing_a_line_reverts_to_the_default() -> None:
    current = with_live(max_msgs=10, description="old")
    plan = plan_stream(spec(subjects=["events.*"]), live(current))
    assert plan.action is Action.UPDATE
    assert plan.changes == (
        FieldChange("description", "old", None),
        FieldChange("max_msgs", 10, -1),
    )
    assert plan.config is not None
    assert plan.config["max_msgs"] == -1 and "description" not in plan.config


def test_diff_names_nested_and_metadata_fields() -> None:
    desired = canonical({"name": "x", "metadata": {"a": "1", "b": "2"},
                         "placement": {"cluster": "east"}})
    current = canonical({"name": "x", "metadata": {"a": "0"}})
    assert diff(desired, current) == (
        FieldChange("metadata.a", "0", "1"),
        FieldChange("metadata.b", None, "2"),
        FieldChange("placement.cluster", None, "east"),
    )


def test_ignore_fields_keep_the_live_value() -> None:
    current = with_live(max_msgs=500, metadata={"owner": "ops"})
    s = spec(subjects=["events.*"], max_msgs=10,
             policy=Policy(ignore_fields=("max_msgs", "metadata.owner")))
    plan = plan_stream(s, live(current))
    assert plan.action is Action.NOOP
    config = desired_config(s, live(current))
    assert config["max_msgs"] == 500
    assert config["metadata"] == {"owner": "ops"}


def test_lowering_max_age_lowers_the_default_duplicate_window() -> None:
    plan = plan_stream(spec(subjects=["events.*"], max_age=100 * MS), live())
    assert plan.action is Action.UPDATE
    assert plan.config is not None
    assert plan.config["max_age"] == 100 * MS
    assert plan.config["duplicate_window"] == 100 * MS
    assert FieldChange("duplicate_window", 120 * S, 100 * MS) in plan.changes


def test_an_explicit_duplicate_window_is_kept() -> None:
    s = spec(subjects=["events.*"], max_age=60 * S, duplicate_window=30 * S)
    config = desired_config(s, live())
    assert config["duplicate_window"] == 30 * S


def test_create_sends_the_whole_configuration() -> None:
    plan = plan_stream(spec(subjects=["events.*"], max_msgs=10), None)
    assert plan.action is Action.CREATE
    assert canonical(plan.config) == canonical(LIVE_EVENTS) | {"max_msgs": 10}
    assert FieldChange("max_msgs", None, 10) in plan.changes


# --- what the server cannot do ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "live_config", "reason"),
    [
        ({"storage": "memory"}, LIVE_EVENTS,
         "storage cannot change on an existing stream (file -> memory); keep storage: file, "
         "or declare a new stream with the new storage and move the data"),
        ({"retention": "workqueue"}, LIVE_EVENTS,
         "retention cannot change from limits to workqueue (only limits <-> interest is "
         "possible); keep retention: limits"),
        ({"retention": "limits"}, with_live(retention="workqueue"),
         "retention cannot change from workqueue to limits (only limits <-> interest is "
         "possible); keep retention: workqueue"),
        ({"allow_msg_counter": True}, LIVE_EVENTS,
         "allow_msg_counter cannot change on an existing stream; keep allow_msg_counter: false"),
        ({"persist_mode": "async"}, LIVE_EVENTS,
         "persist_mode cannot change on an existing stream; keep persist_mode: default"),
        ({"deny_delete": False}, with_live(deny_delete=True),
         "deny_delete cannot be turned off once on; keep deny_delete: true"),
        ({"deny_purge": False}, with_live(deny_purge=True),
         "deny_purge cannot be turned off once on; keep deny_purge: true"),
        ({"allow_msg_ttl": False}, with_live(allow_msg_ttl=True),
         "allow_msg_ttl cannot be turned off once on; keep allow_msg_ttl: true"),
        ({"allow_msg_schedules": False}, with_live(allow_msg_schedules=True,
                                                   allow_rollup_hdrs=True),
         "allow_msg_schedules cannot be turned off once on; keep allow_msg_schedules: true"),
        ({"sealed": False}, with_live(sealed=True, discard="new", deny_delete=True,
                                      deny_purge=True),
         "sealed cannot be turned off once on; keep sealed: true"),
        ({"mirror": {"name": "other"}, "subjects": []}, LIVE_EVENTS,
         "a mirror cannot be added to an existing stream; remove the mirror block or declare "
         "the mirror as a new stream"),
    ],
)
def test_blocked_changes(desired: dict[str, Any], live_config: dict[str, Any], reason: str) -> None:
    s = spec(**({"subjects": ["events.*"]} | desired))
    plan = plan_stream(s, live(live_config))
    assert plan.action is Action.BLOCKED
    assert reason in plan.reasons


def test_sealing_is_allowed_and_shows_what_it_forces() -> None:
    plan = plan_stream(spec(subjects=["events.*"], sealed=True), live())
    assert plan.action is Action.UPDATE
    paths = {c.path for c in plan.changes}
    assert {"sealed", "discard", "deny_delete", "deny_purge"} <= paths


def test_a_stream_cannot_be_created_sealed() -> None:
    plan = plan_stream(spec(subjects=["events.*"], sealed=True), None)
    assert plan.action is Action.BLOCKED
    assert plan.reasons == ("a stream cannot be created sealed; apply it with sealed: false "
                            "first, then set sealed: true",)


def test_removing_a_mirror_promotes_the_stream() -> None:
    mirror = with_live(subjects=None, mirror={"name": "origin"}, duplicate_window=0)
    plan = plan_stream(spec(name="events", subjects=["events.*"]), live(mirror))
    assert plan.action is Action.UPDATE


def test_unmanaged_streams_are_listed_not_touched() -> None:
    other = with_live(name="legacy", subjects=["legacy.>"])
    plan = build_plan([spec(subjects=["events.*"])],
                      [live(), LiveStream("legacy", other)])
    assert plan.unmanaged == ("legacy",)
    assert plan.undeclared == ()
    assert [s.name for s in plan.streams] == ["events"]


# --- report only: decided in the plan, never written, never blocked ---------------------------

REPORT = Policy(drift=DriftMode.REPORT)


@pytest.mark.parametrize(
    ("desired", "current", "action", "changes"),
    [
        # in sync: nothing to report
        ({"subjects": ["events.*"]}, LIVE_EVENTS, Action.NOOP, ()),
        # drifted: the difference, nothing to send
        ({"subjects": ["events.*"], "max_msgs": 10}, LIVE_EVENTS, Action.REPORT,
         (FieldChange("max_msgs", -1, 10),)),
        # a change the server cannot make is not blocked: nothing will be tried
        ({"subjects": ["events.*"], "storage": "memory"}, LIVE_EVENTS, Action.REPORT,
         (FieldChange("storage", "file", "memory"),)),
        # missing: reported, not created
        ({"subjects": ["events.*"]}, None, Action.REPORT,
         (FieldChange("subjects", None, ["events.*"]),)),
    ],
)
def test_report_only_is_decided_in_the_plan(
    desired: dict[str, Any], current: dict[str, Any] | None, action: Action,
    changes: tuple[FieldChange, ...],
) -> None:
    got = plan_stream(spec(policy=REPORT, **desired),
                      None if current is None else live(current))
    assert (got.action, got.changes, got.config, got.impact) == (action, changes, None, None)
    assert got.missing is (current is None)
    if action is Action.REPORT:
        assert got.reasons == (
            "reconcile.drift is report: "
            f"{'not created' if current is None else 'left as it is'}, "
            "the difference is only logged",)
    plan = build_plan([spec(policy=REPORT, **desired)],
                      [] if current is None else [live(current)])
    assert not plan.pending and not plan.blocked


def test_data_loss_on_a_report_only_stream_is_not_blocked() -> None:
    stream, sample = seeded(SEED_SUBJECTS, max_msgs=-1)
    got = plan_stream(spec(policy=REPORT, subjects=["events.*"], max_msgs=2), stream, sample)
    assert got.action is Action.REPORT and got.impact is None


def test_a_hold_leaves_a_drifted_stream_alone_with_its_reason() -> None:
    plan = build_plan([spec(subjects=["events.*"], max_msgs=10), spec("other")],
                      [live(), live(with_live(name="other", subjects=["other"], max_msgs=5))],
                      holds={"events": "paused", "other": "paused"})
    events, other = plan.streams
    assert (events.action, events.reasons, events.config) == (Action.REPORT, ("paused",), None)
    assert (other.action, other.reasons) == (Action.REPORT, ("paused",))
    assert build_plan([spec(subjects=["events.*"])], [live()],
                      holds={"events": "paused"}).streams[0].action is Action.NOOP


# --- data-loss impact ------------------------------------------------------------------------

SEED_SUBJECTS = ["events.page_loaded", "events.mouse_clicked", "events.mouse_clicked",
                 "events.page_loaded", "events.mouse_clicked", "events.input_focused"]


def messages(subjects: list[str], t0: int = 1_000 * S, step: int = MS,
             payload: int = 0) -> tuple[StoredMessage, ...]:
    return tuple(StoredMessage(i + 1, s, t0 + i * step, payload) for i, s in enumerate(subjects))


def seeded(published: list[str], storage: str = "file", payload: int = 0,
           **config: Any) -> tuple[LiveStream, MessageSample]:
    msgs = messages(published, payload=payload)
    total = sum(stored_size(m, storage) for m in msgs)
    stream = live(with_live(storage=storage, **config), messages=len(msgs), bytes=total,
                  first_seq=1, last_seq=len(msgs), first_ts_ns=msgs[0].time_ns)
    return stream, MessageSample(msgs, True, None, now_ns=msgs[-1].time_ns + S)


def test_stored_size_matches_the_server_formula() -> None:
    msgs = messages(SEED_SUBJECTS)
    assert sum(stored_size(m, "file") for m in msgs) == 296
    assert stored_size(StoredMessage(1, "a.b", 0, 10, 20), "file") == 22 + 3 + 4 + 20 + 10 + 8
    assert stored_size(StoredMessage(1, "a.b", 0, 10, 20), "memory") == 3 + 20 + 10 + 16


def test_seed_limits_within_reach_lose_nothing() -> None:
    stream, sample = seeded(SEED_SUBJECTS)
    for change in ({"max_msgs": 10}, {"max_bytes": 300}):
        plan = plan_stream(spec(subjects=["events.*"], **change), stream, sample)
        assert plan.action is Action.UPDATE
        assert plan.impact is None


def test_seed_max_bytes_after_twelve_messages() -> None:
    # NATS by Example: six more messages after max_msgs 10 -> the stream holds the last ten
    stream, sample = seeded((SEED_SUBJECTS * 2)[2:], max_msgs=10)
    plan = plan_stream(spec(subjects=["events.*"], max_msgs=10, max_bytes=300), stream, sample)
    assert plan.action is Action.BLOCKED
    # 10 messages, 494 bytes; the four oldest (48 + 3 x 50 bytes) go, leaving 296
    assert plan.impact == Impact(4, 198, True, ("max_bytes",))
    assert plan.reasons == (
        "max_bytes would discard 4 messages (198 bytes); set reconcile.allow_data_loss: true "
        "in the manifest or pass --allow-data-loss to accept the loss",
    )


def test_seed_max_age_discards_everything_older() -> None:
    stream, sample = seeded(SEED_SUBJECTS)
    plan = plan_stream(spec(subjects=["events.*"], max_age=100 * MS), stream, sample)
    assert plan.action is Action.BLOCKED
    assert plan.impact == Impact(6, 296, True, ("max_age",))
    allowed = plan_stream(spec(subjects=["events.*"], max_age=100 * MS,
                               policy=Policy(allow_data_loss=True)), stream, sample)
    assert allowed.action is Action.UPDATE
    assert allowed.impact == Impact(6, 296, True, ("max_age",))
    flag = plan_stream(spec(subjects=["events.*"], max_age=100 * MS), stream, sample,
                       allow_data_loss=True)
    assert flag.action is Action.UPDATE


def test_memory_storage_sizes() -> None:
    stream, sample = seeded(SEED_SUBJECTS, storage="memory")
    plan = plan_stream(spec(subjects=["events.*"], storage="memory", max_msgs=4), stream, sample)
    # the two oldest: events.page_loaded (18+16) and events.mouse_clicked (20+16)
    assert plan.impact == Impact(2, 70, True, ("max_msgs",))


def test_discard_new_drops_nothing_until_it_flips_to_old() -> None:
    stream, sample = seeded(SEED_SUBJECTS, discard="new")
    kept = plan_stream(spec(subjects=["events.*"], discard="new", max_msgs=2), stream, sample)
    assert kept.action is Action.UPDATE and kept.impact is None
    # the stream now holds more than its limit; flipping discard to old trims it
    over, sample = seeded(SEED_SUBJECTS, discard="new", max_msgs=2)
    flip = plan_stream(spec(subjects=["events.*"], discard="old", max_msgs=2), over, sample)
    assert flip.action is Action.BLOCKED
    assert flip.impact == Impact(4, 196, True, ("max_msgs",))


def test_per_subject_limit_keeps_the_newest_of_each_subject() -> None:
    stream, sample = seeded(SEED_SUBJECTS)
    counts = MessageSample(sample.messages, True,
                           {"events.page_loaded": 2, "events.mouse_clicked": 3,
                            "events.input_focused": 1}, sample.now_ns)
    plan = plan_stream(spec(subjects=["events.*"], max_msgs_per_subject=1), stream, counts)
    # one page_loaded (48) and two mouse_clicked (50 each) go
    assert plan.impact == Impact(3, 148, True, ("max_msgs_per_subject",))


def test_retention_to_interest_without_consumers_deletes_everything() -> None:
    stream, _ = seeded(SEED_SUBJECTS)
    plan = plan_stream(spec(subjects=["events.*"], retention="interest"), stream)
    assert plan.impact == Impact(6, 296, True, ("retention",))
    assert plan.action is Action.BLOCKED


def test_retention_to_interest_with_consumers_is_uncertain_so_guarded() -> None:
    stream, _ = seeded(SEED_SUBJECTS)
    stream = LiveStream(stream.name, stream.config,
                        StreamState(messages=6, bytes=296, consumer_count=1))
    plan = plan_stream(spec(subjects=["events.*"], retention="interest"), stream)
    assert plan.action is Action.BLOCKED
    assert plan.reasons[0].startswith(
        "retention may discard stored messages (the number cannot be known in advance)")


def test_an_incomplete_sample_gives_a_lower_bound() -> None:
    stream, sample = seeded(SEED_SUBJECTS * 4)  # 24 stored, only the first 6 read
    partial = MessageSample(sample.messages[:6], False, None, sample.now_ns)
    plan = plan_stream(spec(subjects=["events.*"], max_msgs=2), stream, partial)
    assert plan.impact is not None
    assert (plan.impact.messages, plan.impact.exact) == (6, False)
    assert "would discard at least 6 messages" in plan.reasons[0]


def test_a_prefix_that_reaches_the_survivors_is_exact() -> None:
    stream, sample = seeded(SEED_SUBJECTS * 4)
    partial = MessageSample(sample.messages[:6], False, None, sample.now_ns)
    plan = plan_stream(spec(subjects=["events.*"], max_msgs=22), stream, partial)
    assert plan.impact is not None and plan.impact.exact
    assert plan.impact.messages == 2


def test_max_msgs_is_enforced_before_the_per_subject_limit() -> None:
    # the server drops r.a for max_msgs, then the older r.b for the per-subject limit
    stream, sample = seeded(["r.a", "r.b", "r.b"], subjects=["r.*"])
    plan = plan_stream(spec(subjects=["r.*"], max_msgs=2, max_msgs_per_subject=1), stream,
                       sample)
    assert plan.impact == Impact(2, 2 * 33, True, ("max_msgs", "max_msgs_per_subject"))


def test_max_bytes_is_enforced_before_the_per_subject_limit() -> None:
    stream, sample = seeded(["r.a", "r.b", "r.b"], subjects=["r.*"])
    plan = plan_stream(spec(subjects=["r.*"], max_bytes=2 * 33, max_msgs_per_subject=1),
                       stream, sample)
    assert plan.impact == Impact(2, 2 * 33, True, ("max_bytes", "max_msgs_per_subject"))


def test_discard_flip_enforces_an_existing_max_msgs_before_the_per_subject_limit() -> None:
    stream, sample = seeded(["r.a", "r.b", "r.b", "r.c"], subjects=["r.*"], discard="new",
                            max_msgs=3)
    plan = plan_stream(spec(subjects=["r.*"], max_msgs=3, max_msgs_per_subject=1), stream,
                       sample)
    # max_msgs: seq 1; per subject: seq 2
    assert plan.impact == Impact(2, 66, True, ("max_msgs", "max_msgs_per_subject"))


def test_age_expiry_comes_after_the_per_subject_limit() -> None:
    # two old messages (r.a, r.b), then r.a, r.a, r.c: per subject 1 drops 1 and 3, age 2
    msgs = (*messages(["r.a", "r.b"]), *messages(["r.a", "r.a", "r.c"], t0=2_000 * S))
    msgs = tuple(StoredMessage(i + 1, m.subject, m.time_ns, 0) for i, m in enumerate(msgs))
    stream = live(with_live(subjects=["r.*"]), messages=5, bytes=5 * 33, first_seq=1,
                  last_seq=5)
    sample = MessageSample(msgs, True, None, now_ns=2_000 * S + 10 * S)
    plan = plan_stream(spec(subjects=["r.*"], max_age=100 * S, max_msgs_per_subject=1),
                       stream, sample)
    assert plan.impact == Impact(3, 99, True, ("max_age", "max_msgs_per_subject"))


def test_age_expiry_stops_at_the_first_message_young_enough() -> None:
    # the server walks from the oldest and stops at the first message inside max_age
    msgs = (StoredMessage(1, "r.a", 10 * S, 0), StoredMessage(2, "r.a", 100 * S, 0),
            StoredMessage(3, "r.a", 5 * S, 0))
    stream = live(with_live(subjects=["r.*"]), messages=3, bytes=99, first_seq=1, last_seq=3)
    sample = MessageSample(msgs, True, None, now_ns=110 * S)
    plan = plan_stream(spec(subjects=["r.*"], max_age=50 * S), stream, sample)
    assert plan.impact == Impact(1, 33, True, ("max_age",))


def test_raising_first_seq_purges_a_file_stream_at_its_next_restart() -> None:
    stream, sample = seeded(["r.a"] * 10, subjects=["r.*"])
    plan = plan_stream(spec(subjects=["r.*"], first_seq=1000), stream, None)
    assert plan.action is Action.BLOCKED
    assert plan.impact == Impact(10, 330, True, ("first_seq",))
    assert plan.reasons == (
        "first_seq would discard 10 messages (330 bytes), first_seq at the server's next "
        "restart; set reconcile.allow_data_loss: true in the manifest or pass "
        "--allow-data-loss to accept the loss",
    )
    # every message goes, whatever other limits take first
    both = plan_stream(spec(subjects=["r.*"], first_seq=1000, max_msgs=4), stream, sample)
    assert both.impact == Impact(10, 330, True, ("max_msgs", "first_seq"))


def test_first_seq_below_every_surviving_message_loses_nothing_more() -> None:
    stream, sample = seeded(["r.a"] * 10, subjects=["r.*"])
    at_first = plan_stream(spec(subjects=["r.*"], first_seq=1), stream, sample)
    assert at_first.action is Action.UPDATE and at_first.impact is None
    # max_msgs leaves 6..10: first_seq 6 purges nothing, 7 purges all
    six = plan_stream(spec(subjects=["r.*"], first_seq=6, max_msgs=5), stream, sample)
    assert six.impact == Impact(5, 165, True, ("max_msgs",))
    seven = plan_stream(spec(subjects=["r.*"], first_seq=7, max_msgs=5), stream, sample)
    assert seven.impact == Impact(10, 330, True, ("max_msgs", "first_seq"))


def test_first_seq_on_a_memory_stream_loses_nothing() -> None:
    stream, sample = seeded(["r.a"] * 10, storage="memory", subjects=["r.*"])
    plan = plan_stream(spec(subjects=["r.*"], storage="memory", first_seq=1000), stream, sample)
    assert plan.action is Action.UPDATE and plan.impact is None


def sdm_stream(published: list[tuple[str, int]], **config: Any) -> tuple[LiveStream,
                                                                          MessageSample]:
    """Messages (subject, age in s) of a stream with subject delete markers, now = 100 s."""
    msgs = tuple(StoredMessage(i + 1, subj, (100 - age) * S, 0)
                 for i, (subj, age) in enumerate(published))
    stream = live(with_live(subjects=["r.*"], subject_delete_marker_ttl=3600 * S,
                            allow_msg_ttl=True, allow_rollup_hdrs=True, **config),
                  messages=len(msgs), bytes=33 * len(msgs), first_seq=1, last_seq=len(msgs))
    return stream, MessageSample(msgs, True, None, now_ns=100 * S)


def test_a_delete_marker_can_push_out_the_oldest_with_discard_old() -> None:
    # r.a (old) and r.a (young): 66 bytes within max_bytes 83; age takes the old one without
    # a marker. With r.b old instead, its marker (22+3+4+76+8 = 113 bytes) is stored, and
    # max_bytes then pushes out the young r.a too.
    marker = dict(subject_delete_marker_ttl=3600 * S)
    stream, sample = sdm_stream([("r.a", 50), ("r.a", 1)])
    plan = plan_stream(spec(subjects=["r.*"], max_age=10 * S, max_bytes=83, **marker),
                       stream, sample)
    assert plan.impact == Impact(1, 33, True, ("max_age",))
    stream, sample = sdm_stream([("r.b", 50), ("r.a", 1)])
    plan = plan_stream(spec(subjects=["r.*"], max_age=10 * S, max_bytes=83, **marker),
                       stream, sample)
    assert plan.impact == Impact(2, 66, True, ("max_age",))


def test_a_delete_marker_refused_by_discard_new_keeps_the_message() -> None:
    marker = dict(subject_delete_marker_ttl=3600 * S, discard="new", max_msgs=2)
    stream, sample = sdm_stream([("r.a", 50), ("r.b", 50)], discard="new", max_msgs=2)
    plan = plan_stream(spec(subjects=["r.*"], max_age=10 * S, **marker), stream, sample)
    # the stream is full: neither marker is stored, so neither message goes
    assert plan.impact is None


def test_a_missing_sample_is_never_taken_for_no_loss() -> None:
    stream, _ = seeded(SEED_SUBJECTS)
    plan = plan_stream(spec(subjects=["events.*"], max_msgs=2), stream, None)
    assert plan.action is Action.BLOCKED
    assert plan.impact == Impact(0, 0, False, ("max_msgs",))


def test_an_impact_always_means_a_loss() -> None:
    with pytest.raises(ValueError):
        Impact(0, 0, True, ())


def test_sample_request_only_when_something_can_go() -> None:
    stream, _ = seeded(SEED_SUBJECTS)
    desired = canonical({"name": "events", "subjects": ["events.*"], "max_msgs": 10})
    assert sample_request(desired, stream) is None
    desired = canonical({"name": "events", "subjects": ["events.*"], "max_msgs": 5})
    assert sample_request(desired, stream) is not None
    desired = canonical({"name": "events", "max_msgs_per_subject": 5})
    request = sample_request(desired, stream)
    assert request is not None and request.subject_counts
    empty = live()
    assert sample_request(canonical({"name": "events", "max_msgs": 1}), empty) is None


def test_predict_impact_none_when_no_messages() -> None:
    assert predict_impact(canonical({"name": "e", "max_msgs": 1}), live(), None) is None


def test_one_spelling_per_instant() -> None:
    assert normalise_timestamp("2024-01-01T00:00:00.5+00:00") == "2024-01-01T00:00:00.500000000Z"


def test_a_pass_makes_each_live_config_canonical_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking what to sample, planning and the server checks share one canonical form of
    each live configuration (the checks once made every undeclared stream canonical again
    for each planned stream)."""
    import sys

    from reconciler.plan import prepare_pass

    real = sys.modules["reconciler.plan.canonical"].canonical
    calls: Counter[int] = Counter()

    def counting(config: Any) -> Any:
        calls[id(config)] += 1
        return real(config)

    for module in ("canonical", "build", "stream", "impact", "server"):
        monkeypatch.setattr(sys.modules[f"reconciler.plan.{module}"], "canonical", counting)
    lives = [
        live(with_live(name=f"s{i}", subjects=[f"s{i}.>"]), messages=10, bytes=1000)
        for i in range(3)
    ] + [live(with_live(name=f"u{i}", subjects=[f"u{i}.>"])) for i in range(3)]
    specs = [spec(f"s{i}", subjects=[f"s{i}.>"], max_msgs=5) for i in range(3)]
    inputs = prepare_pass(specs, lives)
    requests = inputs.sample_requests()
    plan = inputs.plan()  # no samples read: a possible loss, so blocked
    assert sorted(requests) == ["s0", "s1", "s2"]
    assert [s.action for s in plan.streams] == [Action.BLOCKED] * 3
    assert {n for i, n in calls.items() if any(i == id(x.config) for x in lives)} == {1}
    assert len([i for i in calls if any(i == id(x.config) for x in lives)]) == len(lives)


@pytest.mark.parametrize(("a", "b", "same"), [
    ({"name": "s", "max_msgs": 1}, {"name": "s", "max_msgs": 1}, True),
    # STREAM.INFO adds the server's own metadata, STREAM.LIST does not
    ({"name": "s", "metadata": {"_nats.req.level": "0"}},
     {"name": "s", "metadata": {"_nats.req.level": "0", "_nats.ver": "2.15.1"}}, True),
    ({"name": "s"}, {"name": "s", "metadata": {"_nats.ver": "2.15.1"}}, True),
    ({"name": "s", "metadata": {OWNER_KEY: "a"}}, {"name": "s", "metadata": {OWNER_KEY: "b"}},
     False),
    ({"name": "s", "metadata": {"team": "x"}}, {"name": "s"}, False),
    ({"name": "s", "max_msgs": 1}, {"name": "s", "max_msgs": 2}, False),
])
def test_same_as_read_ignores_only_the_servers_own_metadata(
    a: dict[str, Any], b: dict[str, Any], same: bool
) -> None:
    assert same_as_read(a, b) is same and same_as_read(b, a) is same
    if same:  # what it says alike, the canonical form says alike
        assert canonical(a) == canonical(b)
