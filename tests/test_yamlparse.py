"""The YAML front end: libyaml's composer with tags resolved once per distinct scalar gives
the very node trees PyYAML's libyaml loader gives."""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.manifest import yamlparse

SCALARS = [
    "", "~", "null", "Null", "NULL", "yes", "No", "on", "OFF", "true", "False", "y", "n",
    "0", "-1", "+7", "1_000", "0x1f", "0o17", "017", "0b101", "1:30", "1.5", "-.5", ".inf",
    "-.Inf", ".nan", "1e3", "1.0e+3", "2024-01-31", "2024-01-31T12:00:00Z", "<<", "=",
    "1d", "64KiB", "unlimited", "s1.>", "events.*", "text with spaces",
]


def shape(node: Node) -> object:
    if isinstance(node, ScalarNode):
        return (node.tag, node.value, node.style, node.start_mark.line, node.start_mark.column)
    if isinstance(node, SequenceNode):
        return (node.tag, [shape(n) for n in node.value])
    assert isinstance(node, MappingNode)
    return (node.tag, [(shape(k), shape(v)) for k, v in node.value])


def test_tags_are_pyyamls_whatever_the_order_and_quoting() -> None:
    docs = []
    for quote in ("", "'", '"'):
        lines = [f"k{i}: {quote}{s}{quote}" for i, s in enumerate(SCALARS)]
        lines.append("list: [" + ", ".join(f"{quote}{s}{quote}" for s in SCALARS if s) + "]")
        docs.append("\n".join(lines))
    text = "\n---\n".join(docs * 2)  # twice: the second time from what was remembered
    ours = [shape(n) for n in yamlparse.compose(text)]
    assert ours == [shape(n) for n in yaml.compose_all(text, Loader=yaml.CSafeLoader)]
    assert len(ours) == 6
    # and the pure-Python parser (used to word YAML errors) gives every node the same tag
    assert tags(ours) == tags([shape(n) for n in yaml.compose_all(text, Loader=yaml.SafeLoader)])


def tags(shapes: object) -> list[str]:
    if isinstance(shapes, str):
        return [shapes] if shapes.startswith("tag:") else []
    if isinstance(shapes, list | tuple):
        return [t for s in shapes for t in tags(s)]
    return []
