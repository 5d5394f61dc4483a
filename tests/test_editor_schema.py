"""`jetstream-reconciler schema`: the JSON Schema editors read. Every example manifest in the
repository fits it, and a seeded campaign of generated manifests checks that it accepts and
rejects what `validate` does, for types and field names.

    RECONCILER_SCHEMA_CASES=5000     run more cases (default 1000)
    RECONCILER_SCHEMA_SEED=1234      replay one case (a failure prints its seed)
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.cli import main
from reconciler.fields import STREAM
from reconciler.manifest import load_manifests
from reconciler.manifest.editor import OUT_OF_REACH, manifest_schema
from tests.repo import committed_copy

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCHEMA = manifest_schema()
VALIDATOR = Draft7Validator(SCHEMA)


# --- YAML as an editor reads it (YAML 1.2 core schema), not as PyYAML 1.1 does --------------

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def editor_value(node: Node) -> Any:
    """A YAML node as the YAML language server sees it (YAML 1.2 core schema)."""
    if isinstance(node, MappingNode):
        return {editor_value(k): editor_value(v) for k, v in node.value}
    if isinstance(node, SequenceNode):
        return [editor_value(item) for item in node.value]
    assert isinstance(node, ScalarNode)
    text = node.value
    if node.style is not None:  # quoted or a block scalar: text
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def editor_documents(text: str) -> list[Any]:
    return [editor_value(n) for n in yaml.compose_all(text, Loader=yaml.SafeLoader)
            if n is not None and not (isinstance(n, ScalarNode) and n.value == "")]


def schema_errors(document: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
            for e in VALIDATOR.iter_errors(document)]


# --- the schema itself --------------------------------------------------------------------

def test_the_schema_is_valid_draft_7_and_its_defaults_fit_it() -> None:
    Draft7Validator.check_schema(SCHEMA)

    def walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield path, schema
        for name, sub in schema.get("properties", {}).items():
            yield from walk(sub, f"{path}.{name}".lstrip("."))
        if isinstance(schema.get("items"), dict):
            yield from walk(schema["items"], f"{path}.*")

    for path, sub in walk(SCHEMA, ""):
        if "default" in sub:
            assert not list(Draft7Validator(sub).iter_errors(sub["default"])), path


def test_every_field_of_the_registry_is_in_it() -> None:
    """Made from the registry: every field this version reads, and nothing else."""
    def paths(schema: dict[str, Any], prefix: str) -> Iterator[str]:
        for name, sub in schema.get("properties", {}).items():
            yield prefix + name
            yield from paths(sub, f"{prefix}{name}.")
            if isinstance(sub.get("items"), dict):
                yield from paths(sub["items"], f"{prefix}{name}.*.")

    found = set(paths(SCHEMA, ""))
    assert found - {f.path for f in STREAM} == {
        "kind", "reconcile", "reconcile.allow_data_loss", "reconcile.drift",
        "reconcile.ignore_fields"}
    assert {f.path for f in STREAM} <= found


def test_the_command_prints_it(capsys: Any) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


# --- every example in the repository ------------------------------------------------------

def _readme_blocks(readme: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", readme.read_text(), re.S)


def example_documents(tmp_path: Path) -> list[tuple[str, str]]:
    """(where, YAML text of one manifest file) for every example manifest in the repository:
    config/ as committed, the README's manifests, and the streams of the Helm chart's
    README examples."""
    out: list[tuple[str, str]] = []
    config = committed_copy(tmp_path / "committed", "config") / "config"
    for path in sorted(config.rglob("*.y*ml")):
        out.append((f"config/{path.name}", path.read_text()))
    for index, block in enumerate(_readme_blocks(ROOT / "README.md")):
        out.append((f"README.md yaml block {index + 1}", block))
    helm = ROOT / "helm" / "jetstream-reconciler" / "README.md"
    for index, block in enumerate(_readme_blocks(helm)):
        if "streams:" not in block:
            continue  # templates and other values
        streams = (yaml.safe_load(block) or {}).get("streams")
        items = streams.values() if isinstance(streams, dict) else streams or []
        for item in items:
            out.append((f"helm README yaml block {index + 1}: {item.get('name')}",
                        yaml.safe_dump(item)))
    return out


def test_every_example_manifest_fits_the_schema(tmp_path: Path) -> None:
    examples = example_documents(tmp_path)
    assert len(examples) >= 4, examples
    for where, text in examples:
        file = tmp_path / "one" / "stream.yaml"
        file.parent.mkdir(exist_ok=True)
        file.write_text(text)
        assert not load_manifests([str(file)]).problems, where  # a real manifest...
        for document in editor_documents(text):  # ...that the schema accepts
            assert schema_errors(document) == [], where


def test_the_readme_schema_command_and_line(tmp_path: Path) -> None:
    """The README's commands as written: the schema written to a file, and a manifest whose
    first line names it fits it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Editors", 1)[1].split("\n## ", 1)[0]
    (command,) = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S)
                  for line in block.splitlines() if "jetstream-reconciler schema" in line]
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True,
                   env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    first = block.splitlines()[0]
    found = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert found, first
    manifest = tmp_path / "config" / "events.yaml"
    manifest.parent.mkdir()
    manifest.write_text(block)
    written = json.loads((manifest.parent / found[1]).read_text())
    assert written == SCHEMA
    for document in editor_documents(block):
        assert list(Draft7Validator(written).iter_errors(document)) == []
    shown = " ".join(section.split())
    for item in OUT_OF_REACH:  # the README lists what the schema cannot check
        assert f"- {item}" in shown, item


# --- the differential campaign ------------------------------------------------------------

@dataclass(frozen=True)
class Plain:
    """A plain YAML scalar written as is (`1h`, `unlimited`), read alike by YAML 1.1 and 1.2."""

    text: str


#: values that fit each kind of field and that no rule between fields refuses on their own
_FITS: dict[str, list[Any]] = {
    "duration": [0, Plain("0"), Plain("0.0"), "0", Plain("1h"), "90s", Plain("1h30m"),
                 Plain("2d"), Plain("1w"), "1.5h", " 5m ", Plain("2s")],
    "size": [1024, -1, 0, Plain("unlimited"), "UNLIMITED", Plain("1GiB"), "512 KiB",
             Plain("10MB"), Plain("300B"), "1.5KiB", "4096", Plain("0x400")],
    "count": [10, -1, 0, Plain("unlimited"), "Unlimited", Plain("0x10")],
    "integer": [1, Plain("0x1")],
    "boolean": [False, Plain("false"), Plain("False"), Plain("FALSE")],
    "text": ["hello", Plain("hello"), 42, Plain("1.5"), True, Plain("words with spaces")],
    "timestamp": ["2024-01-31T12:00:00Z", Plain("2024-01-31T12:00:00.123456789+02:00")],
}
#: values of the wrong type for each kind (and for every kind: lists, mappings, nothing)
_WRONG: dict[str, list[Any]] = {
    "duration": [30, 1.5, Plain("0.25"), "30", Plain("5 minutes"), "1y", "-1s", "abc", True,
                 Plain("1h30"), "", -5],
    "size": [-2, 1.5, Plain("1G"), "10 mb", "abc", True, "", Plain("1.5.5KiB")],
    "count": ["10", -2, 1.5, Plain("lots"), True, "", Plain("-1.0e2")],
    "integer": ["3", 1.5, True, Plain("three"), ""],
    "boolean": ["true", "false", 1, 0, Plain("nope"), "", Plain("0.5")],
    "text": [],
    "timestamp": ["yesterday", 5, True, "2024-01-31", Plain("2024-01-31 12:00")],
}
_ANY_WRONG: list[Any] = [None, Plain("~"), [], ["a"], {}, {"a": 1}]
_ENUMS_WRONG: list[Any] = ["disk", 1, True, Plain("Limits")]

#: fields a case leaves alone: rules between fields or names are out of the schema's reach
_LEFT_ALONE = {"name", "mirror_direct", "discard_new_per_subject", "sealed", "subjects",
               "subject_transform.src", "subject_transform.dest", "republish.src",
               "republish.dest", "mirror.name", "sources.*.name", "mirror.filter_subject",
               "sources.*.filter_subject", "mirror.consumer.name", "sources.*.consumer.name",
               "mirror.consumer.deliver_subject", "sources.*.consumer.deliver_subject",
               "mirror.external.api", "sources.*.external.api", "mirror.external.deliver",
               "sources.*.external.deliver", "placement.preferred", "placement.cluster",
               "mirror.subject_transforms.*.src", "mirror.subject_transforms.*.dest",
               "sources.*.subject_transforms.*.src", "sources.*.subject_transforms.*.dest"}


def _yaml(value: Any) -> str:
    """A value in YAML flow style: JSON, except plain scalars written as they are."""
    if isinstance(value, Plain):
        return value.text
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _scalar_fields() -> list[str]:
    return [f.path for f in STREAM if f.type not in ("object", "array", "map")
            and f.path not in _LEFT_ALONE]


def _value_for(rng: random.Random, path: str) -> Any:
    field = STREAM[path]
    kind = field.kind
    if field.enum:
        pool = [e for e in field.enum if e] if rng.random() < 0.5 else _ENUMS_WRONG + _ANY_WRONG
        return rng.choice(pool)
    if rng.random() < 0.5:
        return rng.choice(_FITS[kind])
    return rng.choice(_WRONG[kind] + _ANY_WRONG)


def _place(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (with `*` as the first list element) in `doc`, making its parents."""
    parts = path.split(".")
    if parts[0] == "mirror":
        doc.pop("subjects", None)  # a mirror takes no subjects
        doc["mirror"] = {"name": "origin"}
    if parts[0] == "sources":
        doc["sources"] = [{"name": "origin"}]
    if parts[0] in ("subject_transform", "republish"):
        doc[parts[0]] = {"src": "s.>", "dest": "t.>"} if parts[0] == "subject_transform" \
            else {"src": ">", "dest": "t.>"}
    node: Any = doc
    for part in parts[:-1]:
        node = node[0] if part == "*" else node.setdefault(part, {})
    node[parts[-1]] = value


def _mistyped(name: str, known: list[str], rng: random.Random) -> str:
    """A name close to `name` that is none of `known`."""
    cut = rng.randrange(len(name))
    options = [name[:cut] + name[cut + 1:], name + "s", name.replace("_", "-"),
               "unknown_field", name.upper()]
    return rng.choice([o for o in options if o not in known])


def generate(seed: int) -> tuple[str, str]:
    """(what the case does, the manifest's text) for one seed."""
    rng = random.Random(seed)
    doc: dict[str, Any] = {"name": f"s{seed}", "subjects": [f"s{seed}.>"]}
    roll = rng.random()
    if roll < 0.6:
        path = rng.choice(_scalar_fields())
        value = _value_for(rng, path)
        _place(doc, path, value)
        what = f"{path}: {_yaml(value)}"
    elif roll < 0.75:
        name = rng.choice(["allow_data_loss", "drift", "ignore_fields"])
        choices: dict[str, list[Any]] = {
            "allow_data_loss": [True, False, "true", 1, None, Plain("yes_please")],
            "drift": ["enforce", "report", "heal", 1, None, []],
            "ignore_fields": [["max_msgs"], ["metadata.owner"], [], "max_msgs", {}, [None],
                              [["max_msgs"]]],
        }
        value = rng.choice(choices[name])
        doc["reconcile"] = {name: value}
        what = f"reconcile.{name}: {_yaml(value)}"
    elif roll < 0.85:
        path = rng.choice(["metadata", "placement.tags", "placement", "consumer_limits",
                           "sources", "subject_transform", "republish", "mirror.external"])
        value = rng.choice([{"owner": "team-a"}, {"n": 1}, {}, ["a"], [1], [], Plain("x"),
                            None, {"a": None}, {"a": ["b"]}, [{"name": "x"}], [None]])
        if path == "mirror.external":
            doc.pop("subjects")
            doc["mirror"] = {"name": "origin", "external": value}
        else:
            doc[path.split(".")[0]] = {"tags": value} if path == "placement.tags" else value
        what = f"{path}: {_yaml(value)}"
    else:
        where = rng.choice(["", "reconcile", "placement", "consumer_limits", "sources.*",
                            "mirror", "republish", "metadata"])
        known = {"": [f.path for f in STREAM.top()], "reconcile": ["drift"],
                 "metadata": ["owner"]}.get(where) or [
            f.path.rsplit(".", 1)[1] for f in STREAM if f.path.startswith(where + ".")]
        name = _mistyped(rng.choice(known), known, rng)
        if where == "":
            doc[name] = 1
        elif where == "reconcile":
            doc["reconcile"] = {name: "report"}
        elif where == "sources.*":
            doc["sources"] = [{"name": "origin", name: 1}]
        elif where == "mirror":
            doc.pop("subjects")
            doc["mirror"] = {"name": "origin", name: 1}
        elif where == "republish":
            doc["republish"] = {"src": ">", "dest": "t.>", name: True}
        else:
            doc[where] = {name: "x"} if where == "metadata" else {name: 1}
        what = f"field {name!r} in {where or 'the top level'}"
    if rng.random() < 0.2:
        doc = {"kind": rng.choice(["Stream", "Stream", "Streams", Plain("~")]), **doc}
    text = "".join(f"{k}: {_yaml(v)}\n" for k, v in doc.items())
    return what, text


def _verdicts(tmp_path: Path, text: str) -> tuple[list[str], list[str]]:
    """validate's problems and the schema's errors for one manifest."""
    file = tmp_path / "case.yaml"
    file.write_text(text)
    problems = [str(p) for p in load_manifests([str(file)]).problems]
    (document,) = editor_documents(text)
    return problems, schema_errors(document)


def test_every_kind_of_value_in_every_field(tmp_path: Path) -> None:
    """Each value of the pools above in each field of its kind: both accept, or both
    refuse."""
    disagreements = []
    for path in _scalar_fields():
        field = STREAM[path]
        if field.enum:
            values = [e for e in field.enum if e] + _ENUMS_WRONG + _ANY_WRONG
        else:
            values = _FITS[field.kind] + _WRONG[field.kind] + _ANY_WRONG
        for value in values:
            doc: dict[str, Any] = {"name": "a", "subjects": ["a.>"]}
            _place(doc, path, value)
            text = "".join(f"{k}: {_yaml(v)}\n" for k, v in doc.items())
            problems, errors = _verdicts(tmp_path, text)
            if bool(problems) != bool(errors):
                disagreements.append(f"{path}: {_yaml(value)}: validate says "
                                     f"{problems or 'valid'}, the schema {errors or 'valid'}")
    assert not disagreements, "\n".join(disagreements)


def _seeds() -> list[int]:
    if seed := os.environ.get("RECONCILER_SCHEMA_SEED"):
        return [int(seed)]
    count = int(os.environ.get("RECONCILER_SCHEMA_CASES", "1000"))
    base = random.SystemRandom().randrange(10**9)
    return [base + i for i in range(count)]


def test_the_schema_rejects_what_validate_rejects(tmp_path: Path) -> None:
    """Generated manifests that differ from a valid one in one value's type or one field's
    name: the schema and `validate` must agree on each."""
    disagreements = []
    verdicts = {True: 0, False: 0}
    for seed in _seeds():
        what, text = generate(seed)
        problems, errors = _verdicts(tmp_path, text)
        verdicts[not problems] += 1
        if bool(problems) != bool(errors):
            disagreements.append(
                f"seed {seed} ({what}): validate says {problems or 'valid'}, "
                f"the schema {errors or 'valid'}; "
                f"replay with RECONCILER_SCHEMA_SEED={seed}\n{text}")
    assert not disagreements, "\n".join(disagreements[:10])
    if len(_seeds()) > 1:  # the campaign tries both sides
        assert verdicts[True] > 20 and verdicts[False] > 20, verdicts


@pytest.mark.parametrize("text", [
    "name: a\nmax_age: 30\n",        # no unit
    "name: a\nmax_msgs: '10'\n",     # quoted number
    "name: a\nmax_msg: 10\n",        # unknown field, did you mean max_msgs
    "name: a\nstorage: disk\n",
    "name: a\nreconcile: {drift: heal}\n",
    "name: a\nplacement: {clustr: east}\n",
    "name: a\nno_ack: 'true'\n",
    "name: a\nmax_bytes: 1G\n",
    "subjects: [a]\n",               # no name
])
def test_validate_and_the_schema_both_refuse(text: str, tmp_path: Path) -> None:
    file = tmp_path / "a.yaml"
    file.write_text(text)
    assert load_manifests([str(file)]).problems
    assert schema_errors(editor_documents(text)[0])
