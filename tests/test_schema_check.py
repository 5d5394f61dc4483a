"""The fast schema test (`_fits`) that lets valid documents skip jsonschema agrees with
jsonschema on every generated configuration: it never passes a value the validator would
report (which would lose a problem), and it passes every value the validator accepts (or
the fast path would not be taken). Seeds: `JSR_SCHEMA_SEEDS` (default 1500)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from reconciler import manifest
from tests import corpus

SEEDS = int(os.environ.get("JSR_SCHEMA_SEEDS", "1500"))


def agree(config: Any) -> tuple[bool, list[str]]:
    errors = [e.message for e in manifest._validator().iter_errors(config)]
    return manifest._fits()(config) == (not errors), errors


def test_the_whole_schema_compiles() -> None:
    manifest._compile(manifest._manifest_schema())  # raises on a keyword it does not know


def test_agrees_with_jsonschema_on_the_corpus() -> None:
    checked = refused = 0
    for seed in range(SEEDS):
        for config in corpus.case(seed):
            same, errors = agree(config)
            assert same, f"seed {seed}: {config} -> {errors}"
            checked += 1
            refused += bool(errors)
    assert refused and refused < checked  # both ways are exercised


@pytest.mark.parametrize(
    "config",
    [
        {"name": "a", "num_replicas": True},  # a boolean is no integer
        {"name": "a", "max_msgs": -2},
        {"name": "a", "max_msg_size": 2**31},
        {"name": "a", "description": "x" * 5000},
        {"name": "a", "storage": "disk"},
        {"name": "a", "storage": 1},
        {"name": "a", "subjects": "a.b"},
        {"name": "a", "subjects": ["a", 1]},
        {"name": "a", "mirror": {}},
        {"name": "a", "mirror": {"name": ""}},
        {"name": "a", "mirror": {"name": "b", "bogus": 1}},
        {"name": "a", "metadata": {"k": 1}},
        {"name": "a", "placement": {"tags": [1]}},
        {"name": "a", "sources": [{"name": "b", "subject_transforms": [{"src": "x"}]}]},
        {"name": "a", "republish": {"dest": ""}},
        {"name": ""},
        {"name": None},
        {},
    ],
)
def test_agrees_with_jsonschema_on_edge_values(config: dict[str, Any]) -> None:
    same, errors = agree(config)
    assert same, errors


def test_says_no_when_unsure() -> None:
    """jsonschema takes 1.0 as an integer; the fast test does not, and the validator decides
    (YAML gives the reader no such value: it reports 1.0 as not a whole number)."""
    config = {"name": "a", "num_replicas": 1.0}
    assert not list(manifest._validator().iter_errors(config))
    assert not manifest._fits()(config)
