"""The rule for manifest files being written (`reconciler.settle`): pure tables, and the
bookkeeping of what was seen when, on a fake clock. The daemon end to end with slow writers
is in test_watch_writers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.manifest import load_or_raise
from reconciler.model import Action, Impact, LiveStream, Policy, StreamPlan, StreamSpec
from reconciler.plan import plan_stream
from reconciler.settle import Files, Snapshot, mentions, review, snapshot

NS = 1_000_000_000


def spec(config: dict[str, Any], ignore: tuple[str, ...] = ()) -> StreamSpec:
    return StreamSpec("events", {"name": "events", **config}, Policy(ignore_fields=ignore))


def live(config: dict[str, Any]) -> LiveStream:
    return LiveStream("events", {"name": "events", **config})


def reasons_for(new: StreamSpec, before: StreamSpec | None, current: LiveStream,
                **flags: bool) -> tuple[str, ...]:
    plan = plan_stream(new, current, allow_data_loss=True)
    baseline = {} if before is None else {"events": before}
    return review([plan], {"events": new}, baseline,
                  stable=flags.get("stable", True), complete=flags.get("complete", True))


LIMITS = {"subjects": ["events.*"], "max_msgs": 100, "max_age": 7 * 86400 * NS,
          "discard": "new"}


@pytest.mark.parametrize(("new", "before", "expected"), [
    # a value edited, every line still there: at once
    ({**LIMITS, "max_msgs": 200}, LIMITS, ()),
    # a line added: at once
    ({**LIMITS, "max_bytes": 1024}, LIMITS, ()),
    # lines cut off at the end of the file: their fields would go back to the defaults
    ({"subjects": ["events.*"], "max_msgs": 100}, LIMITS,
     ("events: max_age, discard would go back to the server's default "
      "(not written in this version)",)),
    # a line removed whose value was the default anyway: nothing changes on the server
    ({**LIMITS}, {**LIMITS, "retention": "limits"}, ()),
    # an item of a block list cut off
    ({**LIMITS, "subjects": ["events.a"]}, {**LIMITS, "subjects": ["events.a", "events.b"]},
     ("events: subjects would go back to the server's default (not written in this version)",)),
    # the same list, edited whole
    ({**LIMITS, "subjects": ["events.c"]}, {**LIMITS, "subjects": ["events.a"]}, ()),
    # a metadata key cut off
    ({**LIMITS, "metadata": {"a": "1"}}, {**LIMITS, "metadata": {"a": "1", "b": "2"}},
     ("events: metadata.b would go back to the server's default "
      "(not written in this version)",)),
    # no earlier version: every changed field the manifest does not write
    ({"subjects": ["events.*"], "max_msgs": 100}, None,
     ("events: max_age, discard would go back to the server's default "
      "(not written in this version)",)),
    ({**LIMITS, "max_msgs": 200}, None, ()),
])
def test_lines_that_went_missing(new: dict[str, Any], before: dict[str, Any] | None,
                                 expected: tuple[str, ...]) -> None:
    current = live({**(before or LIMITS)})
    assert reasons_for(spec(new), None if before is None else spec(before), current) == expected


def test_a_field_no_longer_ignored_is_a_missing_line() -> None:
    """`reconcile.ignore_fields: [max_msgs]` cut off: max_msgs would be reset."""
    current = live({**LIMITS, "max_msgs": 5000})
    unwritten = {k: v for k, v in LIMITS.items() if k != "max_msgs"}
    before = spec(unwritten, ignore=("max_msgs",))
    assert reasons_for(spec(unwritten), before, current) == (
        "events: max_msgs would go back to the server's default (not written in this version)",)
    assert reasons_for(spec(unwritten, ignore=("max_msgs",)), before, current) == ()


def test_file_flags() -> None:
    current = live(LIMITS)
    same = spec(LIMITS)
    assert reasons_for(same, same, current, stable=False) == (
        "the file changed while it was read",)
    assert reasons_for(same, same, current, complete=False) == (
        "its last line is unfinished (no newline at the end)",)


def plan_of(action: Action, impact: Impact | None) -> StreamPlan:
    return StreamPlan("events", action, (), {"name": "events"}, (), impact)


@pytest.mark.parametrize(("action", "impact", "expected"), [
    (Action.UPDATE, None, ()),
    (Action.UPDATE, Impact(99, 3861, True, ("max_msgs",)),
     ("events: max_msgs would discard 99 messages (3861 bytes)",)),
    (Action.UPDATE, Impact(0, 0, False, ("retention",)),
     ("events: retention may discard stored messages (the number cannot be known in advance)",)),
    # blocked: nothing is applied, so nothing to wait for; a create loses nothing
    (Action.BLOCKED, Impact(99, 3861, True, ("max_msgs",)), ()),
    (Action.CREATE, None, ()),
])
def test_updates_that_discard_wait(action: Action, impact: Impact | None,
                                   expected: tuple[str, ...]) -> None:
    s = spec(LIMITS)
    assert review([plan_of(action, impact)], {"events": s}, {"events": s},
                  stable=True, complete=True) == expected


def test_mentions_lists_every_written_path() -> None:
    s = spec({"subjects": ["a", "b"], "metadata": {"owner": "x"}, "sources": [{"name": "s"}]},
             ignore=("metadata.team",))
    assert mentions(s) == {"name", "subjects", "subjects.0", "subjects.1", "metadata",
                           "metadata.owner", "sources", "sources.0", "sources.0.name",
                           "metadata.team"}


def test_mentions_of_a_loaded_manifest(tmp_path: Path) -> None:
    path = tmp_path / "events.yaml"
    path.write_text("name: events\nsubjects:\n  - a.*\nmax_age: 7d\n")
    assert mentions(load_or_raise([path])[0]) == {"name", "subjects", "subjects.0", "max_age"}


@pytest.mark.parametrize(("text", "complete"), [
    (b"", True), (b"name: events\n", True), (b"name: events\nmax_msgs: 1", False)])
def test_snapshot(tmp_path: Path, text: bytes, complete: bool) -> None:
    path = tmp_path / "events.yaml"
    path.write_bytes(text)
    snap = snapshot(path)
    assert snap is not None and snap.size == len(text) and snap.complete is complete
    assert snapshot(path) == snap
    path.write_bytes(text + b"# more\n")
    assert snapshot(path) != snap
    assert snapshot(tmp_path / "missing.yaml") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_800_000_000.0

    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def snap(digest: str, changed_s: float) -> Snapshot:
    ns = int(changed_s * NS)
    return Snapshot(1, 1, 10, ns, ns, digest, True)


def test_quiet_is_counted_from_the_first_sight_of_each_version() -> None:
    clock = Clock()
    files = Files(2.0, clock=lambda: clock.now, wall=lambda: clock.wall)
    # never seen before: unchanged since its change time, 10 s ago
    files.look({"a.yaml": snap("v1", clock.wall - 10)})
    assert files.quiet_for("a.yaml") == pytest.approx(10.0)
    assert files.settled("a.yaml") and files.due_in("a.yaml") == 0.0
    # a new version, whatever its times say, counts from now
    clock.tick(1)
    v2 = snap("v2", clock.wall - 60)
    files.look({"a.yaml": v2})
    assert files.quiet_for("a.yaml") == 0.0 and files.due_in("a.yaml") == 2.0
    clock.tick(1.5)
    files.look({"a.yaml": v2})
    assert not files.settled("a.yaml") and files.due_in("a.yaml") == pytest.approx(0.5)
    clock.tick(0.5)
    assert files.settled("a.yaml")
    # a file written a moment ago, seen for the first time
    w1 = snap("w1", clock.wall - 0.25)
    files.look({"a.yaml": v2, "b.yaml": w1})
    assert files.quiet_for("b.yaml") == pytest.approx(0.25)
    # gone: forgotten
    files.look({"b.yaml": w1}, forget_others=True)
    assert files.quiet_for("a.yaml") == 0.0


def test_accepted_versions_and_the_baseline_by_stream() -> None:
    files = Files(2.0)
    v1 = snap("v1", 0)
    assert not files.is_accepted("a.yaml", v1) and files.accepted_specs("a.yaml") == ()
    files.accept("a.yaml", v1, [spec(LIMITS)])
    assert files.is_accepted("a.yaml", v1) and not files.is_accepted("a.yaml", snap("v2", 0))
    # an emptied file is accepted, but the stream's last spec is kept
    files.accept("a.yaml", snap("empty", 0), [])
    assert files.accepted_specs("a.yaml") == ()
    assert files.baseline()["events"] == spec(LIMITS)
