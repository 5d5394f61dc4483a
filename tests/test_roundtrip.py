"""Apply, then plan: every field of the stream configuration comes back with no change."""

from __future__ import annotations

from typing import Any

from reconciler import jetstream
from reconciler.model import Action, Policy, Status, StreamSpec
from reconciler.reconcile import compute_plan, reconcile

S = 1_000_000_000

STREAMS: list[dict[str, Any]] = [
    {   # every limit and flag a plain stream can carry
        "name": "everything",
        "description": "all the fields",
        "subjects": ["every.>", "thing.*"],
        "retention": "limits",
        "max_consumers": 10,
        "max_msgs": 1000,
        "max_bytes": 1 << 20,
        "max_age": 3600 * S,
        "max_msgs_per_subject": 5,
        "max_msg_size": 1024,
        "storage": "file",
        "compression": "s2",
        "num_replicas": 1,
        "no_ack": False,
        "discard": "new",
        "discard_new_per_subject": True,
        "duplicate_window": 30 * S + 7,
        "allow_rollup_hdrs": True,
        "allow_direct": True,
        "deny_delete": True,
        "metadata": {"owner": "team-a", "tier": "gold"},
        "republish": {"src": "every.>", "dest": "repub.>", "headers_only": True},
        "subject_transform": {"src": "thing.*", "dest": "thing.{{wildcard(1)}}.x"},
        "consumer_limits": {"inactive_threshold": 10 * S + 1, "max_ack_pending": 100},
        "allow_atomic": True,
        "allow_batched": True,
        "first_seq": 100,
    },
    {   # per-message TTL and delete markers
        "name": "ttl",
        "subjects": ["ttl.>"],
        "allow_msg_ttl": True,
        "allow_msg_schedules": True,
        "subject_delete_marker_ttl": 5 * S,
        "max_age": 60 * S,
    },
    {   # a short max_age with the default duplicate window
        "name": "short",
        "subjects": ["short.>"],
        "storage": "memory",
        "max_age": 100_000_000,
    },
    {"name": "queue", "subjects": ["queue.>"], "retention": "workqueue", "storage": "memory"},
    {"name": "interest", "subjects": ["interest.>"], "retention": "interest", "no_ack": True,
     "deny_purge": True},
    {"name": "counter", "subjects": ["count.>"], "allow_msg_counter": True,
     "persist_mode": "async"},
    {   # sourced from two streams, with a filter and a transform
        "name": "sourced",
        "sources": [
            {"name": "short", "filter_subject": "short.a", "opt_start_seq": 2},
            {"name": "queue", "subject_transforms": [{"src": "queue.>", "dest": "q.>"}]},
        ],
    },
    {   # a mirror with a start time to the nanosecond
        "name": "mirror",
        "mirror": {"name": "everything",
                   "opt_start_time": "2024-05-01T10:00:00.123456789Z"},
        "mirror_direct": True,
    },
    {"name": "placed", "subjects": ["placed"], "placement": {"tags": []}},
]



def specs(configs: list[dict[str, Any]]) -> list[StreamSpec]:
    return [StreamSpec(c["name"], c, Policy()) for c in configs]


async def test_every_field_round_trips(js: jetstream.JetStream) -> None:
    first = await reconcile(js, specs(STREAMS))
    failures = [(o.name, o.error) for o in first.outcomes if o.status is not Status.CREATED]
    assert not failures
    plan = await compute_plan(js, specs(STREAMS))
    drift = {s.name: s.changes for s in plan.streams if s.action is not Action.NOOP}
    assert drift == {}


async def test_updates_round_trip_too(js: jetstream.JetStream) -> None:
    await reconcile(js, specs(STREAMS))
    changed = [dict(c) for c in STREAMS]
    changed[0] |= {"max_msgs": 2000, "description": "changed", "duplicate_window": 20 * S,
                   "metadata": {"owner": "team-b"}, "compression": "none"}
    changed[1] |= {"subject_delete_marker_ttl": 7 * S}
    changed[2] |= {"max_age": 60 * S}
    changed[6]["sources"] = changed[6]["sources"][:1]
    result = await reconcile(js, specs(changed))
    assert {o.name: o.status for o in result.outcomes if o.status is not Status.UNCHANGED} == {
        "everything": Status.UPDATED, "ttl": Status.UPDATED, "short": Status.UPDATED,
        "sourced": Status.UPDATED,
    }, [o.error for o in result.outcomes]
    plan = await compute_plan(js, specs(changed))
    assert {s.name: s.changes for s in plan.streams if s.action is not Action.NOOP} == {}


async def test_removing_lines_reverts_to_defaults(js: jetstream.JetStream) -> None:
    await reconcile(js, specs(STREAMS[:1]))
    # keep only what cannot be turned back, the rest reverts to the server's defaults
    bare = {"name": "everything", "subjects": ["every.>", "thing.*"], "deny_delete": True,
            "first_seq": 100}
    result = await reconcile(js, specs([bare]))
    assert result.outcomes[0].status is Status.UPDATED, result.outcomes[0].error
    live = await js.stream_info("everything")
    assert live is not None
    assert live.config["max_msgs"] == -1
    assert "description" not in live.config
    assert live.config["duplicate_window"] == 120 * S
    plan = await compute_plan(js, specs([bare]))
    assert plan.streams[0].action is Action.NOOP, plan.streams[0].changes


async def test_sealing_round_trips(js: jetstream.JetStream) -> None:
    config = {"name": "archive", "subjects": ["archive.>"]}
    await reconcile(js, specs([config]))
    result = await reconcile(js, specs([config | {"sealed": True}]))
    assert result.outcomes[0].status is Status.UPDATED, result.outcomes[0].error
    plan = await compute_plan(js, specs([config | {"sealed": True}]))
    assert plan.streams[0].action is Action.NOOP, plan.streams[0].changes


def test_the_streams_above_use_every_field() -> None:
    from reconciler.plan import KNOWN_FIELDS

    used = {key for config in STREAMS for key in config} | {"sealed"}
    assert used == KNOWN_FIELDS


def test_what_apply_sends_is_valid_api_json() -> None:
    """Every configuration sent validates against the official stream schema."""
    import json
    from importlib.resources import files

    import jsonschema

    from reconciler.plan import desired_config

    schema = json.loads(
        files("reconciler").joinpath("schema/stream_configuration.schema.json").read_text()
    )
    for spec in specs([*STREAMS, {"name": "sealed", "sealed": True}]):
        jsonschema.validate(desired_config(spec, None), schema)
