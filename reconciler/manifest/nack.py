"""NACK `Stream` objects read as they are: a Kubernetes object of NACK's (apiVersion
`jetstream.nats.io/v1beta2`, kind `Stream`, camelCase `spec`) becomes the mapping of a
manifest of ours, made of the object's own YAML nodes, so that every problem found later is
still at the line and column where the user wrote the value, and is named by NACK's path
(`spec.maxAge`).

What NACK means differs from the server in a few places, and those are applied here:
- `storage` defaults to `memory` (NACK's CRD), where the server's default is `file`;
- an empty string means "not set" (NACK's controller skips `""` everywhere);
- `preventUpdate: true` (create, never update) becomes `reconcile: {drift: report}`;
- connection fields (`servers`, `creds`, `tls`, `account`, ...) and `preventDelete` have no
  meaning for one stream here: each is a warning saying what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.manifest.reader import DocumentReader
from reconciler.manifest.values import Pairs, pairs, unknown
from reconciler.manifest.words import suggest
from reconciler.manifest.yamlparse import BOOL, NULL, node_kind

GROUP: Final = "jetstream.nats.io"
API_VERSION: Final = f"{GROUP}/v1beta2"
_STR: Final = "tag:yaml.org,2002:str"
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"

#: NACK's name -> ours, for each kind of object in a Stream's spec (a nested table: an
#: object, or a list of objects); `external.api` makes a nested object of ours
Table = Mapping[str, "str | tuple[str, Table] | tuple[str, Table, str]"]

_TRANSFORM: Final[Table] = {"source": "src", "dest": "dest"}
_SOURCE: Final[Table] = {
    "name": "name",
    "optStartSeq": "opt_start_seq",
    "optStartTime": "opt_start_time",
    "filterSubject": "filter_subject",
    "externalApiPrefix": "external.api",
    "externalDeliverPrefix": "external.deliver",
    "subjectTransforms": ("subject_transforms", _TRANSFORM, "list"),
}
_SPEC: Final[Table] = {
    "name": "name",
    "description": "description",
    "subjects": "subjects",
    "retention": "retention",
    "maxConsumers": "max_consumers",
    "maxMsgs": "max_msgs",
    "maxBytes": "max_bytes",
    "discard": "discard",
    "discardPerSubject": "discard_new_per_subject",
    "maxAge": "max_age",
    "maxMsgsPerSubject": "max_msgs_per_subject",
    "maxMsgSize": "max_msg_size",
    "storage": "storage",
    "replicas": "num_replicas",
    "noAck": "no_ack",
    "duplicateWindow": "duplicate_window",
    "placement": ("placement", {"cluster": "cluster", "tags": "tags"}),
    "mirror": ("mirror", _SOURCE),
    "sources": ("sources", _SOURCE, "list"),
    "sealed": "sealed",
    "denyDelete": "deny_delete",
    "denyPurge": "deny_purge",
    "allowRollup": "allow_rollup_hdrs",
    "compression": "compression",
    "firstSequence": "first_seq",
    "subjectTransform": ("subject_transform", _TRANSFORM),
    "republish": ("republish", {"source": "src", "destination": "dest",
                                "headers_only": "headers_only"}),
    "allowDirect": "allow_direct",
    "mirrorDirect": "mirror_direct",
    "allowMsgTtl": "allow_msg_ttl",
    "subjectDeleteMarkerTtl": "subject_delete_marker_ttl",
    "allowMsgCounter": "allow_msg_counter",
    "allowAtomicPublish": "allow_atomic",
    "allowMsgSchedules": "allow_msg_schedules",
    "persistMode": "persist_mode",
    "consumerLimits": ("consumer_limits", {"inactiveThreshold": "inactive_threshold",
                                           "maxAckPending": "max_ack_pending"}),
    "metadata": "metadata",
}

_CONNECTION_HINT: Final = (
    "remove it, and give the connection to the reconciler instead (--server, --creds, "
    "--nkey, --tls-*, --context or their NATS_* variables): it manages the streams of the "
    "server it connects to"
)
#: spec fields about the connection, not the stream: ignored with a warning when set
CONNECTION: Final = ("account", "creds", "nkey", "servers", "tls", "tlsFirst", "jsDomain")
#: spec fields NACK's default (legacy) controller does not send to the server
_LEGACY_SKIPS: Final = ("consumerLimits", "mirrorDirect")
#: fields of the object beside `spec`: Kubernetes' own, never read
_OBJECT: Final = ("apiVersion", "kind", "metadata", "spec", "status")


def is_kubernetes(node: Node) -> bool:
    """A Kubernetes object: a mapping with `apiVersion`."""
    if not isinstance(node, MappingNode):
        return False
    for key, _ in node.value:  # noqa: SIM110 (a loop: any() of a generator costs more here)
        if key.value == "apiVersion" and isinstance(key, ScalarNode):
            return True
    return False


def translate(d: DocumentReader, node: MappingNode) -> MappingNode | None:
    """The manifest mapping of a NACK Stream object, made of its own nodes; None (and a
    problem in `d`) when it is not one this reader can take."""
    fields = {name: (key, value) for name, key, value in pairs(d, node, "")}
    version = _text(fields.get("apiVersion"))
    kind = _text(fields.get("kind"))
    where = fields["apiVersion"][1]
    if version != API_VERSION:
        hint = (f"write apiVersion: {API_VERSION} (NACK serves no other version of Stream)"
                if version is not None and version.startswith(GROUP + "/")
                else f"a NACK Stream has apiVersion: {API_VERSION}; a manifest of ours has "
                     "no apiVersion")
        d.add(where, "apiVersion", f"unsupported apiVersion '{version}'", hint)
        return None
    if kind != "Stream":
        at = fields["kind"][1] if "kind" in fields else node
        d.add(at, "kind", f"NACK {kind or 'object'}s are not read here" if kind else
              "the object has no kind",
              "this reconciler manages streams only: keep other NACK objects out of the "
              "manifest paths" if kind else "write kind: Stream")
        return None
    for name, (key, _) in fields.items():
        if name not in _OBJECT:
            unknown(d, key, name, _OBJECT, "a NACK object")
    if "spec" not in fields:
        d.add(node, "spec", "the Stream has no spec", "write the stream's fields under spec:")
        return None
    spec_key, spec = fields["spec"]
    if not isinstance(spec, MappingNode):
        d.add(spec, "spec", f"expected a mapping, got {node_kind(spec)}",
              "write the stream's fields indented below spec:")
        return None
    shown: dict[str, str] = {"": ""}
    d.shown_path = _namer(shown)
    items = pairs(d, spec, "spec")
    nack_only = {*CONNECTION, "preventDelete", "preventUpdate"}
    out = _object(d, [p for p in items if p[0] not in nack_only], _SPEC, "spec", "", shown)
    extra = _spec_only(d, [p for p in items if p[0] in nack_only], shown)
    names = {k.value for k, _ in out}
    if "storage" not in names and "spec.storage" not in d.failed_paths:
        out.append((_scalar("storage", spec_key), _scalar("memory", spec_key)))
        shown["storage"] = "spec.storage"
        d.add_note(spec_key, "storage", "memory, NACK's default (its CRD's), where the "
                   "server's is file")
    out.extend(extra)
    return MappingNode(_MAP, out, spec.start_mark, spec.end_mark)


def _spec_only(d: DocumentReader, items: Pairs, shown: dict[str, str]) -> list[
        tuple[Node, Node]]:
    """NACK's own fields of a spec: warnings, and `preventUpdate` as a reconcile block."""
    out: list[tuple[Node, Node]] = []
    for name, key, value in items:
        path = f"spec.{name}"
        if name in CONNECTION:
            if _set(value):
                d.add_warning(key, path, f"{name} is ignored", _CONNECTION_HINT)
        elif name == "preventDelete":
            if _true(value):
                d.add_warning(key, path, "preventDelete is ignored: removing a manifest "
                              "deletes its stream only under --prune", "remove it, or set "
                              "deny_delete: true to keep the stream for good")
        elif name == "preventUpdate" and _true(value):
            drift = (_scalar("drift", key), _scalar("report", value))
            block = MappingNode(_MAP, [drift], key.start_mark, value.end_mark)
            out.append((_scalar("reconcile", key), block))
            shown["reconcile"] = path
            d.add_warning(key, path, "preventUpdate: true is read as reconcile: "
                          "{drift: report}: a stream that differs is reported, never "
                          "updated; unlike NACK, a missing stream is not created either",
                          "create it first (apply without preventUpdate), or convert the "
                          "file and choose")
    return out


def _object(d: DocumentReader, items: Pairs, table: Table, at: str, ours: str,
            shown: dict[str, str]) -> list[tuple[Node, Node]]:
    """The (key, value) pairs of ours for a NACK object's fields; unknown names reported."""
    out: list[tuple[Node, Node]] = []
    external: list[tuple[Node, Node]] = []
    for name, key, value in items:
        path = f"{at}.{name}"
        row = table.get(name)
        if row is None:
            _unknown(d, key, path, table)
            continue
        if _empty(value):
            continue  # NACK reads "" as not set
        target, sub, shape = (row, None, "") if isinstance(row, str) else (
            row[0], row[1], row[2] if len(row) == 3 else "object")
        mine = f"{ours}.{target}" if ours else target
        shown[mine] = path
        if table is _SPEC and name in _LEGACY_SKIPS:
            d.add_note(key, mine, "NACK's default controller (not --control-loop) never sends "
                       "it, so a stream it made may not have it; applied here")
        if sub is None:
            translated: Node = value
        elif shape == "list" and isinstance(value, SequenceNode):
            elements: list[Node] = []
            for index, item in enumerate(value.value):
                shown[f"{mine}.{index}"] = f"{path}.{index}"
                elements.append(_nested(d, item, sub, f"{path}.{index}", f"{mine}.{index}",
                                        shown))
            translated = SequenceNode(_SEQ, elements, value.start_mark, value.end_mark)
        else:
            translated = _nested(d, value, sub, path, mine, shown)
        if "." in target:  # external.api / external.deliver
            external.append((_scalar(target.split(".")[1], key), translated))
            continue
        out.append((_scalar(target, key), translated))
    if external:
        first = external[0][0]
        out.append((_scalar("external", first),
                    MappingNode(_MAP, external, first.start_mark, first.end_mark)))
    return out


def _nested(d: DocumentReader, node: Node, table: Table, at: str, ours: str,
            shown: dict[str, str]) -> Node:
    """A nested NACK object as ours; anything else as it is, for the reader to report."""
    if not isinstance(node, MappingNode):
        return node
    return MappingNode(_MAP, _object(d, pairs(d, node, at), table, at, ours, shown),
                       node.start_mark, node.end_mark)


def _unknown(d: DocumentReader, key: Node, path: str, table: Table) -> None:
    name = path.rpartition(".")[2]
    ours = {v if isinstance(v, str) else v[0]: k for k, v in table.items()}
    if name in ours:
        d.add(key, path, f"unknown field '{name}'",
              f"NACK spells it '{ours[name]}' (camelCase)")
        return
    if table is not _SPEC:
        unknown(d, key, path, table, path.rpartition(".")[0])
    elif suggest(name, [*table, *CONNECTION, "preventDelete", "preventUpdate"]):
        unknown(d, key, path, [*table, *CONNECTION, "preventDelete", "preventUpdate"], "spec")
    else:
        d.add(key, path, f"unknown field '{name}'",
              "a NACK Stream's spec has the fields of its CRD, such as maxAge or storage")


def _namer(shown: dict[str, str]) -> Callable[[str], str]:
    """Our configuration path -> NACK's, by its longest translated prefix."""

    def name(path: str) -> str:
        head, rest = path, ""
        while head:
            if head in shown:
                return shown[head] + rest
            head, _, tail = head.rpartition(".")
            rest = f".{tail}{rest}"
        return f"spec.{path}" if path and not path.startswith("spec.") else path

    return name


def _scalar(value: str, at: Node) -> ScalarNode:
    return ScalarNode(_STR, value, at.start_mark, at.end_mark)


def _text(field: tuple[Node, Node] | None) -> str | None:
    if field is None or not isinstance(field[1], ScalarNode) or field[1].tag == NULL:
        return None
    return str(field[1].value)


def _empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _STR and node.value == ""


def _true(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == BOOL and node.value.lower() == "true"


def _set(node: Node) -> bool:
    """Whether a NACK connection field is set: not empty, not false, not []."""
    if isinstance(node, ScalarNode):
        return node.tag != NULL and node.value != "" and not (
            node.tag == BOOL and node.value.lower() == "false")
    return bool(node.value)
