"""Reading one manifest file's text: each YAML document in turn, with a `DocumentReader` of
its own, into immutable `Document`s and the problems of the file as a whole."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from reconciler.manifest import nack, natscli
from reconciler.manifest.facts import Facts
from reconciler.manifest.reader import Document, DocumentReader, FileState, TooManyNodes
from reconciler.manifest.rules import check_config
from reconciler.manifest.schemacheck import check_schema
from reconciler.manifest.tree import Field, config_paths, is_config_path, stream_fields
from reconciler.manifest.values import Pairs, object_fields, pairs, read, unknown
from reconciler.manifest.words import and_, suggest
from reconciler.manifest.yamlparse import (
    NULL,
    compose,
    decode_problem,
    is_empty,
    node_kind,
    reader_problem,
    yaml_problem,
)
from reconciler.model import DriftMode, Location, Policy, Problem, StreamSpec

SUPPORTED_KINDS: Final = ("Stream",)
RECONCILE_FIELDS: Final = ("allow_data_loss", "drift", "ignore_fields")

#: what one file parses to: its documents, and the problems of the file as a whole
Parsed = tuple[tuple[Document, ...], tuple[Problem, ...]]

DEFAULT_POLICY = Policy()
"""a document without a `reconcile:` block: one shared (frozen) instance"""


def parse_file(name: str, data: bytes) -> Parsed:
    """Parse and check one file's bytes."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return (), (decode_problem(name, data, exc),)
    state = FileState.for_text(name, text)
    natscli_json = name.lower().endswith(natscli.SUFFIX)
    if natscli_json:
        text = text.replace("\t", " ")  # JSON allows tabs between tokens, YAML does not
    docs: list[Document] = []
    problems: list[Problem] = []
    reading: DocumentReader | None = None
    try:
        for node in compose(text):
            if not is_empty(node):
                reading = DocumentReader(state, node)
                docs.append(read_document(reading, node, natscli_json))
                reading = None
    except yaml.MarkedYAMLError as exc:
        problem = yaml_problem(name, exc)
        if natscli_json:
            problem = replace(problem, message=problem.message.replace("YAML", "JSON", 1))
        problems.append(problem)
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        problems.append(reader_problem(name, text, exc))
    except RecursionError:
        problems.append(
            Problem(Location(name), "", "the YAML is nested too deeply", "flatten the structure")
        )
    except TooManyNodes:
        problems.append(
            Problem(
                Location(name),
                "",
                f"the file expands to more than {state.node_budget} YAML nodes "
                "(aliases of aliases?)",
                "write the values out instead of nesting aliases",
            )
        )
        if reading is not None:
            docs.append(reading.finish(failed=True))
    if state.dropped:
        problems.append(
            Problem(
                Location(name),
                "",
                f"{state.dropped} more problems in this file are not shown",
                "fix the ones shown first",
            )
        )
    return tuple(docs), tuple(problems)


def read_document(d: DocumentReader, node: Node, natscli_json: bool = False) -> Document:
    """One document, checked; TooManyNodes only when the whole file is spent. A NACK Stream
    object, or (in a `.json` file) a natscli configuration, is read as the manifest it
    means."""
    try:
        if nack.is_kubernetes(node):
            assert isinstance(node, MappingNode)
            translated = nack.translate(d, node)
            if translated is None:
                return d.finish()
            node = translated
        elif natscli_json:
            node = natscli.translate(d, node)
        return _check_document(d, node)
    except TooManyNodes:
        if d.spent:
            raise  # the whole file is too much: stop reading it
        d.too_many_nodes()
        return d.finish()


def _check_document(d: DocumentReader, node: Node) -> Document:
    if not isinstance(node, MappingNode):
        d.add(
            node,
            "",
            f"a stream manifest is a mapping of fields, got {node_kind(node)}",
            "start the document with 'name: <stream name>'",
        )
        return d.finish()
    fields = pairs(d, node, "")
    for name, _, value in fields:
        if name == "kind" and not _kind(d, value):
            return d.finish()  # another kind of document: its fields are not ours to check
    config_pairs: Pairs = []
    policy = DEFAULT_POLICY
    for name, key, value in fields:
        if name == "kind":
            continue
        if name == "reconcile":
            d.key_nodes["reconcile"] = key
            policy = _policy(d, value)
        else:
            config_pairs.append((name, key, value))
    config = object_fields(d, config_pairs, stream_fields(), "")
    if "name" not in config and "name" not in d.failed_paths:
        d.add(d.location, "name", "the stream has no name", "add name: <stream name>")
    for finding in check_config(Facts(config, d.raw, d.where)):
        d.fail(*finding)
    check_schema(d, config)
    stream_name = config.get("name")
    if not isinstance(stream_name, str):
        return d.finish()
    spec = StreamSpec(
        name=stream_name,
        config=config,
        policy=policy,
        location=d.location,
        field_locations=d.locations(),
    )
    # whether the subjects it takes are known, for the overlap check across streams
    subjects_ok = not d.failed_paths or not any(
        d.failed_under(p) for p in ("name", "subjects", "mirror", "sources")
    )
    return d.finish(spec, subjects_ok)


def _kind(d: DocumentReader, node: Node) -> bool:
    if isinstance(node, ScalarNode) and node.tag != NULL and node.value in SUPPORTED_KINDS:
        return True
    shown = f"'{node.value}'" if isinstance(node, ScalarNode) else node_kind(node)
    d.add(
        node,
        "kind",
        f"unsupported kind {shown}",
        f"the only supported kind is {and_(SUPPORTED_KINDS)}, the default without kind",
    )
    return False


_DRIFT: Final = Field("text", enum=tuple(m.value for m in DriftMode))
_IGNORE: Final = Field("list", item=Field("text"))


def _policy(d: DocumentReader, node: Node) -> Policy:
    if not isinstance(node, MappingNode):
        d.add(
            node,
            "reconcile",
            f"expected a mapping, got {node_kind(node)}",
            "write allow_data_loss, drift or ignore_fields indented below reconcile:",
        )
        return DEFAULT_POLICY
    allow = False
    drift = DriftMode.ENFORCE
    ignore: list[str] = []
    for name, key, value in pairs(d, node, "reconcile"):
        path = f"reconcile.{name}"
        d.key_nodes[path] = key
        if name == "allow_data_loss":
            got = read(d, value, Field("boolean"), path)
            if isinstance(got, bool):
                allow = got
        elif name == "drift":
            got = read(d, value, _DRIFT, path)
            if isinstance(got, str):
                drift = DriftMode(got)
        elif name == "ignore_fields":
            got = read(d, value, _IGNORE, path)
            if isinstance(got, list):
                ignore.extend(_ignorable(d, got, path))
        else:
            unknown(d, key, path, RECONCILE_FIELDS, "reconcile")
    return Policy(allow_data_loss=allow, drift=drift, ignore_fields=tuple(ignore))


def _ignorable(d: DocumentReader, paths: Iterable[str], at: str) -> list[str]:
    """The field paths of `ignore_fields` that name configuration fields; others reported."""
    out: list[str] = []
    for index, path in enumerate(paths):
        where = f"{at}.{index}"
        if path == "name":
            d.add(where, where, "the name cannot be ignored: it identifies the stream", "remove it")
        elif is_config_path(path):
            out.append(path)
        else:
            guess = suggest(path, config_paths())
            d.add(
                where,
                where,
                f"'{path}' is not a stream configuration field",
                f"did you mean '{guess}'?"
                if guess
                else "write a field path such as 'max_age' or 'metadata.owner'",
            )
    return out
