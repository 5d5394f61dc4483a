"""Predicted data loss against what the real server then discards, on file and memory storage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reconciler.apply import apply_plan
from reconciler.model import Action, Impact, Policy, StreamSpec
from reconciler.plan import canonical
from reconciler.reconcile import compute_plan
from reconciler.testing import TestClient

SEED = ["events.page_loaded", "events.mouse_clicked", "events.mouse_clicked",
        "events.page_loaded", "events.mouse_clicked", "events.input_focused"]
MS = 1_000_000



def events(storage: str, **config: Any) -> StreamSpec:
    body = {"name": "events", "subjects": ["events.*"], "storage": storage, **config}
    return StreamSpec("events", body, Policy(allow_data_loss=True))


async def seed(js: TestClient, storage: str, subjects: list[str] = SEED,
               **config: Any) -> None:
    await js.create_stream(canonical(events(storage, **config).config))
    for subject in subjects:
        await js.publish(subject, b"")


async def change(js: TestClient, spec: StreamSpec) -> tuple[Impact | None, int, int]:
    """Plan and apply `spec`; the predicted impact and the messages/bytes actually lost."""
    before = await js.stream_info("events")
    assert before is not None
    plan = await compute_plan(js, [spec])
    (stream,) = plan.streams
    assert stream.action is Action.UPDATE, stream
    outcomes = await apply_plan(js, plan)
    assert outcomes[0].error is None, outcomes[0].error
    after = await js.stream_info("events")
    assert after is not None
    return (stream.impact, before.state.messages - after.state.messages,
            before.state.bytes - after.state.bytes)


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_seed_walkthrough_predictions_match_the_server(js: Any, storage: str) -> None:
    await seed(js, storage)
    info = await js.stream_info("events")
    assert info.state.messages == 6
    if storage == "file":
        assert info.state.bytes == 296

    impact, lost, _ = await change(js, events(storage, max_msgs=10))
    assert lost == 0 and impact is None

    for subject in SEED:  # six more: the stream keeps the newest ten
        await js.publish(subject, b"")
    impact, lost_msgs, lost_bytes = await change(js, events(storage, max_msgs=10, max_bytes=300))
    assert impact is not None
    assert (impact.messages, impact.bytes) == (lost_msgs, lost_bytes)
    expected = {"file": (4, 198), "memory": (2, 70)}[storage]
    assert (lost_msgs, lost_bytes) == expected


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_per_subject_then_count_then_bytes(js: Any, storage: str) -> None:
    subjects = [f"events.s{i % 3}" for i in range(30)]
    await seed(js, storage, subjects)
    spec = events(storage, max_msgs_per_subject=6, max_msgs=14, max_bytes=25 * 40)
    impact, lost_msgs, lost_bytes = await change(js, spec)
    assert impact is not None and impact.exact
    assert (impact.messages, impact.bytes) == (lost_msgs, lost_bytes)
    assert lost_msgs > 0


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_discard_new_keeps_everything_until_it_flips(js: Any, storage: str) -> None:
    await seed(js, storage, discard="new")
    impact, lost, _ = await change(js, events(storage, discard="new", max_msgs=2))
    assert lost == 0
    assert impact is None
    impact, lost_msgs, lost_bytes = await change(js, events(storage, discard="old", max_msgs=2))
    assert impact is not None
    assert (impact.messages, impact.bytes) == (lost_msgs, lost_bytes) and lost_msgs == 4


async def test_headers_count_in_the_predicted_bytes(js: Any) -> None:
    await seed(js, "file", [])
    for i in range(8):
        await js.publish("events.h", b"x" * i, headers={"Trace": "abc" * i})
    impact, lost_msgs, lost_bytes = await change(js, events("file", max_msgs=3))
    assert impact is not None
    assert (impact.messages, impact.bytes) == (lost_msgs, lost_bytes) == (5, lost_bytes)


async def test_max_age_prediction_matches_expiry(js: Any) -> None:
    await seed(js, "file")
    await asyncio.sleep(0.25)  # the messages must be older than the new max_age
    spec = events("file", max_age=100 * MS)
    plan = await compute_plan(js, [spec])
    assert plan.streams[0].impact == Impact(6, 296, True, ("max_age",))
    await apply_plan(js, plan)
    for _ in range(100):  # expiry runs on the server's age timer, right after the update
        info = await js.stream_info("events")
        if info.state.messages == 0:
            break
        await asyncio.sleep(0.02)
    assert info.state.messages == 0 and info.state.bytes == 0


async def test_retention_to_interest_without_consumers_empties_the_stream(js: Any) -> None:
    await seed(js, "file")
    impact, lost_msgs, lost_bytes = await change(js, events("file", retention="interest"))
    assert impact == Impact(6, 296, True, ("retention",))
    assert (lost_msgs, lost_bytes) == (6, 296)


async def test_data_loss_is_blocked_without_consent(js: Any) -> None:
    await seed(js, "file")
    spec = StreamSpec("events", events("file", max_msgs=2).config, Policy())
    plan = await compute_plan(js, [spec])
    assert plan.streams[0].action is Action.BLOCKED
    await apply_plan(js, plan)
    info = await js.stream_info("events")
    assert info.state.messages == 6
    assert info.config["max_msgs"] == -1
