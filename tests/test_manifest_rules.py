"""The rule table of manifests, as pure functions: a configuration in, findings out."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.manifest.facts import Facts, Finding
from reconciler.manifest.rules import RULES, Check, Rule, check_config
from reconciler.manifest.tree import stream_fields
from reconciler.model import Location


def findings(config: dict[str, Any], raw: dict[str, str] | None = None) -> list[Finding]:
    lines = {path: i + 1 for i, path in enumerate(config)}
    facts = Facts(config, raw or {}, lambda p: Location("m.yaml", lines.get(p.split(".")[0], 0)))
    return list(check_config(facts))


def test_every_row_is_triggered_by_a_field_of_the_configuration() -> None:
    """A row runs only when its field is set: a misspelt field would switch the rule off."""
    top = stream_fields().fields
    assert all(rule.field in top for rule in RULES), [r.field for r in RULES if r.field not in top]
    assert any(isinstance(r, Check) for r in RULES) and any(isinstance(r, Rule) for r in RULES)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"name": "a", "subjects": ["a"]}, []),
        (
            {"name": "a", "num_replicas": 7},
            [("num_replicas", "7 is out of range", "write a number from 1 to 5")],
        ),
        (
            {"name": "a", "max_age": 10_000_000},
            [("max_age", "10ms is below the minimum of 100ms",
              "write at least 100ms, or 0 for no age limit")],
        ),
        (  # the duration as written, not as read
            {"name": "a", "max_age": 60_000_000_000, "duplicate_window": 120_000_000_000},
            [("duplicate_window", "120s is longer than max_age (1m)", "write at most 1m")],
        ),
        (
            {"name": "a", "allow_msg_counter": True, "discard": "new", "retention": "work_queue"},
            [
                ("allow_msg_counter", "a counter stream cannot use discard: new",
                 "remove discard: new"),
                ("allow_msg_counter", "a counter stream needs retention: limits",
                 "write retention: limits, or leave retention out"),
            ],
        ),
        (
            {"name": "a", "mirror": {"name": "b"}, "subjects": ["a"]},
            [("subjects", "a mirror stores its origin's subjects: it cannot have subjects of "
              "its own", "remove subjects, or the mirror")],
        ),
        (
            {"name": "a", "subjects": ["a.*", "a.b"]},
            [("subjects.1", "'a.b' overlaps 'a.*' (line 2)",
              "remove 'a.b': 'a.*' already covers it")],
        ),
        (
            {"name": "a", "persist_mode": "async", "storage": "memory", "num_replicas": 3},
            [
                ("persist_mode", "async persistence needs file storage",
                 "remove persist_mode, or use storage: file"),
                ("persist_mode", "async persistence does not work with num_replicas above 1",
                 "remove persist_mode, or use num_replicas: 1"),
            ],
        ),
    ],
)  # fmt: skip
def test_rules(config: dict[str, Any], expected: list[Finding]) -> None:
    raw = {"duplicate_window": "120s"} if "duplicate_window" in config else None
    assert findings(config, raw) == expected
