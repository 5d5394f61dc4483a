"""Fights end by themselves: the conflict tracker with a fake clock, no sleeps."""

from __future__ import annotations

from reconciler.conflicts import Conflicts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fight(window: float = 60.0) -> tuple[Conflicts, Clock]:
    clock = Clock()
    return Conflicts(window, clock), clock


def test_three_changes_back_by_one_client_within_a_window_pause_healing() -> None:
    conflicts, clock = fight()
    assert conflicts.healed("events", "bot", ["max_msgs"]) is None
    clock.now += 10
    assert conflicts.healed("events", "bot", ["max_msgs"]) is None
    clock.now += 10
    conflict = conflicts.healed("events", "bot", ["max_age"])
    assert conflict is not None
    assert (conflict.actor, conflict.fields, conflict.count, conflict.pause_s) == (
        "bot", ("max_age",), 3, 30.0)
    assert conflicts.holds() == {"events": (
        "conflict over stream events (max_age) with bot, changed back 3 times: healing "
        "paused for 30s more")}
    assert conflicts.next_resume() == clock.now + 30


def test_changes_spread_wider_than_the_window_or_by_several_clients_are_no_fight() -> None:
    conflicts, clock = fight()
    for _ in range(5):
        assert conflicts.healed("events", "bot", ["max_msgs"]) is None
        clock.now += 31
    for actor in ("a", "b", "c"):
        assert conflicts.healed("other", actor, ["max_msgs"]) is None
    assert conflicts.active() == () and conflicts.holds() == {}


def test_the_pause_doubles_while_the_other_side_goes_on_up_to_ten_windows() -> None:
    conflicts, clock = fight()
    for _ in range(3):
        conflict = conflicts.healed("events", "bot", ["max_msgs"])
    pauses = []
    updates = 3
    while clock.now < 1000 + 3600:
        assert conflict is not None
        clock.now = conflict.paused_until  # the pause ends: we heal once
        assert conflicts.holds() == {}
        assert conflicts.healed("events", "bot", ["max_msgs"]) is None
        clock.now += 0.01  # the other side changes it back at once, we heal again
        conflict = conflicts.healed("events", "bot", ["max_msgs"])
        updates += 2
        pauses.append(conflict.pause_s if conflict else None)
    assert pauses[:6] == [60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    assert updates / 60 <= 6  # an hour of fighting: a handful of updates per hour


def test_healing_resumes_for_good_when_the_other_side_stops() -> None:
    conflicts, clock = fight()
    for _ in range(3):
        conflict = conflicts.healed("events", "bot", ["max_msgs"])
    assert conflict is not None
    clock.now = conflict.paused_until
    assert conflicts.healed("events", "bot", ["max_msgs"]) is None  # the resuming heal
    assert conflicts.active() != ()
    assert "healing resumed" in conflicts.active()[0].reason(clock.now)
    clock.now += 60
    assert conflicts.active() == () and conflicts.holds() == {}
    # a later change is a fresh start, not a continued fight
    assert conflicts.healed("events", "bot", ["max_msgs"]) is None


def test_a_window_of_zero_turns_detection_off() -> None:
    conflicts, _ = fight(window=0)
    assert all(conflicts.healed("events", "bot", ["x"]) is None for _ in range(10))
