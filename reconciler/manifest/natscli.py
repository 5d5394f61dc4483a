"""natscli's stream configuration files read as they are: the JSON that
`nats stream add --config FILE` reads and `nats stream info --json` prints (the latter with
the configuration under `config`, beside the stream's state).

A JSON document is YAML, so it is composed like any manifest, and every problem is at its line
and column. What differs from a manifest of ours is made ours here, node by node:
- durations are integer nanoseconds, as on the wire (a bare number is an error in YAML);
- `metadata` keys starting with `_nats.` are the server's, which it writes itself, and those
  starting with `jetstream-reconciler/` record ownership, which apply writes itself: left out.
"""

from __future__ import annotations

from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.fields import DURATIONS
from reconciler.manifest.reader import DocumentReader
from reconciler.manifest.yamlparse import INT, construct_int
from reconciler.plan.ownership import is_reserved

SUFFIX: Final = ".json"
_STR: Final = "tag:yaml.org,2002:str"


def translate(d: DocumentReader, node: Node) -> Node:
    """The manifest of a natscli configuration (bare, or as `stream info --json` prints
    it); anything else as it is, for the reader to report."""
    if not isinstance(node, MappingNode):
        return node
    names = {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}
    if "config" in names and "name" not in names:
        node = names["config"]
        d.shown_path = lambda path: f"config.{path}" if path else path
        if not isinstance(node, MappingNode):
            return node
    return _walk(d, node, "")


def _walk(d: DocumentReader, node: Node, pattern: str) -> Node:
    if isinstance(node, ScalarNode):
        if pattern in DURATIONS and node.tag == INT:
            # nanoseconds, as the API writes them: the reader reads "<n>ns" exactly
            return ScalarNode(_STR, f"{construct_int(node)}ns", node.start_mark, node.end_mark)
        return node
    if isinstance(node, SequenceNode):
        return SequenceNode(node.tag, [_walk(d, item, f"{pattern}.*") for item in node.value],
                            node.start_mark, node.end_mark)
    if not isinstance(node, MappingNode):
        return node
    out: list[tuple[Node, Node]] = []
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) else ""
        path = f"{pattern}.{name}" if pattern else name
        if pattern == "metadata" and name.startswith("_nats."):
            d.add_note(key, "metadata", f"'{name}' left out: the server writes its _nats.* keys "
                   "itself")
            continue
        if pattern == "metadata" and is_reserved(name):
            d.add_note(key, "metadata", f"'{name}' left out: the reconciler records ownership "
                   "there itself")
            continue
        value = _walk(d, value, path)
        if path == "metadata" and isinstance(value, MappingNode) and not value.value:
            continue  # only the server's keys: nothing of the user's
        out.append((key, value))
    return MappingNode(node.tag, out, node.start_mark, node.end_mark)
