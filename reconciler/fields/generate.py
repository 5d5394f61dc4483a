"""Writes `stream_config.py`: the stream configuration as `TypedDict`s, from the vendored
schema, so that mypy catches a misspelt field where a configuration is typed.

    python -m reconciler.fields.generate        # rewrite it after the schema changes

`tests/test_fields.py` checks that the committed file is what this writes.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.fields.registry import load_schema

TARGET = Path(__file__).with_name("stream_config.py")

#: the class for an object field (by its name, at any depth); list elements take the name
#: of their list
_CLASSES = {
    "": "StreamConfig",
    "subject_transform": "SubjectTransform",
    "subject_transforms": "SubjectTransform",
    "placement": "Placement",
    "mirror": "StreamSource",
    "sources": "StreamSource",
    "consumer": "SourceConsumer",
    "external": "ExternalStream",
    "republish": "RePublish",
    "consumer_limits": "ConsumerLimits",
}

_HEADER = '''"""The stream configuration as `TypedDict`s (every key optional: a manifest names only
what it sets). Generated from the vendored schema by `python -m reconciler.fields.generate`;
do not edit by hand."""

from __future__ import annotations

from typing import TypedDict
'''


def render(schema: Mapping[str, Any]) -> str:
    """The module text for `schema`."""
    classes: dict[str, str] = {}
    _class(classes, "", schema)
    return _HEADER + "".join(f"\n\n{body}" for body in classes.values())


def _class(classes: dict[str, str], name: str, schema: Mapping[str, Any]) -> str:
    """The class for the object `schema` (its nested classes first); its name."""
    cls = _CLASSES[name]
    lines = [f"class {cls}(TypedDict, total=False):"]
    for key, sub in schema["properties"].items():
        comment = "  # nanoseconds" if "nanoseconds" in sub.get("$comment", "") else ""
        lines.append(f"    {key}: {_type(classes, key, sub)}{comment}")
    body = "\n".join(lines) + "\n"
    if classes.setdefault(cls, body) != body:
        raise ValueError(f"{cls} stands for two different objects ({name})")
    return cls


def _type(classes: dict[str, str], key: str, schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    nullable = isinstance(kind, list) and "null" in kind
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object" and "properties" in schema:
        text = _class(classes, key, schema)
    elif kind == "object":
        text = f"dict[str, {_type(classes, key, schema.get('additionalProperties', {}))}]"
    elif kind == "array":
        text = f"list[{_type(classes, key, schema.get('items', {}))}]"
    else:
        text = {"string": "str", "integer": "int", "boolean": "bool"}[str(kind)]
    return f"{text} | None" if nullable else text


def main() -> int:
    TARGET.write_text(render(load_schema("stream_configuration")), encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
