"""The facts of /work/shared/JETSTREAM.md that the planner relies on, pinned against the real
nats-server with raw JSON API requests (no reconciler code, no nats-py JetStream layer).

When nats-server moves, a failure here says which assumption of the planner broke.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from reconciler.testing import NatsServer

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
SEED = ["page_loaded", "mouse_clicked", "mouse_clicked", "page_loaded", "mouse_clicked",
        "input_focused"]  # fmt: skip


class Api:
    """Raw `$JS.API.*` requests on a plain nats-py connection."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc

    async def __call__(self, api: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else b""
        reply = await self.nc.request(f"$JS.API.{api}", data, timeout=5)
        decoded: dict[str, Any] = json.loads(reply.data)
        return decoded

    async def ok(self, api: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self(api, body)
        assert "error" not in response, response["error"]
        return response

    async def error(self, api: str, body: dict[str, Any] | None = None) -> tuple[int, int, str]:
        response = await self(api, body)
        assert "error" in response, f"expected an error, got {response}"
        e = response["error"]
        return e["code"], e["err_code"], e["description"]

    async def config(self, name: str) -> dict[str, Any]:
        info = await self.ok(f"STREAM.INFO.{name}")
        config: dict[str, Any] = info["config"]
        return config

    async def publish(
        self, subject: str, payload: bytes = b"", headers: dict[str, str] | None = None
    ) -> int:
        reply = await self.nc.request(subject, payload, timeout=5, headers=headers)
        ack = json.loads(reply.data)
        assert "error" not in ack, ack
        return int(ack["seq"])

    async def seed(self, storage: str = "file", **config: Any) -> dict[str, Any]:
        """The seed scenario: the `events` stream with six empty `events.*` messages."""
        body = {"name": "events", "subjects": ["events.*"], "storage": storage, **config}
        await self.ok("STREAM.CREATE.events", body)
        for name in SEED:
            await self.publish(f"events.{name}")
        state: dict[str, Any] = (await self.ok("STREAM.INFO.events"))["state"]
        return state


@pytest.fixture
async def api(nats_server: NatsServer) -> AsyncIterator[Api]:
    nc = await nats.connect(nats_server.url)
    try:
        yield Api(nc)
    finally:
        await nc.close()


LIMITS = ("max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size", "max_consumers")


# --- defaults the server fills in ----------------------------------------------------------


async def test_zero_and_below_minus_one_limits_become_minus_one(api: Api) -> None:
    zero = await api.ok("STREAM.CREATE.z", {"name": "z", "num_replicas": 0,
                                            **dict.fromkeys(LIMITS, 0)})  # fmt: skip
    low = await api.ok("STREAM.CREATE.l", {"name": "l", **dict.fromkeys(LIMITS, -5)})
    for response in (zero, low):
        assert {k: response["config"][k] for k in LIMITS} == dict.fromkeys(LIMITS, -1)
    assert zero["config"]["num_replicas"] == 1


async def test_missing_fields_get_defaults(api: Api) -> None:
    config = (await api.ok("STREAM.CREATE.d", {"name": "d"}))["config"]
    assert config["subjects"] == ["d"]
    assert config["storage"] == "file"
    assert config["retention"] == "limits"
    assert config["discard"] == "old"
    assert config["duplicate_window"] == 2 * MINUTE
    assert config["max_age"] == 0
    assert config["num_replicas"] == 1
    assert "description" not in config
    assert "persist_mode" not in config  # absent means "default"
    # omitted booleans come back false
    assert (config["sealed"], config["deny_delete"], config["allow_rollup_hdrs"]) == (
        False, False, False
    )  # fmt: skip


async def test_duplicate_window_defaults_to_the_smaller_of_2m_and_max_age(api: Api) -> None:
    short = await api.ok("STREAM.CREATE.s", {"name": "s", "max_age": MINUTE})
    assert short["config"]["duplicate_window"] == MINUTE
    long = await api.ok("STREAM.CREATE.l", {"name": "l", "max_age": 60 * MINUTE})
    assert long["config"]["duplicate_window"] == 2 * MINUTE


async def test_mirrors_get_neither_subjects_nor_a_duplicate_window(api: Api) -> None:
    await api.ok("STREAM.CREATE.origin", {"name": "origin"})
    mirror = await api.ok("STREAM.CREATE.m", {"name": "m", "mirror": {"name": "origin"}})
    config = mirror["config"]
    assert "subjects" not in config
    assert "duplicate_window" not in config


async def test_forced_fields(api: Api) -> None:
    # subject_delete_marker_ttl forces message TTLs and rollups on
    markers = await api.ok("STREAM.CREATE.m", {"name": "m", "subject_delete_marker_ttl": SECOND})
    config = markers["config"]
    assert (config["allow_msg_ttl"], config["allow_rollup_hdrs"]) == (True, True)
    # message schedules force rollups
    config = (await api.ok("STREAM.CREATE.s", {"name": "s", "allow_msg_schedules": True}))["config"]
    assert config["allow_rollup_hdrs"] is True
    # sealing (only by update) forces discard new, deny_delete, deny_purge
    await api.ok("STREAM.CREATE.x", {"name": "x", "discard": "old"})
    config = (await api.ok("STREAM.UPDATE.x", {"name": "x", "sealed": True}))["config"]
    assert (config["discard"], config["deny_delete"], config["deny_purge"]) == ("new", True, True)


async def test_a_stream_cannot_be_created_sealed(api: Api) -> None:
    assert await api.error("STREAM.CREATE.x", {"name": "x", "sealed": True}) == (
        500, 10052, "stream configuration for create can not be sealed"
    )  # fmt: skip


async def test_server_metadata_keys(api: Api) -> None:
    body = {"name": "m", "metadata": {"owner": "team-a", "_nats.ver": "9.9.9"}}
    created = (await api.ok("STREAM.CREATE.m", body))["config"]["metadata"]
    assert created["owner"] == "team-a"
    assert {"_nats.ver", "_nats.level", "_nats.req.level"} <= created.keys()
    assert created["_nats.ver"] != "9.9.9"  # a user value for a _nats.* key is overwritten
    info = (await api.config("m"))["metadata"]
    assert {"_nats.ver", "_nats.level", "_nats.req.level"} <= info.keys()
    listed = (await api.ok("STREAM.LIST", {}))["streams"][0]["config"]["metadata"]
    assert listed == {"owner": "team-a", "_nats.req.level": "0"}  # LIST omits ver and level


async def test_create_identical_succeeds_different_is_10058(api: Api) -> None:
    body = {"name": "c", "subjects": ["c.>"], "max_msgs": 10}
    await api.ok("STREAM.CREATE.c", body)
    again = await api.ok("STREAM.CREATE.c", body)
    assert again["did_create"] is True  # on a single server, even when it existed
    assert await api.error("STREAM.CREATE.c", {**body, "max_msgs": 11}) == (
        400, 10058, "stream name already in use with a different configuration"
    )  # fmt: skip


async def test_invalid_requests_are_10025(api: Api) -> None:
    code, err, text = await api.error("STREAM.CREATE.u", {"name": "u", "bogus": 1})
    assert (code, err) == (400, 10025) and "unknown field" in text
    code, err, _ = await api.error("STREAM.CREATE.u", {"name": "u", "storage": "disk"})
    assert (code, err) == (400, 10025)


# --- pedantic ------------------------------------------------------------------------------


async def test_pedantic_rejects_what_the_server_would_adjust(api: Api) -> None:
    assert await api.error("STREAM.CREATE.p", {"name": "p", "max_msgs": -5, "pedantic": True}) == (
        400, 10157, "pedantic mode: max_msgs must be set to -1"
    )  # fmt: skip
    # a max_age under 2m without a duplicate_window: the window would be lowered to max_age
    body = {"name": "p", "max_age": MINUTE, "pedantic": True}
    assert await api.error("STREAM.CREATE.p", body) == (
        400, 10157, "pedantic mode: duplicate window cannot be bigger than max age"
    )  # fmt: skip
    # 0 for a limit is not an adjustment: it is accepted and comes back as -1
    ok = await api.ok("STREAM.CREATE.p", {"name": "p", "max_msgs": 0, "pedantic": True})
    assert ok["config"]["max_msgs"] == -1


async def test_pedantic_forced_flags_must_be_written_out(api: Api) -> None:
    # not 10157: with pedantic, the flags a field would force on are plain 10052 errors
    body: dict[str, Any] = {"name": "p", "subject_delete_marker_ttl": SECOND, "pedantic": True}
    assert await api.error("STREAM.CREATE.p", body) == (
        500, 10052, "subject delete marker cannot be set if message TTLs are disabled"
    )  # fmt: skip
    body["allow_msg_ttl"] = True
    assert await api.error("STREAM.CREATE.p", body) == (
        500, 10052, "subject delete marker cannot be set if roll-ups are disabled"
    )  # fmt: skip
    body["allow_rollup_hdrs"] = True
    await api.ok("STREAM.CREATE.p", body)
    body = {"name": "q", "allow_msg_schedules": True, "pedantic": True}
    assert await api.error("STREAM.CREATE.q", body) == (
        500, 10052, "message scheduling cannot be set if roll-ups are disabled"
    )  # fmt: skip
    # sealing still forces its fields, pedantic or not
    await api.ok("STREAM.CREATE.x", {"name": "x"})
    sealed = await api.ok("STREAM.UPDATE.x", {"name": "x", "sealed": True, "pedantic": True})
    assert (sealed["config"]["discard"], sealed["config"]["deny_purge"]) == ("new", True)


# --- what an update may change -------------------------------------------------------------


async def test_an_update_replaces_the_whole_config(api: Api) -> None:
    body = {"name": "r", "subjects": ["r.>"], "description": "kept?", "max_age": 60 * MINUTE}
    await api.ok("STREAM.CREATE.r", body)
    config = (await api.ok("STREAM.UPDATE.r", {"name": "r", "max_msgs": 10}))["config"]
    assert config["max_msgs"] == 10
    assert "description" not in config
    assert config["subjects"] == ["r"]
    assert config["max_age"] == 0


async def test_max_age_below_duplicate_window_is_10052(api: Api) -> None:
    body = {"name": "d", "max_age": MINUTE, "duplicate_window": 2 * MINUTE}
    expected = (500, 10052, "duplicates window can not be larger then max age")
    assert await api.error("STREAM.CREATE.d", body) == expected
    await api.ok("STREAM.CREATE.d", {"name": "d"})
    assert await api.error("STREAM.UPDATE.d", body) == expected
    assert await api.error("STREAM.UPDATE.d", {**body, "pedantic": True}) == expected
    # lowering both together is fine
    both = {"name": "d", "max_age": MINUTE, "duplicate_window": MINUTE, "pedantic": True}
    await api.ok("STREAM.UPDATE.d", both)


async def test_limits_on_values(api: Api) -> None:
    assert await api.error("STREAM.CREATE.a", {"name": "a", "max_age": 50_000_000}) == (
        500, 10052, "max age needs to be >= 100ms"
    )  # fmt: skip
    await api.ok("STREAM.CREATE.a", {"name": "a"})
    body = {"name": "a", "subject_delete_marker_ttl": SECOND // 2, "allow_msg_ttl": True}
    assert await api.error("STREAM.UPDATE.a", body) == (
        500, 10052, "subject delete marker TTL must be at least 1 second"
    )  # fmt: skip
    assert await api.error("STREAM.UPDATE.a", {"name": "a", "num_replicas": 3}) == (
        500, 10074, "replicas > 1 not supported in non-clustered mode"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after", "description"),
    [
        ({"storage": "file"}, {"storage": "memory"},
         "stream configuration update can not change storage type"),
        ({"retention": "limits"}, {"retention": "workqueue"},
         "stream configuration update can not change retention policy to/from workqueue"),
        ({"retention": "workqueue"}, {"retention": "limits"},
         "stream configuration update can not change retention policy to/from workqueue"),
        ({}, {"allow_msg_counter": True},
         "stream configuration update can not change message counter setting"),
        ({"allow_msg_counter": True}, {},
         "stream configuration update can not change message counter setting"),
        ({}, {"persist_mode": "async"},
         "stream configuration update can not change persist mode"),
    ],
)  # fmt: skip
async def test_immutable_fields_are_10052(
    api: Api, before: dict[str, Any], after: dict[str, Any], description: str
) -> None:
    await api.ok("STREAM.CREATE.i", {"name": "i", **before})
    assert await api.error("STREAM.UPDATE.i", {"name": "i", **after}) == (500, 10052, description)


async def test_retention_limits_to_interest_is_allowed(api: Api) -> None:
    await api.ok("STREAM.CREATE.i", {"name": "i"})
    config = (await api.ok("STREAM.UPDATE.i", {"name": "i", "retention": "interest"}))["config"]
    assert config["retention"] == "interest"


async def test_name_and_mirror_cannot_change(api: Api) -> None:
    await api.ok("STREAM.CREATE.a", {"name": "a"})
    await api.ok("STREAM.CREATE.b", {"name": "b"})
    assert await api.error("STREAM.UPDATE.a", {"name": "b"}) == (
        400, 10056, "stream name in subject does not match request"
    )  # fmt: skip
    assert await api.error("STREAM.UPDATE.a", {"name": "a", "mirror": {"name": "b"}}) == (
        400, 10055, "stream mirror configuration can not be updated"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "description"),
    [
        ("deny_delete", "stream configuration update can not cancel deny message deletes"),
        ("deny_purge", "stream configuration update can not cancel deny purge"),
        ("allow_msg_ttl", "message TTL status can not be disabled"),
        ("allow_msg_schedules", "message schedules can not be disabled"),
        ("sealed", "stream configuration update can not unseal a sealed stream"),
    ],
)
async def test_one_way_flags_cannot_be_reversed(api: Api, flag: str, description: str) -> None:
    await api.ok("STREAM.CREATE.f", {"name": "f"})
    on = await api.ok("STREAM.UPDATE.f", {**await api.config("f"), flag: True})
    assert on["config"][flag] is True
    off = {**on["config"], flag: False}
    assert await api.error("STREAM.UPDATE.f", off) == (500, 10052, description)


async def test_overlapping_subjects_are_10065(api: Api) -> None:
    await api.ok("STREAM.CREATE.a", {"name": "a", "subjects": ["events.>"]})
    await api.ok("STREAM.CREATE.b", {"name": "b", "subjects": ["other.>"]})
    expected = (400, 10065, "subjects overlap with an existing stream")
    assert await api.error("STREAM.CREATE.c", {"name": "c", "subjects": ["events.x"]}) == expected
    assert await api.error("STREAM.UPDATE.b", {"name": "b", "subjects": ["events.*"]}) == expected


async def test_missing_stream_is_10059(api: Api) -> None:
    assert await api.error("STREAM.INFO.nope") == (404, 10059, "stream not found")
    assert await api.error("STREAM.UPDATE.nope", {"name": "nope"}) == (
        404, 10059, "stream not found"
    )  # fmt: skip


# --- what a change does to data ------------------------------------------------------------


def file_size(subject: str, payload: int, headers: int = 0) -> int:
    return 22 + len(subject) + payload + 8 + (4 + headers if headers else 0)


def memory_size(subject: str, payload: int, headers: int = 0) -> int:
    return len(subject) + headers + payload + 16


@pytest.mark.parametrize("storage", ["file", "memory"])
@pytest.mark.parametrize(
    ("subject", "payload", "headers"),
    [
        ("a", b"", None),
        ("events.page_loaded", b"", None),
        ("abc", b"x" * 100, None),
        ("abc", b"", {"k": "v"}),
        ("abcd", b"x" * 10, {"key": "value"}),
    ],
)
async def test_stored_size_of_a_message(
    api: Api, storage: str, subject: str, payload: bytes, headers: dict[str, str] | None
) -> None:
    await api.ok("STREAM.CREATE.z", {"name": "z", "subjects": [subject], "storage": storage})
    await api.publish(subject, payload, headers)
    message = (await api.ok("STREAM.MSG.GET.z", {"seq": 1}))["message"]
    hdrs = len(base64.b64decode(message.get("hdrs", "")))
    if headers:  # the NATS/1.0 header block as the publisher sent it
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        assert hdrs == len(f"NATS/1.0\r\n{lines}\r\n")
    else:
        assert hdrs == 0
    size = (file_size if storage == "file" else memory_size)(subject, len(payload), hdrs)
    assert (await api.ok("STREAM.INFO.z"))["state"]["bytes"] == size


async def test_the_seed_takes_296_bytes_on_file(api: Api) -> None:
    state = await api.seed("file")
    assert (state["messages"], state["bytes"]) == (6, 296)
    assert sum(file_size(f"events.{s}", 0) for s in SEED) == 296


async def test_shrinking_max_msgs_with_discard_old_drops_the_oldest_in_the_update(
    api: Api,
) -> None:
    await api.seed("file", discard="old")
    body = {"name": "events", "subjects": ["events.*"], "discard": "old", "max_msgs": 2}
    state = (await api.ok("STREAM.UPDATE.events", body))["state"]
    assert (state["messages"], state["first_seq"], state["bytes"]) == (2, 5, 100)


async def test_shrinking_max_bytes_with_discard_old_drops_the_oldest_in_the_update(
    api: Api,
) -> None:
    await api.seed("file", discard="old")
    body = {"name": "events", "subjects": ["events.*"], "max_bytes": 150}
    state = (await api.ok("STREAM.UPDATE.events", body))["state"]
    # from the newest: 50 (input_focused) + 50 (mouse_clicked) + 48 (page_loaded) = 148
    assert (state["messages"], state["first_seq"], state["bytes"]) == (3, 4, 148)


async def test_with_discard_new_shrinking_limits_drops_nothing_until_discard_flips(
    api: Api,
) -> None:
    await api.seed("file", discard="new")
    base = {"name": "events", "subjects": ["events.*"], "discard": "new"}
    state = (await api.ok("STREAM.UPDATE.events", {**base, "max_msgs": 2}))["state"]
    assert (state["messages"], state["bytes"]) == (6, 296)
    state = (await api.ok("STREAM.UPDATE.events", {**base, "max_bytes": 100}))["state"]
    assert (state["messages"], state["bytes"]) == (6, 296)
    flipped = {**base, "discard": "old", "max_msgs": 2}
    state = (await api.ok("STREAM.UPDATE.events", flipped))["state"]
    assert (state["messages"], state["first_seq"]) == (2, 5)


@pytest.mark.parametrize("discard", ["old", "new"])
async def test_max_msgs_per_subject_drops_whatever_discard_says(api: Api, discard: str) -> None:
    await api.seed("file", discard=discard)
    body = {"name": "events", "subjects": ["events.*"], "discard": discard,
            "max_msgs_per_subject": 1}  # fmt: skip
    state = (await api.ok("STREAM.UPDATE.events", body))["state"]
    # the newest of each subject stays: page_loaded 4, mouse_clicked 5, input_focused 6
    assert (state["messages"], state["first_seq"], state["bytes"]) == (3, 4, 148)


async def test_per_subject_counts_from_stream_info(api: Api) -> None:
    await api.seed("memory")
    info = await api.ok("STREAM.INFO.events", {"subjects_filter": ">"})
    assert info["state"]["subjects"] == {
        "events.page_loaded": 2, "events.mouse_clicked": 3, "events.input_focused": 1
    }  # fmt: skip
    assert info["total"] == 3


async def test_msg_get_next_by_subject_skips_gaps(api: Api) -> None:
    await api.seed("memory")
    await api.ok("STREAM.MSG.DELETE.events", {"seq": 2})
    got = (await api.ok("STREAM.MSG.GET.events", {"seq": 2, "next_by_subj": ">"}))["message"]
    assert (got["seq"], got["subject"]) == (3, "events.mouse_clicked")
    assert await api.error("STREAM.MSG.GET.events", {"seq": 7, "next_by_subj": ">"}) == (
        404, 10037, "no message found"
    )  # fmt: skip


async def test_limits_to_interest_without_consumers_deletes_every_message(api: Api) -> None:
    await api.seed("file")
    body = {"name": "events", "subjects": ["events.*"], "retention": "interest"}
    state = (await api.ok("STREAM.UPDATE.events", body))["state"]
    assert state["messages"] == 0


async def test_removing_a_subject_keeps_its_messages(api: Api) -> None:
    await api.seed("file")
    body = {"name": "events", "subjects": ["other.*"]}
    state = (await api.ok("STREAM.UPDATE.events", body))["state"]
    assert (state["messages"], state["bytes"]) == (6, 296)


# --- what a change does to data: order of enforcement, ages, restarts ------------------------


def state_of(response: dict[str, Any]) -> tuple[int, int, int]:
    state = response["state"]
    return state["messages"], state["first_seq"], state["bytes"]


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_max_msgs_is_enforced_before_the_per_subject_limit(api: Api, storage: str) -> None:
    base = {"name": "r", "subjects": ["r.*"], "storage": storage}
    await api.ok("STREAM.CREATE.r", base)
    for subject in ("r.a", "r.b", "r.b"):
        await api.publish(subject)
    # max_msgs first drops r.a (1); the per-subject limit then drops the older r.b (2).
    # The other order would drop only seq 2 and leave two messages within max_msgs.
    body = {**base, "max_msgs": 2, "max_msgs_per_subject": 1}
    assert state_of(await api.ok("STREAM.UPDATE.r", body))[:2] == (1, 3)


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_max_bytes_is_enforced_before_the_per_subject_limit(api: Api, storage: str) -> None:
    base = {"name": "r", "subjects": ["r.*"], "storage": storage}
    await api.ok("STREAM.CREATE.r", base)
    for subject in ("r.a", "r.b", "r.b"):
        await api.publish(subject, b"x" * 100)
    size = (file_size if storage == "file" else memory_size)("r.a", 100)
    body = {**base, "max_bytes": 2 * size, "max_msgs_per_subject": 1}
    assert state_of(await api.ok("STREAM.UPDATE.r", body)) == (1, 3, size)


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_the_per_subject_limit_is_enforced_before_max_age(api: Api, storage: str) -> None:
    """Age expiry runs within the update, after every other limit: a message of a subject
    over its new per-subject limit goes for that reason, and age then takes what is old."""
    base = {"name": "r", "subjects": ["r.*"], "storage": storage}
    await api.ok("STREAM.CREATE.r", base)
    for subject in ("r.a", "r.b"):
        await api.publish(subject)
    await asyncio.sleep(1.2)  # the first two are older than the new max_age, the rest are not
    for subject in ("r.a", "r.a", "r.c"):
        await api.publish(subject)
    body = {**base, "max_age": SECOND // 2, "duplicate_window": SECOND // 2,
            "max_msgs_per_subject": 1}  # fmt: skip
    # per subject: seq 1 and 3 (r.a keeps 4); age: seq 2; r.a's 4 and r.c's 5 stay
    assert state_of(await api.ok("STREAM.UPDATE.r", body))[:2] == (2, 4)


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_max_age_expires_old_messages_within_the_update(api: Api, storage: str) -> None:
    base = {"name": "r", "subjects": ["r.*"], "storage": storage}
    await api.ok("STREAM.CREATE.r", base)
    await api.publish("r.a")
    await asyncio.sleep(1.2)
    await api.publish("r.b")
    body = {**base, "max_age": SECOND // 2, "duplicate_window": SECOND // 2}
    assert state_of(await api.ok("STREAM.UPDATE.r", body))[:2] == (1, 2)


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_age_expiry_writes_a_delete_marker_for_each_subject_it_empties(
    api: Api, storage: str
) -> None:
    """With subject_delete_marker_ttl, the last message of a subject that expires is replaced
    by a marker (a new message with headers, counted in the stream's messages and bytes)."""
    base = {"name": "r", "subjects": ["r.*"], "storage": storage, "allow_msg_ttl": True,
            "allow_rollup_hdrs": True, "subject_delete_marker_ttl": 60 * MINUTE}  # fmt: skip
    await api.ok("STREAM.CREATE.r", base)
    for subject in ("r.a", "r.b", "r.b"):
        await api.publish(subject)
    await asyncio.sleep(1.2)
    await api.publish("r.a")
    body = {**base, "max_age": SECOND, "duplicate_window": SECOND}
    messages, first, size = state_of(await api.ok("STREAM.UPDATE.r", body))
    # r.a keeps 4; r.b loses both (2, 3) and gets one marker (5); seq 1 goes without one
    assert (messages, first) == (2, 4)
    marker = (await api.ok("STREAM.MSG.GET.r", {"seq": 5}))["message"]
    assert marker["subject"] == "r.b"
    headers = (b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 1h0m0s\r\n"
               b"Nats-Rollup: sub\r\n\r\n")
    assert base64.b64decode(marker["hdrs"]) == headers
    stored = file_size if storage == "file" else memory_size
    assert size == stored("r.a", 0) + stored("r.b", 0, len(headers))


async def restarted(server: NatsServer, api: Api) -> Api:
    await api.nc.close()
    server.restart()
    return Api(await nats.connect(server.url))


async def test_raising_first_seq_keeps_messages_until_a_restart_then_purges_all(
    nats_server: NatsServer, api: Api
) -> None:
    """first_seq on update is stored without effect, but a file stream that restarts with
    its first message below first_seq is purged whole (filestore recovery)."""
    base = {"name": "r", "subjects": ["r.*"], "storage": "file"}
    await api.ok("STREAM.CREATE.r", base)
    for _ in range(10):
        await api.publish("r.a")
    updated = await api.ok("STREAM.UPDATE.r", {**base, "first_seq": 1000})
    assert state_of(updated)[:2] == (10, 1)
    assert updated["config"]["first_seq"] == 1000
    api = await restarted(nats_server, api)
    try:
        state = (await api.ok("STREAM.INFO.r"))["state"]
        assert (state["messages"], state["first_seq"]) == (0, 1000)
    finally:
        await api.nc.close()


async def test_first_seq_at_or_below_the_first_message_loses_nothing_at_restart(
    nats_server: NatsServer, api: Api
) -> None:
    base = {"name": "r", "subjects": ["r.*"], "storage": "file"}
    await api.ok("STREAM.CREATE.r", base)
    for _ in range(10):
        await api.publish("r.a")
    # max_msgs leaves 6..10: a first_seq of 6 is below no message, 7 is above one
    assert state_of(await api.ok("STREAM.UPDATE.r", {**base, "max_msgs": 5, "first_seq": 6}))[
        :2] == (5, 6)  # fmt: skip
    api = await restarted(nats_server, api)
    try:
        assert state_of(await api.ok("STREAM.INFO.r"))[:2] == (5, 6)
        await api.ok("STREAM.UPDATE.r", {**base, "max_msgs": 5, "first_seq": 7})
    finally:
        await api.nc.close()
    api = await restarted(nats_server, api)
    try:
        assert state_of(await api.ok("STREAM.INFO.r"))[:2] == (0, 11)
    finally:
        await api.nc.close()


async def test_first_seq_does_nothing_to_a_memory_stream(api: Api) -> None:
    """A memory stream keeps no messages across a restart anyway; the update keeps them."""
    base = {"name": "r", "subjects": ["r.*"], "storage": "memory"}
    await api.ok("STREAM.CREATE.r", base)
    for _ in range(3):
        await api.publish("r.a")
    assert state_of(await api.ok("STREAM.UPDATE.r", {**base, "first_seq": 1000}))[:2] == (3, 1)
