"""The field registry against the vendored JSON Schema it is built from, and the plan's
canonical form and blockers against the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from reconciler import fields
from reconciler.fields import STREAM, Field
from reconciler.fields.registry import from_schema
from reconciler.fields.stream import OVERRIDES, PROVENANCE
from reconciler.plan import BOOLEANS, KNOWN_FIELDS, ONE_WAY, blocked_reasons, canonical
from reconciler.report import show_value

SCHEMA: dict[str, Any] = json.loads(
    files("reconciler").joinpath("schema/stream_configuration.schema.json").read_text()
)


def schema_fields(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, sub in schema.get("properties", {}).items():
        yield prefix + name, sub
        yield from schema_fields(sub, f"{prefix}{name}.")
        yield from schema_fields(sub.get("items") or {}, f"{prefix}{name}.*.")


def test_one_row_per_schema_field() -> None:
    assert [path for path, _ in schema_fields(SCHEMA)] == list(STREAM.rows)
    assert set(SCHEMA["properties"]) == KNOWN_FIELDS


def test_rows_say_what_the_schema_says() -> None:
    for path, sub in schema_fields(SCHEMA):
        row, override = STREAM[path], OVERRIDES.get(path, {})
        kind = sub["type"] if isinstance(sub["type"], str) else sub["type"][0]
        if kind == "object" and "properties" not in sub:
            kind = "map"
        assert row.type == kind, path
        assert row.enum == tuple(sub.get("enum", ())), path
        assert (row.minimum, row.maximum, row.max_length) == (
            sub.get("minimum"), sub.get("maximum"), sub.get("maxLength")), path
        assert row.default == override.get("default", sub.get("default")), path


def test_units_come_from_the_schema_and_two_overrides() -> None:
    durations = {p for p, s in schema_fields(SCHEMA) if "nanoseconds" in s.get("$comment", "")}
    timestamps = {p for p, s in schema_fields(SCHEMA) if s.get("format") == "date-time"}
    assert durations == fields.DURATIONS
    assert timestamps == fields.TIMESTAMPS
    assert {p for p, o in OVERRIDES.items() if o.get("unit") == "size"} == fields.SIZES
    counts = {"max_msgs", "max_msgs_per_subject", "max_consumers",
              "consumer_limits.max_ack_pending"}
    assert counts == fields.COUNTS


def test_overrides_name_only_schema_fields() -> None:
    with pytest.raises(ValueError, match="max_agee"):
        from_schema("stream", SCHEMA, {"max_agee": {"unit": "duration"}})


def test_the_vendored_schema_says_where_it_came_from() -> None:
    sources = (Path(fields.__file__).parent / "SOURCES.md").read_text()
    for value in PROVENANCE.values():
        assert value in sources
    assert (Path(fields.__file__).parent.parent / "schema" / Path(
        PROVENANCE["vendored_as"]).name).is_file()


def test_an_empty_stream_is_the_registrys_defaults() -> None:
    config = canonical({"name": "x"})
    for row in STREAM.top():
        if row.canon == "default":
            assert config[row.path] == row.default, row.path
        elif row.canon == "flag":
            assert config[row.path] is False, row.path
        elif row.canon == "unlimited":
            assert config[row.path] == -1, row.path
        elif row.canon in ("omit", "nested"):
            assert row.path not in config, row.path
    assert set(BOOLEANS) == {f.path for f in STREAM.top() if f.type == "boolean"}


@pytest.mark.parametrize("row", [f for f in STREAM.top() if f.unlimited == -1],
                         ids=lambda f: f.path)
def test_unlimited_has_one_spelling(row: Field) -> None:
    for written in (0, -1, -5, None):
        assert canonical({"name": "x", row.path: written})[row.path] == -1


@pytest.mark.parametrize("path", ONE_WAY)
def test_one_way_fields_cannot_be_turned_off(path: str) -> None:
    live = canonical({"name": "x", path: True})
    desired = {**live, path: False}
    assert f"{path} cannot be turned off once on; keep {path}: true" in blocked_reasons(
        desired, live)
    assert not [r for r in blocked_reasons(live, {**live, path: False}) if path in r]


def test_the_blocked_fields() -> None:
    blocked = {f.path for f in STREAM if f.blocker is not None}
    assert blocked == {"storage", "retention", "mirror", "allow_msg_counter", "persist_mode",
                       *ONE_WAY}
    assert set(ONE_WAY) == {"sealed", "deny_delete", "deny_purge", "allow_msg_ttl",
                            "allow_msg_schedules"}


def test_display_order() -> None:
    names = sorted(["metadata", "max_age", "allow_direct", "name", "subjects", "max_msgs"],
                   key=STREAM.order_key)
    assert names == ["name", "subjects", "max_msgs", "max_age", "allow_direct", "metadata"]


@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        ("max_age", 90 * 1_000_000_000, "1m30s"),
        ("consumer_limits.inactive_threshold", 1_000_000_000, "1s"),
        ("max_bytes", 1024, "1KiB"),
        ("max_msgs", -1, "unlimited"),
        ("consumer_limits.max_ack_pending", -1, "unlimited"),
        ("max_msgs", 5, "5"),
        ("first_seq", 5, "5"),
        ("sealed", True, "true"),
    ],
)
def test_values_are_shown_in_the_registrys_units(path: str, value: Any, shown: str) -> None:
    assert show_value(path, value) == shown


def test_the_manifest_readers_field_tree_has_the_registrys_fields() -> None:
    """The reader's field tree: the same paths, kinds and allowed values as the rows. (The
    manifest rules read their minimums, mirror fields and hints from the registry.)"""
    from reconciler.manifest import tree

    assert tree.config_paths() == list(STREAM.rows)
    for row in STREAM:
        node = tree.stream_fields()
        for part in row.path.split("."):
            node = node.item if part == "*" else node.fields[part]  # type: ignore[assignment]
        assert (node.kind, node.enum) == (row.kind, row.enum), row.path


def test_the_typed_stream_config_is_generated_from_the_schema() -> None:
    from reconciler.fields import generate

    assert generate.TARGET.read_text() == generate.render(SCHEMA), (
        "run: python -m reconciler.fields.generate")
    # and it can fail: another schema gives another file
    other = {**SCHEMA, "properties": {**SCHEMA["properties"], "allow_x": {"type": "boolean"}}}
    assert "    allow_x: bool\n" in generate.render(other)
