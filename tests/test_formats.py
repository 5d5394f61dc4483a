"""Manifests in the formats users come from: NACK Stream objects and natscli's JSON. Pure:
read files, compare what they load to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.manifest import load_manifests
from reconciler.manifest.nack import _SPEC, CONNECTION
from reconciler.plan.canonical import canonical
from reconciler.units import parse_duration

NACK = Path(__file__).parent / "formats" / "nack"


def stream_examples() -> list[Path]:
    """NACK's examples that are Stream objects (the Consumer ones are not ours)."""
    return [p for p in sorted(NACK.glob("*.yml")) if p.name != "crds.yml"
            and any(d and d.get("kind") == "Stream" for d in yaml.safe_load_all(p.read_text()))]


def load(tmp_path: Path, name: str, text: str) -> Any:
    path = tmp_path / name
    path.write_text(text)
    return load_manifests([path])


def problems(result: Any) -> list[str]:
    return [str(p) for p in result.problems]


# --- NACK ---------------------------------------------------------------------------------

def test_the_examples_include_every_stream_example() -> None:
    assert [p.name for p in stream_examples()] == [
        "stream.yml", "stream_mirror.yml", "stream_placement.yml", "stream_servers.yml",
        "stream_sources.yml"]


@pytest.mark.parametrize("example", stream_examples(), ids=lambda p: p.name)
def test_every_nack_stream_example_loads(example: Path) -> None:
    result = load_manifests([example])
    assert result.problems == ()
    (spec,) = result.specs
    assert spec.name == yaml.safe_load(example.read_text())["spec"]["name"]


def test_nack_examples_read_as_nack_means_them() -> None:
    configs = {p.name: dict(load_manifests([p]).specs[0].config) for p in stream_examples()}
    assert configs == {
        "stream.yml": {"name": "mystream", "subjects": ["orders.*"], "storage": "file",
                       "max_age": 3_600_000_000_000, "num_replicas": 1},
        "stream_mirror.yml": {"name": "mystream-mirror", "storage": "file", "mirror": {
            "name": "my-publish-subj",
            "external": {"api": "FOO.JS.API", "deliver": "FOO.DELIVER.SYNC.MIRRORS"}}},
        "stream_placement.yml": {"name": "mystream-placement", "storage": "file",
                                 "placement": {"tags": ["NODE_0"]}},
        # no storage: NACK's default, memory
        "stream_servers.yml": {"name": "mystream", "storage": "memory"},
        "stream_sources.yml": {"name": "mystream-sources", "storage": "file",
                               "sources": [{"name": "m1"}, {"name": "m2"}]},
    }


def test_connection_fields_are_warnings_naming_the_field() -> None:
    result = load_manifests([NACK / "stream_servers.yml"])
    hint = ("remove it, and give the connection to the reconciler instead (--server, --creds, "
            "--nkey, --tls-*, --context or their NATS_* variables): it manages the streams of "
            "the server it connects to")
    assert [str(w) for w in result.warnings] == [
        f"{NACK}/stream_servers.yml:7:3: spec.servers: servers is ignored; {hint}",
        f"{NACK}/stream_servers.yml:9:3: spec.tls: tls is ignored; {hint}",
        f"{NACK}/stream_servers.yml:14:3: spec.creds: creds is ignored; {hint}",
    ]


def crd_stream_defaults() -> dict[str, Any]:
    for doc in yaml.safe_load_all((NACK / "crds.yml").read_text()):
        if doc and doc["spec"]["names"]["kind"] == "Stream":
            (version,) = [v for v in doc["spec"]["versions"] if v["name"] == "v1beta2"]
            spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            return {name: field["default"] for name, field in spec.items()
                    if "default" in field}
    raise AssertionError("no Stream CRD")


def test_every_default_of_nacks_crd_is_what_the_reader_makes_of_a_bare_object(
    tmp_path: Path
) -> None:
    """A field a NACK object leaves out has its CRD's default (Kubernetes fills it in before
    NACK sees the object): each must be what the server makes of our reading, or be
    written out by the reader (storage: memory)."""
    result = load(tmp_path, "s.yaml", "apiVersion: jetstream.nats.io/v1beta2\nkind: Stream\n"
                  "spec:\n  name: s\n")
    (spec,) = result.specs
    assert dict(spec.config) == {"name": "s", "storage": "memory"}
    server = canonical(spec.config)
    defaults = crd_stream_defaults()
    assert defaults["storage"] == "memory"
    checked = []
    for name, default in defaults.items():
        if name in (*CONNECTION, "preventDelete", "preventUpdate"):
            continue  # not the stream's: warnings when set
        ours = _SPEC[name]
        assert isinstance(ours, str), name
        if default == "":
            assert ours not in spec.config, name  # NACK reads "" as not set
            continue
        wire = -1 if (ours == "max_msgs_per_subject" and default == 0) else default
        if ours == "first_seq":  # 0: not set
            assert server.get(ours, 0) == wire, name
        else:
            assert server[ours] == wire, (name, server.get(ours), default)  # type: ignore[literal-required]
        checked.append(name)
    assert len(checked) >= 20, checked


@pytest.mark.parametrize(("text", "expected"), [
    ("  maxAge: 1x\n", "s.yaml:5:11: spec.maxAge: unknown unit 'x' in '1x'; units are ns, us, "
     "ms, s, m, h, d (24h) and w (7d), e.g. '90s' or '1h30m'"),
    ("  max_age: 1h\n", "s.yaml:5:3: spec.max_age: unknown field 'max_age'; NACK spells it "
     "'maxAge' (camelCase)"),
    ("  replicas: 0\n", "s.yaml:5:13: spec.replicas: 0 is out of range; write a number from 1 "
     "to 5"),
    ("  sources: [{name: a, optStartSq: 1}]\n", "s.yaml:5:23: spec.sources.0.optStartSq: "
     "unknown field 'optStartSq'; did you mean 'optStartSeq'?"),
    ("  mirror: {name: a, subjectTransforms: {source: 'a.>'}}\n",
     "s.yaml:5:40: spec.mirror.subjectTransforms: expected a list, got a mapping; write one "
     "'- ' item per line"),
    ("  retention: forever\n", "s.yaml:5:14: spec.retention: unknown value 'forever'; write "
     "one of: limits, interest, workqueue"),
], ids=["unit", "snake-case", "range", "nested-unknown", "transform", "enum"])
def test_problems_in_nack_objects_say_nacks_path_where_it_is_written(
    tmp_path: Path, text: str, expected: str
) -> None:
    head = "apiVersion: jetstream.nats.io/v1beta2\nkind: Stream\nspec:\n  name: s\n"
    result = load(tmp_path, "s.yaml", head + text)
    assert [p.replace(f"{tmp_path}/", "") for p in problems(result)] == [expected]


@pytest.mark.parametrize(("text", "expected"), [
    ("apiVersion: jetstream.nats.io/v1beta1\nkind: Stream\nspec: {name: s}\n",
     "s.yaml:1:13: apiVersion: unsupported apiVersion 'jetstream.nats.io/v1beta1'; write "
     "apiVersion: jetstream.nats.io/v1beta2 (NACK serves no other version of Stream)"),
    ("apiVersion: v1\nkind: ConfigMap\n",
     "s.yaml:1:13: apiVersion: unsupported apiVersion 'v1'; a NACK Stream has apiVersion: "
     "jetstream.nats.io/v1beta2; a manifest of ours has no apiVersion"),
    ("apiVersion: jetstream.nats.io/v1beta2\nkind: Consumer\nspec: {}\n",
     "s.yaml:2:7: kind: NACK Consumers are not read here; this reconciler manages streams "
     "only: keep other NACK objects out of the manifest paths"),
    ("apiVersion: jetstream.nats.io/v1beta2\nkind: Stream\n",
     "s.yaml:1:1: spec: the Stream has no spec; write the stream's fields under spec:"),
    ("apiVersion: jetstream.nats.io/v1beta2\nkind: Stream\nspec: {description: x}\n",
     "s.yaml:1:1: spec.name: the stream has no name; add name: <stream name>"),
])
def test_objects_that_are_not_nack_streams(tmp_path: Path, text: str, expected: str) -> None:
    result = load(tmp_path, "s.yaml", text)
    assert [p.replace(f"{tmp_path}/", "") for p in problems(result)] == [expected]
    assert result.specs == ()


def test_nack_reads_empty_strings_as_not_set_and_maps_every_nested_object(
    tmp_path: Path
) -> None:
    result = load(tmp_path, "s.yaml", """\
apiVersion: jetstream.nats.io/v1beta2
kind: Stream
metadata: {name: s, namespace: nats}
spec:
  name: s
  description: ""
  maxAge: ""
  compression: ""
  duplicateWindow: 1m
  subjects: ["s.>"]
  subjectTransform: {source: "s.>", dest: "t.>"}
  republish: {source: "s.>", destination: "r.>"}
  consumerLimits: {inactiveThreshold: 30s, maxAckPending: 100}
  sources:
  - name: a
    optStartSeq: 5
    externalApiPrefix: X.API
    subjectTransforms: [{source: "a.>", dest: "b.>"}]
  allowRollup: true
  discardPerSubject: true
  discard: new
  maxMsgsPerSubject: 5
  allowAtomicPublish: true
  preventDelete: false
  metadata: {owner: team}
status: {observedGeneration: 3}
""")
    assert problems(result) == []
    assert result.warnings == ()
    (spec,) = result.specs
    assert dict(spec.config) == {
        "name": "s", "duplicate_window": 60_000_000_000, "subjects": ["s.>"],
        "subject_transform": {"src": "s.>", "dest": "t.>"},
        "republish": {"src": "s.>", "dest": "r.>"},
        "consumer_limits": {"inactive_threshold": 30_000_000_000, "max_ack_pending": 100},
        "sources": [{"name": "a", "opt_start_seq": 5,
                     "subject_transforms": [{"src": "a.>", "dest": "b.>"}],
                     "external": {"api": "X.API"}}],
        "allow_rollup_hdrs": True, "discard_new_per_subject": True, "discard": "new",
        "max_msgs_per_subject": 5, "allow_atomic": True, "metadata": {"owner": "team"},
        "storage": "memory"}


def test_prevent_update_reads_as_drift_report_with_a_warning(tmp_path: Path) -> None:
    result = load(tmp_path, "s.yaml", "apiVersion: jetstream.nats.io/v1beta2\nkind: Stream\n"
                  "spec:\n  name: s\n  preventUpdate: true\n  preventDelete: true\n")
    (spec,) = result.specs
    assert spec.policy.drift == "report"
    assert [(w.location.line, w.path) for w in result.warnings] == [
        (5, "spec.preventUpdate"), (6, "spec.preventDelete")]
    assert "a missing stream is not created either" in result.warnings[0].message


# --- natscli JSON -------------------------------------------------------------------------

INFO = """\
{
\t"config": {
\t\t"name": "orders",
\t\t"subjects": ["orders.>"],
\t\t"retention": "limits",
\t\t"max_consumers": -1,
\t\t"max_msgs": -1,
\t\t"max_bytes": -1,
\t\t"max_age": 86400000000000,
\t\t"storage": "file",
\t\t"num_replicas": 1,
\t\t"duplicate_window": 120000000000,
\t\t"sealed": false,
\t\t"metadata": {"_nats.req.level": "0", "owner": "team-a"},
\t\t"consumer_limits": {"inactive_threshold": 5000000000}
\t},
\t"created": "2024-01-01T00:00:00Z",
\t"state": {"messages": 0}
}
"""


def test_natscli_info_json_loads_with_nanoseconds_and_without_server_metadata(
    tmp_path: Path
) -> None:
    result = load(tmp_path, "orders.json", INFO)
    assert problems(result) == []
    (spec,) = result.specs
    assert dict(spec.config) == {
        "name": "orders", "subjects": ["orders.>"], "retention": "limits",
        "max_consumers": -1, "max_msgs": -1, "max_bytes": -1,
        "max_age": parse_duration("1d"), "storage": "file", "num_replicas": 1,
        "duplicate_window": parse_duration("2m"), "sealed": False,
        "metadata": {"owner": "team-a"},
        "consumer_limits": {"inactive_threshold": parse_duration("5s")}}
    assert str(spec.where("max_age")) == f"{tmp_path}/orders.json:9:14"


@pytest.mark.parametrize(("text", "expected"), [
    ('{"name":"a","max_age":-5}', "a.json:1:23: max_age: '-5ns' is negative; write a "
     "duration such as '30s', or 0"),
    ('{"name": "a", "max_msgs": "x"}', "a.json:1:27: max_msgs: 'x' is not a count; write a "
     "whole number, or 'unlimited'"),
    ('{"config": {"name": "a", "storage": "disk"}}', "a.json:1:37: config.storage: unknown "
     "value 'disk'; write one of: file, memory"),
    ('{"name": "a"', "a.json:1:13: invalid JSON: expected ',' or '}', but got '<stream end>' "
     "(while parsing a flow mapping at line 1, column 1)"),
], ids=["negative", "count", "wrapped", "syntax"])
def test_problems_in_natscli_json_at_line_and_column(
    tmp_path: Path, text: str, expected: str
) -> None:
    result = load(tmp_path, "a.json", text)
    assert [p.replace(f"{tmp_path}/", "") for p in problems(result)] == [expected]


def test_a_yaml_manifest_still_refuses_a_bare_number_for_a_duration(tmp_path: Path) -> None:
    result = load(tmp_path, "a.yaml", "name: a\nmax_age: 86400000000000\n")
    assert problems(result) == [
        f"{tmp_path}/a.yaml:2:10: max_age: 86400000000000 has no unit; if it is nanoseconds, "
        "write '1d'; otherwise add a unit, e.g. '86400000000000s'"]


def test_json_files_are_found_in_directories(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"name": "a"}')
    (tmp_path / "b.yaml").write_text("name: b\n")
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert [s.name for s in load_manifests([tmp_path]).specs] == ["a", "b"]


# --- convert ------------------------------------------------------------------------------

ALL_NACK_FIELDS = """\
apiVersion: jetstream.nats.io/v1beta2
kind: Stream
metadata: {name: s}
spec:
  name: s
  description: every field
  subjects: ["s.>"]
  retention: interest
  maxConsumers: 10
  maxMsgs: 1000
  maxBytes: 1073741824
  discard: new
  discardPerSubject: true
  maxAge: 25h
  maxMsgsPerSubject: 5
  maxMsgSize: 1048576
  replicas: 1
  noAck: true
  duplicateWindow: 90s
  placement: {cluster: c1, tags: [a]}
  sources:
  - name: a
    optStartTime: "2024-01-31T12:00:00Z"
    externalApiPrefix: X.API
    externalDeliverPrefix: X.DLV
    subjectTransforms: [{source: "a.>", dest: "b.>"}]
  subjectTransform: {source: "s.>", dest: "t.>"}
  republish: {source: "s.>", destination: "r.>"}
  compression: s2
  firstSequence: 7
  denyDelete: true
  allowRollup: true
  allowDirect: true
  allowMsgTtl: true
  subjectDeleteMarkerTtl: 1m
  allowAtomicPublish: true
  persistMode: default
  consumerLimits: {inactiveThreshold: 1h30m, maxAckPending: 10}
  metadata: {owner: team}
  preventUpdate: true
  account: a
"""


@pytest.mark.parametrize("source", [
    *[p.read_text() for p in stream_examples()], ALL_NACK_FIELDS, INFO,
    '{"name": "bare", "max_age": 1500000000, "max_bytes": 1000000}',
], ids=[*[p.name for p in stream_examples()], "all-nack-fields", "info.json", "bare.json"])
def test_a_converted_file_declares_what_the_original_does(tmp_path: Path, source: str) -> None:
    from reconciler.manifest.convert import convert_files

    original = tmp_path / ("in.json" if source.startswith("{") else "in.yaml")
    original.write_text(source)
    (converted,) = convert_files([str(original)])
    again = tmp_path / "out.yaml"
    again.write_text(converted.text)
    before, after = load_manifests([original]), load_manifests([again])
    assert (before.problems, after.problems, after.warnings) == ((), (), ())
    if original.suffix == ".json":
        # natscli's fields at the server's defaults are left out: the same stream once
        # the server fills them in, and nothing at its default is written
        assert [(canonical(s.config), s.policy) for s in after.specs] == [
            (canonical(s.config), s.policy) for s in before.specs]
        (spec,) = after.specs
        assert not {"retention", "num_replicas", "storage", "discard"} & set(spec.config)
    else:
        assert [(s.config, s.policy) for s in after.specs] == [
            (s.config, s.policy) for s in before.specs]
    # every note and warning is a comment of the converted file
    for note in converted.notes:
        assert f"# line {note.location.line}: " in converted.text


def test_convert_keeps_what_a_natscli_file_sets_beyond_the_defaults() -> None:
    """As the README says of `examples/migrate/payments.json` (`nats stream info --json`)."""
    from reconciler.manifest.convert import convert_files

    example = Path(__file__).parent.parent / "examples" / "migrate" / "payments.json"
    (converted,) = convert_files([str(example)])
    body = "".join(x for x in converted.text.splitlines(keepends=True) if not x.startswith("#"))
    assert body == "name: payments\nsubjects:\n- payments.>\nmax_age: 1w\nallow_direct: true\n"


def test_convert_writes_notes_as_comments_and_units_people_read(tmp_path: Path) -> None:
    from reconciler.manifest.convert import convert_files

    original = tmp_path / "s.yaml"
    original.write_text(ALL_NACK_FIELDS.replace("  preventUpdate: true\n", ""))
    (converted,) = convert_files([str(original)])
    head = converted.text.split("name: s\n")[0]
    assert head == (
        f"# converted from {original}:1:1\n"
        "# line 38: consumer_limits: NACK's default controller (not --control-loop) never "
        "sends it, so a stream it made may not have it; applied here\n"
        "# line 4: storage: memory, NACK's default (its CRD's), where the server's is file\n"
        "# line 40: spec.account: account is ignored; remove it, and give the connection to "
        "the reconciler instead (--server, --creds, --nkey, --tls-*, --context or their "
        "NATS_* variables): it manages the streams of the server it connects to\n")
    assert "max_age: 1d1h\n" in converted.text and "max_bytes: 1GiB\n" in converted.text
    assert "  inactive_threshold: 1h30m\n" in converted.text


def run(capsys: Any, *args: str) -> tuple[int, str, str]:
    from reconciler.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_command_to_stdout_and_to_a_directory(tmp_path: Path, capsys: Any) -> None:
    info = tmp_path / "orders.json"
    info.write_text(INFO)
    code, out, err = run(capsys, "convert", str(NACK / "stream.yml"), str(info))
    assert (code, err) == (0, "")
    assert out.count("---\n") == 1 and "name: mystream\n" in out and "name: orders\n" in out
    code, out, err = run(capsys, "convert", "--out", str(tmp_path / "m"), str(info))
    assert (code, out) == (0, "")
    assert err == f"{info} -> {tmp_path}/m/orders.yaml (1 note)\n"
    assert load_manifests([tmp_path / "m"]).specs[0].name == "orders"
    # never over an existing file
    code, out, err = run(capsys, "convert", "--out", str(tmp_path / "m"), str(info))
    assert (code, out) == (1, "")
    assert f"{tmp_path}/m/orders.yaml: already there; choose another --out" in err


def test_convert_writes_nothing_when_a_file_has_a_problem(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "a", "max_age": "x"}')
    code, out, err = run(capsys, "convert", "--out", str(tmp_path / "m"),
                         str(NACK / "stream.yml"), str(bad))
    assert (code, out) == (1, "")
    assert err.startswith(f"{bad}:1:26: max_age: ")
    assert not (tmp_path / "m").exists()


def test_validate_prints_warnings_and_still_succeeds(capsys: Any) -> None:
    code, out, err = run(capsys, "validate", str(NACK / "stream_servers.yml"))
    assert (code, out) == (0, "1 manifest file valid: 1 stream (mystream).\n")
    assert err.splitlines()[0].startswith(
        f"warning: {NACK}/stream_servers.yml:7:3: spec.servers: servers is ignored; ")
