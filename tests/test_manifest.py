"""Manifests: discovery, parsing, and every check, with whole messages asserted."""

from __future__ import annotations

import os
import random
import socket
import textwrap
import time
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest import (
    MAX_FILE_BYTES,
    discover,
    load_manifests,
    load_or_raise,
    subject_is_subset,
    subjects_collide,
)
from reconciler.model import DriftMode, Location, Places, Policy
from reconciler.plan import desired_config
from reconciler.subjects import SubjectIndex
from tests.repo import committed_copy

S = 1_000_000_000


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a temp dir, so that the paths in messages are short and relative."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path | str, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def messages(here: Path, text: str, name: str = "m.yaml") -> list[str]:
    write(here / name, text)
    return [str(p) for p in load_manifests([name]).problems]


# --- a valid manifest ------------------------------------------------------------------------


def test_valid_manifest_converts_units_and_keeps_locations(here: Path) -> None:
    write(
        "m.yaml",
        """
        name: orders
        description: every order
        subjects: ["orders.*", orders.eu.>]
        retention: limits
        max_age: 1h30m
        duplicate_window: 90s
        max_bytes: 512MiB
        max_msg_size: 1MiB
        max_msgs: unlimited
        max_msgs_per_subject: 100
        num_replicas: 1
        deny_delete: true
        placement:
          cluster: east
          tags: [ssd]
        sources:
          - name: legacy
            opt_start_time: 2024-01-31T12:00:00.123456789Z
            subject_transforms:
              - src: legacy.>
                dest: orders.legacy.>
            external:
              api: $JS.hub.API
        consumer_limits:
          inactive_threshold: 5m
          max_ack_pending: 1000
        metadata:
          owner: team-a
          version: 2
        reconcile:
          allow_data_loss: true
          drift: report
          ignore_fields: [metadata.owner, placement.tags]
        """,
    )
    result = load_manifests(["m.yaml"])
    assert result.problems == ()
    assert result.files == ("m.yaml",)
    assert result.failed_files == frozenset()
    (spec,) = result.specs
    assert spec.name == "orders"
    assert spec.config == {
        "name": "orders",
        "description": "every order",
        "subjects": ["orders.*", "orders.eu.>"],
        "retention": "limits",
        "max_age": 5400 * S,
        "duplicate_window": 90 * S,
        "max_bytes": 512 * 1024**2,
        "max_msg_size": 1024**2,
        "max_msgs": -1,
        "max_msgs_per_subject": 100,
        "num_replicas": 1,
        "deny_delete": True,
        "placement": {"cluster": "east", "tags": ["ssd"]},
        "sources": [
            {
                "name": "legacy",
                # exactly as written: YAML would have made a datetime of it, cut to microseconds
                "opt_start_time": "2024-01-31T12:00:00.123456789Z",
                "subject_transforms": [{"src": "legacy.>", "dest": "orders.legacy.>"}],
                "external": {"api": "$JS.hub.API"},
            }
        ],
        "consumer_limits": {"inactive_threshold": 300 * S, "max_ack_pending": 1000},
        "metadata": {"owner": "team-a", "version": "2"},
    }
    assert spec.policy == Policy(
        allow_data_loss=True,
        drift=DriftMode.REPORT,
        ignore_fields=("metadata.owner", "placement.tags"),
    )
    assert "reconcile" not in spec.config
    assert spec.location == Location("m.yaml", 1, 1)
    assert spec.field_locations["name"] == Location("m.yaml", 1, 7)
    assert spec.field_locations["subjects.1"] == Location("m.yaml", 3, 24)
    assert spec.field_locations["max_age"] == Location("m.yaml", 5, 10)
    assert spec.field_locations["placement.cluster"] == Location("m.yaml", 14, 12)
    assert spec.field_locations["sources.0"] == Location("m.yaml", 17, 5)
    assert spec.field_locations["sources.0.name"] == Location("m.yaml", 17, 11)
    assert spec.field_locations["sources.0.subject_transforms.0.dest"] == Location("m.yaml", 21, 15)
    assert spec.field_locations["metadata.owner"] == Location("m.yaml", 28, 10)
    assert spec.field_locations["reconcile.drift"] == Location("m.yaml", 32, 10)
    assert spec.where("metadata.nope") == Location("m.yaml", 28, 3)


def test_every_schema_field_is_accepted(here: Path) -> None:
    # the 38 fields of the JetStream stream configuration, in two streams (a mirror excludes
    # some of the others)
    write(
        "m.yaml",
        """
        name: all
        description: d
        subjects: [all.>]
        subject_transform: {src: all.>, dest: moved.>}
        retention: limits
        max_consumers: 10
        max_msgs: 10
        max_msgs_per_subject: 1
        max_bytes: 1KiB
        max_age: 1m
        max_msg_size: 100
        storage: memory
        compression: s2
        first_seq: 5
        num_replicas: 1
        no_ack: false
        discard: new
        duplicate_window: 1s
        placement: {cluster: c, tags: [a]}
        sources: [{name: other, filter_subject: x.>}]
        sealed: false
        deny_delete: false
        deny_purge: false
        allow_rollup_hdrs: true
        allow_direct: true
        allow_atomic: true
        allow_msg_counter: false
        allow_msg_schedules: false
        mirror_direct: false
        republish: {src: all.>, dest: repub.>, headers_only: true}
        discard_new_per_subject: true
        metadata: {a: b}
        consumer_limits: {inactive_threshold: 0, max_ack_pending: -1}
        allow_msg_ttl: true
        subject_delete_marker_ttl: 1s
        persist_mode: default
        allow_batched: true
        ---
        name: copy
        mirror:
          name: all
          opt_start_seq: 3
          filter_subject: all.a
          external: {api: $JS.hub.API, deliver: deliver.copy}
        """,
    )
    result = load_manifests(["m.yaml"])
    assert [str(p) for p in result.problems] == []
    assert [s.name for s in result.specs] == ["all", "copy"]
    fields = set(result.specs[0].config) | set(result.specs[1].config)
    assert len(fields) == 38


def test_seed_manifest_is_valid(tmp_path: Path) -> None:
    result = load_manifests([committed_copy(tmp_path, "config") / "config"])
    assert result.problems == ()
    (spec,) = result.specs
    assert spec.name == "events"
    assert spec.config["subjects"] == ["events.*"]
    assert spec.config["max_msgs"] == 10
    assert spec.config["max_bytes"] == 300
    assert spec.config["storage"] == "file"
    assert "max_age" not in spec.config


# --- one problem per row: the whole message ---------------------------------------------------

CASES: list[tuple[str, str, list[str]]] = [
    # id, manifest, expected problems
    (
        "duration without unit",
        """
        name: events
        subjects: [events.*]
        max_msgs: 10
        max_age: 30
        """,
        ["m.yaml:4:10: max_age: 30 has no unit; write '30s' (seconds) or '30ms' (milliseconds)"],
    ),
    (
        "unknown field, did you mean",
        """
        name: events
        max_msg: 10
        """,
        ["m.yaml:2:1: max_msg: unknown field 'max_msg'; did you mean 'max_msgs'?"],
    ),
    (
        "unknown field, camel case",
        """
        name: events
        maxAge: 1h
        """,
        ["m.yaml:2:1: maxAge: unknown field 'maxAge'; did you mean 'max_age'?"],
    ),
    (
        "unknown field, nothing close",
        """
        name: events
        colour: blue
        """,
        [
            "m.yaml:2:1: colour: unknown field 'colour'; "
            "stream fields are the JetStream API's names, such as max_msgs or max_age"
        ],
    ),
    (
        "unknown nested field",
        """
        name: events
        placement:
          clustr: east
        """,
        ["m.yaml:3:3: placement.clustr: unknown field 'clustr'; did you mean 'cluster'?"],
    ),
    (
        "unknown nested field, fields listed",
        """
        name: events
        placement:
          zone: a
        """,
        [
            "m.yaml:3:3: placement.zone: unknown field 'zone'; "
            "placement has cluster, tags and preferred"
        ],
    ),
    (
        "unknown field in a list element",
        """
        name: events
        sources:
          - name: a
            filter: a.>
        """,
        ["m.yaml:4:5: sources.0.filter: unknown field 'filter'; did you mean 'filter_subject'?"],
    ),
    (
        "unknown field deep inside",
        """
        name: events
        sources:
          - name: a
          - name: b
            external:
              apii: $JS.x.API
        """,
        ["m.yaml:6:7: sources.1.external.apii: unknown field 'apii'; did you mean 'api'?"],
    ),
    (
        "no name",
        """
        subjects: [a]
        """,
        ["m.yaml:1:1: name: the stream has no name; add name: <stream name>"],
    ),
    (
        "name with a dot",
        """
        name: orders.eu
        """,
        ["m.yaml:1:7: name: 'orders.eu' contains '.', which a name cannot have; write 'orders_eu'"],
    ),
    (
        "name with wildcards, slash and space",
        """
        name: "a*b>c/d\\\\e f"
        """,
        [
            "m.yaml:1:7: name: 'a*b>c/d\\e f' contains '*', '>', '/', '\\' and a space, "
            "which a name cannot have; write 'a_b_c_d_e_f'"
        ],
    ),
    (
        "empty name",
        """
        name: ""
        """,
        ["m.yaml:1:7: name: the name is empty; write a name such as 'events'"],
    ),
    (
        "name too long",
        f"""
        name: {"x" * 256}
        """,
        [
            "m.yaml:1:7: name: the name is 256 characters long, more than 255; "
            "shorten it to at most 255 characters"
        ],
    ),
    (
        "name of a source",
        """
        name: events
        sources: [{name: a.b}]
        """,
        ["m.yaml:2:18: sources.0.name: 'a.b' contains '.', which a name cannot have; write 'a_b'"],
    ),
    (
        "subject with an empty token",
        """
        name: events
        subjects: ["events..a", "events."]
        """,
        [
            "m.yaml:2:12: subjects.0: 'events..a' has an empty token; write 'events.a'",
            "m.yaml:2:25: subjects.1: 'events.' has an empty token; write 'events'",
        ],
    ),
    (
        "subject with > before the end",
        """
        name: events
        subjects: [events.>.a]
        """,
        [
            "m.yaml:2:12: subjects.0: 'events.>.a' has '>' before the last token; "
            "'>' matches all remaining tokens, so it comes last: write 'events.>'"
        ],
    ),
    (
        "subject with whitespace",
        """
        name: events
        subjects: ["events. a", ""]
        """,
        [
            "m.yaml:2:12: subjects.0: 'events. a' contains whitespace; write 'events.a'",
            "m.yaml:2:25: subjects.1: the subject is empty; write a subject such as 'events.>'",
        ],
    ),
    (
        "subjects overlapping within a stream",
        """
        name: events
        subjects:
          - events.*
          - events.a
          - events.*
        """,
        [
            "m.yaml:4:5: subjects.1: 'events.a' overlaps 'events.*' (line 3); "
            "remove 'events.a': 'events.*' already covers it",
            "m.yaml:5:5: subjects.2: 'events.*' is already listed at line 3; remove one of them",
        ],
    ),
    (
        "subjects given as a string",
        """
        name: events
        subjects: events.*
        """,
        ["m.yaml:2:11: subjects: expected a list, got text; write ['events.*']"],
    ),
    (
        "> needs no_ack",
        """
        name: all
        subjects: [">"]
        """,
        [
            "m.yaml:2:12: subjects.0: '>' captures every subject, which needs no_ack: true; "
            "add no_ack: true, or list narrower subjects"
        ],
    ),
    (
        "JetStream API subjects need no_ack",
        """
        name: api
        subjects: [$JS.API.>]
        """,
        [
            "m.yaml:2:12: subjects.0: '$JS.API.>' overlaps the server's own subjects ($JS.>), "
            "which needs no_ack: true; choose other subjects, or add no_ack: true"
        ],
    ),
    (
        "enum with a close value",
        """
        name: events
        storage: File
        retention: limit
        """,
        [
            "m.yaml:2:10: storage: unknown value 'File'; did you mean 'file'? (file, memory)",
            "m.yaml:3:12: retention: unknown value 'limit'; "
            "did you mean 'limits'? (limits, interest, workqueue)",
        ],
    ),
    (
        "enum far off",
        """
        name: events
        storage: disk
        """,
        ["m.yaml:2:10: storage: unknown value 'disk'; write one of: file, memory"],
    ),
    (
        "booleans only true or false",
        """
        name: events
        deny_delete: "true"
        deny_purge: yes
        no_ack: 1
        """,
        [
            "m.yaml:2:14: deny_delete: 'true' is quoted text, not a boolean; "
            "write true without quotes",
            "m.yaml:3:13: deny_purge: 'yes' is not true or false; write true or false",
            "m.yaml:4:9: no_ack: '1' is not true or false; write true or false",
        ],
    ),
    (
        "integers only",
        """
        name: events
        first_seq: "10"
        num_replicas: 1.5
        sources: [{name: a, opt_start_seq: lots}]
        """,
        [
            "m.yaml:2:12: first_seq: '10' is text, not a number; write 10 without quotes",
            "m.yaml:3:15: num_replicas: 1.5 is not a whole number; write a whole number",
            "m.yaml:4:36: sources.0.opt_start_seq: 'lots' is not a number; write a whole number",
        ],
    ),
    (
        "counts",
        """
        name: events
        max_msgs: "10"
        max_consumers: -5
        max_msgs_per_subject: many
        """,
        [
            "m.yaml:2:11: max_msgs: '10' is text, not a number; write 10 without quotes",
            "m.yaml:3:16: max_consumers: -5 is not a count; write a whole number, or 'unlimited'",
            "m.yaml:4:23: max_msgs_per_subject: 'many' is not a count; "
            "write a whole number, or 'unlimited'",
        ],
    ),
    (
        "sizes",
        """
        name: events
        max_bytes: 512M
        max_msg_size: 0.5KiB
        """,
        [
            "m.yaml:2:12: max_bytes: '512M' is ambiguous; "
            "write '512MiB' (1024-based) or '512MB' (1000-based)",
        ],
    ),
    (
        "size out of the int32 range",
        """
        name: events
        max_msg_size: 2GiB
        """,
        [
            "m.yaml:2:15: max_msg_size: 2GiB is above the maximum of 2147483647; "
            "max_msg_size is a 32-bit number: write at most 2147483647 bytes, or 'unlimited'"
        ],
    ),
    (
        "replicas out of range",
        """
        name: events
        num_replicas: 7
        ---
        name: other
        num_replicas: 0
        """,
        [
            "m.yaml:2:15: num_replicas: 7 is out of range; write a number from 1 to 5",
            "m.yaml:5:15: num_replicas: 0 is out of range; write a number from 1 to 5",
        ],
    ),
    (
        "negative first_seq",
        """
        name: events
        first_seq: -1
        """,
        ["m.yaml:2:12: first_seq: -1 is below the minimum of 0; write at least 0"],
    ),
    (
        "description too long",
        f"""
        name: events
        description: {"d" * 4097}
        """,
        [
            "m.yaml:2:14: description: the text is 4097 characters long; "
            "shorten it to at most 4096 characters"
        ],
    ),
    (
        "wrong shapes",
        """
        name: [events]
        placement: east
        metadata:
          owner: [a, b]
        description:
        """,
        [
            "m.yaml:1:7: name: expected text, got a list; write a single value",
            "m.yaml:2:12: placement: expected a mapping, got text; "
            "write its fields indented below it",
            "m.yaml:4:10: metadata.owner: expected text, got a list; write a single value",
            "m.yaml:5:13: description: no value given; write a value, or remove the field",
        ],
    ),
    (
        "missing required nested field",
        """
        name: events
        republish:
          src: events.>
        """,
        ["m.yaml:2:1: republish: 'dest' is missing; add dest: ..."],
    ),
    (
        "opt_start_time must be RFC 3339",
        """
        name: events
        sources:
          - name: a
            opt_start_time: 2024-01-31
          - name: b
            opt_start_time: "2024-01-31 12:00:00"
          - name: c
            opt_start_time: 2024-02-30T12:00:00Z
        """,
        [
            f"m.yaml:{line}:21: sources.{i}.opt_start_time: '{text}' is not an RFC 3339 time; "
            "write a date and time with a time zone, e.g. '2024-01-31T12:00:00Z'"
            for i, line, text in [
                (0, 4, "2024-01-31"),
                (1, 6, "2024-01-31 12:00:00"),
                (2, 8, "2024-02-30T12:00:00Z"),
            ]
        ],
    ),
    (
        "max_age at least 100ms",
        """
        name: events
        max_age: 50ms
        """,
        [
            "m.yaml:2:10: max_age: 50ms is below the minimum of 100ms; "
            "write at least 100ms, or 0 for no age limit"
        ],
    ),
    (
        "duplicate_window within max_age",
        """
        name: events
        max_age: 1m
        duplicate_window: 2m
        """,
        [
            "m.yaml:3:19: duplicate_window: 2m is longer than max_age (1m); write at most 1m",
        ],
    ),
    (
        "duplicate_window without max_age is fine, but at least 100ms",
        """
        name: events
        duplicate_window: 10ms
        """,
        [
            "m.yaml:2:19: duplicate_window: 10ms is below the minimum of 100ms; "
            "write at least 100ms, or 0 for the default (2m, or max_age when shorter)"
        ],
    ),
    (
        "discard_new_per_subject needs discard new and a per-subject limit",
        """
        name: events
        discard_new_per_subject: true
        """,
        [
            "m.yaml:2:26: discard_new_per_subject: needs discard: new; add discard: new",
            "m.yaml:2:26: discard_new_per_subject: needs max_msgs_per_subject above 0; "
            "set max_msgs_per_subject, e.g. max_msgs_per_subject: 1",
        ],
    ),
    (
        "a mirror excludes subjects, sources and first_seq",
        """
        name: copy
        subjects: [copy.>]
        sources: [{name: a}]
        first_seq: 10
        mirror: {name: origin}
        """,
        [
            "m.yaml:2:11: subjects: a mirror stores its origin's subjects: "
            "it cannot have subjects of its own; remove subjects, or the mirror",
            "m.yaml:3:10: sources: a stream cannot be a mirror and have sources; "
            "remove sources, or the mirror",
            "m.yaml:4:12: first_seq: a mirror cannot set first_seq; "
            "remove first_seq, or the mirror",
        ],
    ),
    (
        "subject delete markers",
        """
        name: events
        subject_delete_marker_ttl: 500ms
        ---
        name: copy
        mirror: {name: events}
        subject_delete_marker_ttl: 1m
        """,
        [
            "m.yaml:2:28: subject_delete_marker_ttl: 500ms is below the minimum of 1s; "
            "write at least 1s, or 0 for no delete markers",
            "m.yaml:6:28: subject_delete_marker_ttl: a mirror cannot add delete markers; "
            "remove subject_delete_marker_ttl, or the mirror",
        ],
    ),
    (
        "fields the server would silently change",
        """
        name: events
        subject_delete_marker_ttl: 1m
        allow_msg_ttl: false
        deny_purge: true
        """,
        [
            "m.yaml:3:16: allow_msg_ttl: subject_delete_marker_ttl needs message TTLs, "
            "so the server turns this on; write allow_msg_ttl: true, or remove the line",
            "m.yaml:4:13: deny_purge: subject_delete_marker_ttl needs purges, "
            "so the server turns this off; write deny_purge: false, or remove the line",
        ],
    ),
    (
        "rollups need purges",
        """
        name: events
        deny_purge: true
        allow_rollup_hdrs: true
        """,
        [
            "m.yaml:3:20: allow_rollup_hdrs: rollups purge messages, which deny_purge: true "
            "forbids; set deny_purge or allow_rollup_hdrs to false"
        ],
    ),
    (
        "counter streams",
        """
        name: counts
        allow_msg_counter: true
        discard: new
        retention: workqueue
        allow_msg_ttl: true
        """,
        [
            "m.yaml:2:20: allow_msg_counter: a counter stream cannot use discard: new; "
            "remove discard: new",
            "m.yaml:2:20: allow_msg_counter: a counter stream cannot use message TTLs; "
            "remove allow_msg_ttl: true",
            "m.yaml:2:20: allow_msg_counter: a counter stream needs retention: limits; "
            "write retention: limits, or leave retention out",
        ],
    ),
    (
        "message schedules",
        """
        name: later
        allow_msg_schedules: true
        discard: new
        sources: [{name: a}]
        """,
        [
            "m.yaml:2:22: allow_msg_schedules: message schedules cannot use discard: new; "
            "remove discard: new",
            "m.yaml:2:22: allow_msg_schedules: a stream with sources cannot use message "
            "schedules; remove allow_msg_schedules or sources",
        ],
    ),
    (
        "async persistence",
        """
        name: fast
        persist_mode: async
        storage: memory
        """,
        [
            "m.yaml:2:15: persist_mode: async persistence needs file storage; "
            "remove persist_mode, or use storage: file"
        ],
    ),
    (
        "filter and transforms together; duplicate sources",
        """
        name: events
        sources:
          - name: a
            filter_subject: a.>
            subject_transforms: [{src: a.b, dest: c}]
          - name: b
          - name: b
        """,
        [
            "m.yaml:4:21: sources.0.filter_subject: filter_subject and subject_transforms "
            "cannot be used together; move the filter into subject_transforms as src",
            "m.yaml:7:5: sources.2: stream 'b' is already sourced the same way at line 6; "
            "remove one of them",
        ],
    ),
    (
        "republish into the stream itself",
        """
        name: events
        subjects: [events.>]
        republish: {dest: events.copy}
        """,
        [
            "m.yaml:3:19: republish.dest: 'events.copy' overlaps the stream's own subject "
            "'events.>', so republished messages would loop back into the stream; "
            "choose a destination outside the stream's subjects"
        ],
    ),
    (
        "server-owned metadata",
        """
        name: events
        metadata:
          _nats.level: "1"
        """,
        [
            "m.yaml:3:16: metadata._nats.level: keys starting with '_nats.' belong to the "
            "server, which overwrites them; choose another key"
        ],
    ),
    (
        "preferred placement",
        """
        name: events
        placement: {preferred: n1}
        """,
        [
            "m.yaml:2:24: placement.preferred: the server does not accept a preferred server "
            "in a stream's placement; remove preferred"
        ],
    ),
    (
        "kind",
        """
        kind: Consumer
        name: c
        durable_name: c
        """,
        [
            "m.yaml:1:7: kind: unsupported kind 'Consumer'; "
            "the only supported kind is Stream, the default without kind"
        ],
    ),
    (
        "reconcile block",
        """
        name: events
        reconcile:
          allow_data_loss: "yes"
          drift: heal
          ignore_fields: [max_agee, name, metadata.owner, sources.0.name, nope.x]
          dry_run: true
        """,
        [
            "m.yaml:3:20: reconcile.allow_data_loss: 'yes' is not true or false; "
            "write true or false",
            "m.yaml:4:10: reconcile.drift: unknown value 'heal'; write one of: enforce, report",
            "m.yaml:5:19: reconcile.ignore_fields.0: 'max_agee' is not a stream configuration "
            "field; did you mean 'max_age'?",
            "m.yaml:5:29: reconcile.ignore_fields.1: the name cannot be ignored: "
            "it identifies the stream; remove it",
            "m.yaml:5:67: reconcile.ignore_fields.4: 'nope.x' is not a stream configuration "
            "field; write a field path such as 'max_age' or 'metadata.owner'",
            "m.yaml:6:3: reconcile.dry_run: unknown field 'dry_run'; "
            "reconcile has allow_data_loss, drift and ignore_fields",
        ],
    ),
    (
        "duplicate keys",
        """
        name: events
        max_age: 1h
        placement:
          cluster: a
          cluster: b
        max_age: 2h
        """,
        [
            "m.yaml:5:3: placement.cluster: 'cluster' is given twice (first at line 4); "
            "remove one of them",
            "m.yaml:6:1: max_age: 'max_age' is given twice (first at line 2); remove one of them",
        ],
    ),
    (
        "not a mapping",
        """
        - name: events
        """,
        [
            "m.yaml:1:1: a stream manifest is a mapping of fields, got a list; "
            "start the document with 'name: <stream name>'"
        ],
    ),
    (
        "invalid YAML",
        """
        name: events
        subjects: [events.*
        """,
        [
            "m.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 2, column 11)"
        ],
    ),
    (
        "tabs",
        "name: events\n\tmax_age: 1h\n",
        [
            "m.yaml:2:1: invalid YAML: found character '\\t' that cannot start any token "
            "(while scanning for the next token); indent with spaces: YAML does not allow "
            "tabs there"
        ],
    ),
    (
        "undefined alias",
        """
        name: events
        subjects: *subjects
        """,
        ["m.yaml:2:11: invalid YAML: found undefined alias 'subjects'"],
    ),
    (
        "every problem of a document at once",
        """
        name: orders.eu
        max_age: 30
        max_bytes: 1G
        storage: ssd
        """,
        [
            "m.yaml:1:7: name: 'orders.eu' contains '.', which a name cannot have; "
            "write 'orders_eu'",
            "m.yaml:2:10: max_age: 30 has no unit; write '30s' (seconds) or '30ms' (milliseconds)",
            "m.yaml:3:12: max_bytes: '1G' is ambiguous; write '1GiB' (1024-based) or '1GB' "
            "(1000-based)",
            "m.yaml:4:10: storage: unknown value 'ssd'; write one of: file, memory",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problems(here: Path, text: str, expected: list[str]) -> None:
    write("m.yaml", text)
    result = load_manifests(["m.yaml"])
    assert [str(p) for p in result.problems] == expected
    assert result.failed_files == frozenset({"m.yaml"})


def test_size_fraction_not_whole_bytes(here: Path) -> None:
    assert messages(here, "name: e\nmax_msg_size: 0.3KiB\n") == [
        "m.yaml:2:15: max_msg_size: '0.3KiB' is not a whole number of bytes; write '307B' or '308B'"
    ]


# --- documents and files -----------------------------------------------------------------------


def test_multi_document_file(here: Path) -> None:
    write(
        "m.yaml",
        """
        # leading comment
        ---
        name: a
        subjects: [a.>]
        ---
        # an empty document: skipped
        ---
        name: b
        max_age: 30
        ---
        name: c
        kind: Stream
        """,
    )
    result = load_manifests(["m.yaml"])
    assert [s.name for s in result.specs] == ["a", "c"]
    assert [str(p) for p in result.problems] == [
        "m.yaml:9:10: max_age: 30 has no unit; write '30s' (seconds) or '30ms' (milliseconds)"
    ]
    assert result.failed_files == frozenset({"m.yaml"})
    assert result.specs[0].location == Location("m.yaml", 3, 1)
    assert result.specs[1].location == Location("m.yaml", 11, 1)


def test_empty_and_comment_only_files(here: Path) -> None:
    write("empty.yaml", "")
    write("comments.yaml", "# nothing yet\n")
    result = load_manifests(["."])
    assert result == load_manifests(["comments.yaml", "empty.yaml"])
    assert result.specs == ()
    assert result.problems == ()
    assert result.files == ("comments.yaml", "empty.yaml")


def test_invalid_yaml_later_in_file_keeps_earlier_documents(here: Path) -> None:
    write("m.yaml", "name: a\n---\nname: [b\n")
    result = load_manifests(["m.yaml"])
    assert [s.name for s in result.specs] == ["a"]
    assert result.failed_files == {"m.yaml"}
    assert len(result.problems) == 1


def test_merge_keys(here: Path) -> None:
    # anchors work inside one document, through `<<` merges
    write(
        "m.yaml",
        """
        name: a
        subjects: [a.>]
        placement: &p {cluster: east, tags: [ssd]}
        sources:
          - &src {name: x, filter_subject: x.>}
          - <<: *src
            filter_subject: y.>
        republish:
          <<: {src: a.>, dest: b.>}
          dest: c.>
        """,
    )
    result = load_manifests(["m.yaml"])
    assert result.problems == ()
    config = result.specs[0].config
    assert config["sources"] == [
        {"name": "x", "filter_subject": "x.>"},
        {"name": "x", "filter_subject": "y.>"},
    ]
    assert config["republish"] == {"src": "a.>", "dest": "c.>"}


def test_alias_bomb_fails_fast(here: Path) -> None:
    # each source repeats 300 transforms, 400 times: 120,000 nodes from a small file
    write("m.yaml", _bomb_document("bomb", 300, 400))
    started = time.monotonic()
    result = load_manifests(["m.yaml"])
    assert time.monotonic() - started < 5
    assert result.specs == ()
    assert [str(p) for p in result.problems][-1:] == [
        "m.yaml:1:1: the document expands to more than 100000 YAML nodes "
        "(aliases of aliases?); write the values out instead of nesting aliases"
    ]


def _bomb_document(name: str, width: int, copies: int) -> str:
    lines = [
        f"name: {name}",
        "sources:",
        "  - &s",
        "    name: origin",
        "    subject_transforms: [" + ", ".join(["{src: a, dest: b}"] * width) + "]",
    ]
    return "\n".join(lines + ["  - *s"] * copies) + "\n"


def test_many_small_bombs_fail_fast_too(here: Path) -> None:
    # each document stays under the per-document limit; together they exceed the file's
    text = "---\n".join(_bomb_document(f"b{i}", 100, 250) for i in range(30))
    write("m.yaml", text)
    started = time.monotonic()
    result = load_manifests(["m.yaml"])
    assert time.monotonic() - started < 5
    budget = 100_000 + len(text) // 2
    assert [str(p) for p in result.problems][:1] == [
        f"m.yaml: the file expands to more than {budget} YAML nodes (aliases of aliases?); "
        "write the values out instead of nesting aliases"
    ]
    assert result.specs == ()


def test_many_documents_are_not_a_bomb(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.manifest.reader

    monkeypatch.setattr(reconciler.manifest.reader, "MAX_NODES", 100)
    docs = [f"name: s{i}\nsubjects: [s{i}.*]\nmax_age: 1h\nmetadata: {{o: x}}\n" for i in range(50)]
    write("m.yaml", "---\n".join(docs))
    result = load_manifests(["m.yaml"])
    assert result.problems == ()
    assert len(result.specs) == 50
    write("m.yaml", _bomb_document("b", 10, 20))
    assert [str(p) for p in load_manifests(["m.yaml"]).problems] == [
        "m.yaml:1:1: the document expands to more than 100 YAML nodes (aliases of aliases?); "
        "write the values out instead of nesting aliases"
    ]


def test_billion_laughs_is_not_expanded(here: Path) -> None:
    lines = ["name: lol", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    lines.append("subjects: *i")
    write("m.yaml", "\n".join(lines) + "\n")
    started = time.monotonic()
    result = load_manifests(["m.yaml"])
    assert time.monotonic() - started < 5
    assert result.specs == ()
    assert result.problems  # unknown fields a..i, and subjects that are lists of lists


def test_recursive_alias(here: Path) -> None:
    write("m.yaml", "name: r\nsources: &s [{name: a, subject_transforms: *s}]\n")
    result = load_manifests(["m.yaml"])
    assert result.specs == ()
    assert result.problems


def test_big_file_rejected(here: Path) -> None:
    path = here / "big.yaml"
    path.write_text("name: big\n" + "# " + "x" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    size = path.stat().st_size
    assert [str(p) for p in load_manifests(["big.yaml"]).problems] == [
        f"big.yaml: the file is {size} bytes, more than the limit of 1048576 bytes (1MiB); "
        "split it into several files"
    ]


def test_not_utf8(here: Path) -> None:
    (here / "m.yaml").write_bytes(b"name: a\ndescription: caf\xe9\n")
    assert [str(p) for p in load_manifests(["m.yaml"]).problems] == [
        "m.yaml:2:17: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"
    ]


def test_problems_per_file_are_capped(here: Path) -> None:
    text = "\n".join(f"name: s{i}\nmax_age: 30\n---" for i in range(150))
    write("m.yaml", text)
    problems = [str(p) for p in load_manifests(["m.yaml"]).problems]
    assert len(problems) == 101
    assert (
        problems[0]
        == "m.yaml: 50 more problems in this file are not shown; fix the ones shown first"
    )


# --- across files ------------------------------------------------------------------------------


def test_duplicate_names_across_files(here: Path) -> None:
    write("a.yaml", "name: events\nsubjects: [a]\n")
    write("b.yaml", "subjects: [b]\nname: events\n")
    result = load_manifests(["."])
    assert [str(p) for p in result.problems] == [
        "b.yaml:2:7: name: stream 'events' is already declared at a.yaml:1:7; "
        "rename this stream, or remove one of the two declarations"
    ]
    assert [s.location.file for s in result.specs] == ["a.yaml"]
    assert result.failed_files == {"b.yaml"}


def test_duplicate_names_in_one_file(here: Path) -> None:
    write("a.yaml", "name: events\nsubjects: [a]\n---\nname: events\nsubjects: [b]\n")
    assert [str(p) for p in load_manifests(["a.yaml"]).problems] == [
        "a.yaml:4:7: name: stream 'events' is already declared at a.yaml:1:7; "
        "rename this stream, or remove one of the two declarations"
    ]


def test_overlapping_subjects_across_streams(here: Path) -> None:
    write("a.yaml", "name: all_events\nsubjects: [events.*]\n")
    write("b.yaml", 'name: one\nsubjects: [other, "events.a"]\n')
    write("c.yaml", "name: tail\nsubjects: [events.>]\n")
    write("d.yaml", "name: b_only\nsubjects: [b.*]\n---\nname: a_only\nsubjects: [a.*]\n")
    result = load_manifests(["."])
    assert [str(p) for p in result.problems] == [
        "b.yaml:2:19: subjects.1: 'events.a' overlaps 'events.*' of stream 'all_events' "
        "(a.yaml:2:12); a message subject can belong to one stream only: narrow one of them",
        "c.yaml:2:12: subjects.0: 'events.>' overlaps 'events.*' of stream 'all_events' "
        "(a.yaml:2:12); a message subject can belong to one stream only: narrow one of them",
    ]
    assert [s.name for s in result.specs] == ["all_events", "b_only", "a_only"]


def test_default_subject_overlaps(here: Path) -> None:
    write("a.yaml", "name: orders\n")  # takes the subject `orders`
    write("b.yaml", "name: star\nsubjects: ['*']\n")
    write("c.yaml", "name: mirror_of_orders\nmirror: {name: orders}\n")  # no subjects
    result = load_manifests(["."])
    assert [str(p) for p in result.problems] == [
        "b.yaml:2:12: subjects.0: '*' overlaps the default subject of stream 'orders' "
        "(a.yaml:1:7); a message subject can belong to one stream only: narrow one of them",
    ]
    write("b.yaml", "name: star\nsubjects: [orders.x]\n")
    write("d.yaml", "name: orders_a\nsubjects: [orders_a]\n---\nname: orders_b\n")
    write("e.yaml", "name: z\nsubjects: ['orders_b']\n")
    assert [str(p) for p in load_manifests(["."]).problems] == [
        "e.yaml:2:12: subjects.0: 'orders_b' overlaps the default subject of stream "
        "'orders_b' (d.yaml:4:7); a message subject can belong to one stream only: "
        "narrow one of them",
    ]
    write("f.yaml", "name: orders_a\n")
    assert "without subjects, stream 'orders_a' takes" not in " ".join(
        str(p) for p in load_manifests(["."]).problems
    )  # a duplicate name is reported as such, not as an overlap


def test_default_subject_of_a_later_stream(here: Path) -> None:
    write("a.yaml", "name: a\nsubjects: [x.>, b]\n")
    write("b.yaml", "name: b\n")
    assert [str(p) for p in load_manifests(["."]).problems] == [
        "b.yaml:1:7: name: without subjects, stream 'b' takes the subject 'b', which overlaps "
        "'b' of stream 'a' (a.yaml:2:17); list subjects that no other stream takes"
    ]


@pytest.mark.parametrize(
    ("a", "b", "collide"),
    [
        ("events.*", "events.a", True),
        ("events.*", "events.>", True),
        ("events.>", "events.a.b", True),
        ("events.a", "events.a", True),
        ("a.*", "b.*", False),
        ("events.*", "events.a.b", False),
        ("events.>", "events", False),
        ("*.a", "b.*", True),
        ("*.a", "b.c", False),
        (">", "anything.at.all", True),
        ("a.*.c", "a.b.*", True),
        ("a.*.c", "a.b.d", False),
    ],
)
def test_subjects_collide(a: str, b: str, collide: bool) -> None:
    assert subjects_collide(a, b) is collide
    assert subjects_collide(b, a) is collide


@pytest.mark.parametrize(
    ("a", "b", "subset"),
    [
        ("events.a", "events.*", True),
        ("events.*", "events.a", False),
        ("events.a.b", "events.>", True),
        ("events.>", "events.*", False),
        ("events.*", "events.>", True),
        ("$JS.EVENT.x", "$JS.EVENT.>", True),
        ("$JS.>", "$JS.EVENT.>", False),
        ("a", "a", True),
    ],
)
def test_subject_is_subset(a: str, b: str, subset: bool) -> None:
    assert subject_is_subset(a, b) is subset


def test_overlap_check_scales(here: Path) -> None:
    docs = [f"name: s{i}\nsubjects: [app.s{i}.>, 'other.{i}.*']" for i in range(2000)]
    docs.append("name: late\nsubjects: [app.s1999.x]")
    write("m.yaml", "\n---\n".join(docs) + "\n")
    started = time.monotonic()
    result = load_manifests(["m.yaml"])
    assert time.monotonic() - started < 10
    assert len(result.specs) == 2000
    assert [p.message for p in result.problems] == [
        "'app.s1999.x' overlaps 'app.s1999.>' of stream 's1999' (m.yaml:5999:12)"
    ]


def test_problems_sorted_by_location(here: Path) -> None:
    write("b.yaml", "name: b\nmax_age: 1\n")
    write("a.yaml", "max_age: 1\nname: a.b\n")
    locations = [p.location for p in load_manifests(["b.yaml", "a.yaml"]).problems]
    assert locations == sorted(locations)
    assert [(loc.file, loc.line) for loc in locations] == [
        ("a.yaml", 1),
        ("a.yaml", 2),
        ("b.yaml", 2),
    ]


def test_load_or_raise(here: Path) -> None:
    write("a.yaml", "name: a\n")
    assert [s.name for s in load_or_raise(["a.yaml"])] == ["a"]
    write("b.yaml", "name: b\nmax_age: 1\n")
    with pytest.raises(ManifestError) as info:
        load_or_raise(["."])
    assert str(info.value) == (
        "b.yaml:2:10: max_age: 1 has no unit; write '1s' (seconds) or '1ms' (milliseconds)"
    )
    assert len(info.value.problems) == 1


# --- discovery ---------------------------------------------------------------------------------


def test_discover_recurses_sorted_and_skips_dot_entries(here: Path) -> None:
    write("conf/b.yaml", "name: b\n")
    write("conf/a.yml", "name: a\n")
    write("conf/sub/c.yaml", "name: c\n")
    write("conf/.hidden.yaml", "name: hidden\n")
    write("conf/.git/d.yaml", "name: d\n")
    write("conf/notes.txt", "not yaml")
    write("conf/README.md", "# no")
    assert discover(["conf"]) == [Path("conf/a.yml"), Path("conf/b.yaml"), Path("conf/sub/c.yaml")]
    assert discover(["conf/"]) == discover(["conf"])


def test_configmap_mount(here: Path) -> None:
    # what Kubernetes makes of a ConfigMap volume: keys are symlinks through `..data`
    stamp = here / "mnt" / "..2024_01_01_00_00_00.123456789"
    write(stamp / "events.yaml", "name: events\nsubjects: [events.*]\n")
    write(stamp / "orders.yaml", "name: orders\nsubjects: [orders.*]\n")
    os.symlink("..2024_01_01_00_00_00.123456789", here / "mnt" / "..data")
    os.symlink("..data/events.yaml", here / "mnt" / "events.yaml")
    os.symlink("..data/orders.yaml", here / "mnt" / "orders.yaml")
    result = load_manifests(["mnt"])
    assert result.problems == ()
    assert result.files == ("mnt/events.yaml", "mnt/orders.yaml")
    assert [s.name for s in result.specs] == ["events", "orders"]
    assert result.specs[0].location == Location("mnt/events.yaml", 1, 1)


def test_symlinked_dir_is_followed_and_files_read_once(here: Path) -> None:
    write("real/a.yaml", "name: a\n")
    os.symlink("real", here / "link")
    os.symlink("../real", here / "real" / "loop")  # a cycle: must not hang
    assert discover(["link", "real", "real/a.yaml"]) == [Path("link/a.yaml")]
    result = load_manifests(["real", "link"])
    assert result.problems == ()
    assert len(result.specs) == 1


def test_explicit_file_read_whatever_its_suffix(here: Path) -> None:
    write("events.conf", "name: events\n")
    write(".hidden", "name: hidden\n")
    assert [s.name for s in load_or_raise(["events.conf", ".hidden"])] == ["hidden", "events"]


def test_missing_path_is_a_problem(here: Path) -> None:
    write("a.yaml", "name: a\n")
    result = load_manifests(["a.yaml", "nope", "gone.yaml"])
    assert [str(p) for p in result.problems] == [
        "gone.yaml: no such file or directory",
        "nope: no such file or directory",
    ]
    assert [s.name for s in result.specs] == ["a"]
    assert result.failed_files == {"nope", "gone.yaml"}
    assert result.files == ("a.yaml",)
    assert discover(["a.yaml", "nope"]) == [Path("a.yaml")]


def test_broken_symlink_is_a_problem(here: Path) -> None:
    (here / "conf").mkdir()
    os.symlink("..data/gone.yaml", here / "conf" / "gone.yaml")
    assert [str(p) for p in load_manifests(["conf"]).problems] == [
        "conf/gone.yaml: is a broken symbolic link"
    ]


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "name: a\nmax_age: 5\n")
    (problem,) = load_manifests([tmp_path]).problems
    assert problem.location == Location(str(tmp_path / "a.yaml"), 2, 10)


def test_empty_directory(here: Path) -> None:
    (here / "conf").mkdir()
    assert load_manifests(["conf"]) == load_manifests([])
    assert load_manifests([]).specs == ()


def test_a_broken_mirror_does_not_look_like_a_default_subject(here: Path) -> None:
    write("a.yaml", "name: copy\nsubjects: [copy]\n")
    write("b.yaml", "name: copy2\nmirror: {name: copy, opt_start_seq: x}\n---\nname: copy3\n")
    assert [str(p) for p in load_manifests(["."]).problems] == [
        "b.yaml:2:37: mirror.opt_start_seq: 'x' is not a number; write a whole number"
    ]


def test_other_kinds_are_not_checked_further(here: Path) -> None:
    write("m.yaml", "reconcile: {drift: nope}\nmax_msg: 1\nkind: KeyValue\n")
    assert [str(p) for p in load_manifests(["m.yaml"]).problems] == [
        "m.yaml:3:7: kind: unsupported kind 'KeyValue'; "
        "the only supported kind is Stream, the default without kind"
    ]


def test_policy_defaults_and_shapes(here: Path) -> None:
    write("a.yaml", "name: a\n")
    assert load_or_raise(["a.yaml"])[0].policy == Policy()
    write("b.yaml", "name: b\nreconcile: true\n")
    assert [str(p) for p in load_manifests(["b.yaml"]).problems] == [
        "b.yaml:2:12: reconcile: expected a mapping, got a boolean; "
        "write allow_data_loss, drift or ignore_fields indented below reconcile:"
    ]


def test_same_file_named_twice_is_read_once(here: Path) -> None:
    write("a.yaml", "name: a\n")
    result = load_manifests(["a.yaml", "./a.yaml", str(here / "a.yaml"), "."])
    assert result.files == ("a.yaml",)
    assert result.problems == ()


def test_sealed_is_left_to_the_plan(here: Path) -> None:
    # the server takes `sealed` on update only; deciding how to get there is the plan's job
    write("m.yaml", "name: archive\nsealed: true\ndeny_delete: true\n")
    (spec,) = load_or_raise(["m.yaml"])
    assert spec.config["sealed"] is True


# --- what the server refuses, said before apply ------------------------------------------------

HINT = (
    "write a subject whose tokens are literals, $n or {{wildcard(n)}} for the source's n-th "
    "'*', other functions of them, and '>' at the end when the source ends in '>'"
)

SERVER_RULES = [
    (
        "mirror_direct without a mirror",
        "name: a\nmirror_direct: true\n",
        [
            "m.yaml:2:16: mirror_direct: mirror_direct serves direct gets for a mirror's origin, "
            "and this stream has no mirror; remove mirror_direct, or add a mirror"
        ],
    ),
    (
        "republish from a literal to a '>' destination",
        "name: a\nsubjects: [x.a]\nrepublish: {src: x.a, dest: rp.x.>}\n",
        [
            "m.yaml:3:29: republish.dest: 'rp.x.>' ends in '>', which only a source ending in "
            f"'>' can fill; {HINT}"
        ],
    ),
    (
        "a mirror of a stream with direct gets, and a smaller max_msg_size",
        "name: o\nallow_direct: true\nmax_msg_size: 1KiB\n---\n"
        "name: m\nmirror: {name: o}\nmax_msg_size: 100\n",
        [
            "m.yaml:6:16: mirror.name: stream 'o' allows direct gets, so its mirror serves them "
            "too and the server wants that written; write mirror_direct: true",
            "m.yaml:7:15: max_msg_size: 100 is below the max_msg_size of stream 'o' (1024), which "
            "this stream mirrors; write at least 1024, or remove max_msg_size",
        ],
    ),
    (
        "mirror_direct on a mirror of a stream without direct gets",
        "name: o\n---\nname: m\nmirror: {name: o}\nmirror_direct: true\n",
        [
            "m.yaml:5:16: mirror_direct: stream 'o' does not allow direct gets, so its mirror "
            "cannot serve them; remove mirror_direct, or write allow_direct: true in 'o'"
        ],
    ),
    (
        "a source with a smaller max_msg_size",
        "name: o\nmax_msg_size: 1KiB\n---\nname: s\nsources: [{name: o}]\nmax_msg_size: 1000\n",
        [
            "m.yaml:6:15: max_msg_size: 1000 is below the max_msg_size of stream 'o' (1024), "
            "which this stream sources; write at least 1024, or remove max_msg_size"
        ],
    ),
    (
        "a counter stream with delete markers",
        "name: c\nallow_msg_counter: true\nsubject_delete_marker_ttl: 1s\n",
        [
            "m.yaml:2:20: allow_msg_counter: a counter stream cannot use message TTLs, which "
            "subject_delete_marker_ttl turns on; remove subject_delete_marker_ttl"
        ],
    ),
    (
        "a NUL in a stream name",
        'name: "a\\0b"\n',
        ["m.yaml:1:7: name: 'a\x00b' contains a NUL character, which a name cannot have; "
         "write 'a_b'"],
    ),
    (
        "a stream that sources itself",
        "name: a\nsources: [{name: a}]\n",
        [
            "m.yaml:2:18: sources.0.name: reading from 'a' leads back to stream 'a': the server "
            "refuses a cycle of mirrors and sources; remove this mirror or source, or give the "
            "sources on the way a filter_subject that the subjects of the stream they read from "
            "do not match"
        ],
    ),
    (
        "two streams that source each other",
        "name: a\nsubjects: [a]\nsources: [{name: b}]\n---\n"
        "name: b\nsubjects: [b]\nsources: [{name: a}]\n",
        [
            "m.yaml:3:18: sources.0.name: reading from 'b' leads back to stream 'a': the server "
            "refuses a cycle of mirrors and sources; remove this mirror or source, or give the "
            "sources on the way a filter_subject that the subjects of the stream they read from "
            "do not match",
            "m.yaml:7:18: sources.0.name: reading from 'a' leads back to stream 'b': the server "
            "refuses a cycle of mirrors and sources; remove this mirror or source, or give the "
            "sources on the way a filter_subject that the subjects of the stream they read from "
            "do not match",
        ],
    ),
    (
        "wildcard(5) with one wildcard",
        'name: a\nsubjects: [a.*]\nsubject_transform: {src: a.*, dest: "x.{{wildcard(5)}}"}\n',
        [
            "m.yaml:3:37: subject_transform.dest: {{wildcard(5)}} refers to wildcard 5, but the "
            f"source 'a.*' has only 1 '*' wildcard; {HINT}"
        ],
    ),
    (
        "a mirror transform with an unknown function",
        'name: a\nmirror:\n  name: o\n  subject_transforms: [{src: o.*, dest: "x.{{upper(1)}}"}]\n',
        [
            "m.yaml:4:41: mirror.subject_transforms.0.dest: {{upper(1)}} is not a known function "
            "(functions are {{wildcard(n)}} (or $n), {{partition(count,n...)}}, {{split(n,sep)}}, "
            "{{splitFromLeft(n,pos)}}, {{splitFromRight(n,pos)}}, {{sliceFromLeft(n,size)}}, "
            "{{sliceFromRight(n,size)}}, {{left(n,len)}}, {{right(n,len)}}, {{random(count)}}, "
            f"where n counts the source's '*' wildcards from 1); {HINT}"
        ],
    ),
    (
        "name and description measured in bytes",
        f"name: {'é' * 130}\ndescription: {'é' * 2100}\n",
        [
            "m.yaml:1:7: name: the name takes 260 bytes in UTF-8, more than 255; shorten it to "
            "at most 255 bytes (a non-ASCII character takes 2 to 4)",
            "m.yaml:2:14: description: the text takes 4200 bytes in UTF-8, more than 4096; "
            "shorten it to at most 4096 bytes (a non-ASCII character takes 2 to 4)",
        ],
    ),
    (
        "an external source through this server's own API",
        "name: a\nsources: [{name: b, external: {api: $JS.API}}]\n",
        [
            "m.yaml:2:37: sources.0.external.api: '$JS.API' overlaps this server's own API "
            "($JS.API); write the prefix under which the other domain's API is imported, such "
            "as '$JS.hub.API'"
        ],
    ),
    (
        "one durable consumer for two sources of a stream",
        "name: a\nsources:\n"
        "  - {name: b, consumer: {name: d, deliver_subject: x},"
        " subject_transforms: [{src: b.a, dest: b.a}]}\n"
        "  - {name: b, consumer: {name: d, deliver_subject: y}}\n",
        [
            "m.yaml:4:32: sources.1.consumer.name: consumer 'd' of stream 'b' already sources it "
            "at line 3; give each source of one stream its own consumer name"
        ],
    ),
    (
        "a delivery prefix that the origin's subjects match",
        "name: o\nsubjects: ['*.>']\nno_ack: true\n---\nname: a\n"
        "sources: [{name: o}, {name: b, external: {api: $JS.hub.API, deliver: dl}}]\n",
        [
            "m.yaml:6:70: sources.1.external.deliver: messages delivered under 'dl' would match "
            "the subject '*.>' of a stream this one reads from; choose a delivery prefix that no "
            "subject of those streams matches"
        ],
    ),
    (
        "'>' to '>' beside a transform of the only subject",
        "name: a\nsubjects: [a]\nsubject_transform: {src: a, dest: b}\n"
        "republish: {src: '>', dest: '>'}\n",
        [
            "m.yaml:4:12: republish: '>' to '>' next to a subject_transform of the stream's only "
            "subject would be read by the server as a republish of 'b'; write src: 'b' and "
            "dest: 'b'"
        ],
    ),
    (
        "overlapping filters of a source are fine unless one contains the other",
        "name: a\nsources:\n  - name: o\n    subject_transforms:\n"
        "      - {src: 'o.*.b', dest: ''}\n      - {src: 'o.a.*', dest: ''}\n"
        "      - {src: 'o.a.b', dest: ''}\n",
        [
            "m.yaml:7:15: sources.0.subject_transforms.2.src: 'o.a.b' overlaps 'o.*.b' (line 5); "
            "the filters of one source must not overlap: narrow one of them"
        ],
    ),
    (
        "lone surrogates in a name, a description and a metadata key",
        'name: "a\\uD800"\ndescription: "x\\ud83d\\ude00"\nmetadata:\n  "k\\udc00": v\n',
        [
            "m.yaml:1:7: name: 'a\\ud800' contains \\ud800, half of a UTF-16 surrogate pair, which "
            "is not a character; remove the escape, or write the character it stands for",
            "m.yaml:2:14: description: 'x\\ud83d\\ude00' contains \\ud83d, half of a UTF-16 "
            "surrogate pair, which is not a character; write the character itself, or as one "
            "escape: \\U0001F600 instead of \\ud83d\\ude00",
            "m.yaml:4:3: metadata.k\\udc00: 'k\\udc00' contains \\udc00, half of a UTF-16 "
            "surrogate pair, which is not a character; remove the escape, or write the "
            "character it stands for",
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in SERVER_RULES], ids=[c[0] for c in SERVER_RULES]
)
def test_server_rules(here: Path, text: str, expected: list[str]) -> None:
    write("m.yaml", text)
    assert [str(p) for p in load_manifests(["m.yaml"]).problems] == expected


def test_a_republish_without_src_republishes_everything(here: Path) -> None:
    """The server's default src is '>', but a pedantic create refuses a missing one."""
    write("m.yaml", "name: a\nsubjects: [a.*]\nrepublish: {dest: 'rp.>'}\n")
    (spec,) = load_or_raise(["m.yaml"])
    assert desired_config(spec, None)["republish"] == {"src": ">", "dest": "rp.>"}


# --- only regular files are read --------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_not_read(here: Path) -> None:
    os.mkfifo("given.yaml")
    Path("dir").mkdir()
    os.mkfifo("dir/found.yaml")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("dir/sock.yaml")
        assert [str(p) for p in load_manifests(["given.yaml", "dir"]).problems] == [
            "dir/found.yaml: is a named pipe (FIFO): manifests are read from regular files "
            "only; give the path of a manifest file, or of a directory of them",
            "dir/sock.yaml: is a socket: manifests are read from regular files only; give the "
            "path of a manifest file, or of a directory of them",
            "given.yaml: is a named pipe (FIFO): manifests are read from regular files only; "
            "give the path of a manifest file, or of a directory of them",
        ]


@pytest.mark.timeout(20)
def test_a_device_is_refused_not_read(here: Path) -> None:
    assert [str(p) for p in load_manifests(["/dev/zero"]).problems] == [
        "/dev/zero: is a character device: manifests are read from regular files only; "
        "give the path of a manifest file, or of a directory of them"
    ]


# --- the subject index: one walk, the same answer as comparing with every subject -------------


def _random_subject(rng: random.Random) -> str:
    tokens = [rng.choice(("a", "b", "c", "*")) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        tokens[-1] = ">"
    return ".".join(tokens)


@pytest.mark.parametrize("seed", range(20))
def test_subject_index_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    index: SubjectIndex[int] = SubjectIndex()
    added: list[str] = []
    for _ in range(200):
        subject = _random_subject(rng)
        expected = next((i for i, s in enumerate(added) if subjects_collide(subject, s)), None)
        assert index.first_collision(subject) == expected, (seed, subject, added)
        if rng.random() < 0.5:
            index.add(subject, len(added))
            added.append(subject)


def test_twenty_thousand_subjects_in_one_stream(here: Path) -> None:
    """Validates at all: 5,000 took 35 s when each subject was compared with every other."""
    subjects = [f"app.s{i}.>" for i in range(10_000)] + [f"other.{i}.*" for i in range(9_999)]
    line = f"subjects: [{', '.join(subjects)}, app.s42.x]"
    write("m.yaml", f"name: big\n{line}\n")
    result = load_manifests(["m.yaml"])
    column = line.index("app.s42.x") + 1
    assert [str(p) for p in result.problems] == [
        f"m.yaml:2:{column}: subjects.19999: 'app.s42.x' overlaps 'app.s42.>' (line 2); "
        "remove 'app.s42.x': 'app.s42.>' already covers it"
    ]


def test_subject_index_work_grows_linearly() -> None:
    """One walk per subject, as long as the subject: the work for 20,000 subjects is a small
    multiple of their tokens, where comparing each with every other took 200 million steps."""
    index: SubjectIndex[int] = SubjectIndex()
    for i in range(10_000):
        for subject in (f"app.s{i}.>", f"other.{i}.*"):
            assert index.first_collision(subject) is None
            index.add(subject, i)
    assert index.first_collision("app.s42.x") == 42
    tokens = 20_000 * 3
    assert index.visits < 4 * tokens


def test_places_are_packed_and_read_back() -> None:
    places = Places("a.yaml", {"max_age": Places.pack(3, 10),
                               "sources.0.name": Places.pack(70_000, 2**31)})
    assert dict(places) == {
        "max_age": Location("a.yaml", 3, 10),
        "sources.0.name": Location("a.yaml", 70_000, 2**31),
    }
    assert "max_age" in places and "max_msgs" not in places and len(places) == 2
    with pytest.raises(KeyError):
        places["max_msgs"]


def test_a_loaded_stream_knows_where_each_field_is(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: a\nsubjects:\n  - a.>\nmax_age: 1h\n---\nname: b\n  # note\nmax_msgs: 5\n")
    a, b = load_manifests([str(tmp_path)]).specs
    file = str(tmp_path / "s.yaml")
    assert a.where("subjects.0") == Location(file, 3, 5)
    assert a.where("max_age") == Location(file, 4, 10)
    assert a.where("max_age.nothing") == Location(file, 4, 10)
    assert b.where("max_msgs") == Location(file, 8, 11)
    assert b.where("max_bytes") == b.location == Location(file, 6, 1)
