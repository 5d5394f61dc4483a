"""Export without a server: a live configuration -> its manifest document (pure tables), the
choice of streams, the check that reads every manifest back, rendering, and files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.errors import ExportRefused
from reconciler.export import (
    Export,
    Exported,
    deliver,
    export_streams,
    file_name,
    header_lines,
    render_json,
    render_yaml,
    write_files,
)
from reconciler.manifest import load_manifests
from reconciler.model import LEASE_STREAM, Action, Listing, LiveStream, ServerIdentity
from reconciler.plan import canonical, plan_stream
from reconciler.plan.export import manifest_document, unknown_fields

S = 1_000_000_000
MS = 1_000_000

#: what the server adds to every configuration it reports (nats-server 2.15)
SERVER_DEFAULTS: dict[str, Any] = {
    "retention": "limits", "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_age": 0,
    "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old", "storage": "file",
    "num_replicas": 1, "duplicate_window": 120 * S, "compression": "none",
    "allow_direct": False, "mirror_direct": False, "sealed": False, "deny_delete": False,
    "deny_purge": False, "allow_rollup_hdrs": False, "consumer_limits": {},
    "allow_msg_ttl": False,
    "metadata": {"_nats.level": "5", "_nats.req.level": "0", "_nats.ver": "2.15.1"},
}  # fmt: skip


def live(**config: Any) -> dict[str, Any]:
    """A configuration as the server reports it: its defaults, then `config`."""
    return {**SERVER_DEFAULTS, "subjects": [config["name"]], **config}


DOCUMENTS = [
    pytest.param(live(name="plain"), {"name": "plain"}, id="all defaults: the name only"),
    pytest.param(
        live(name="units", subjects=["u.>"], max_age=90_061 * S, max_bytes=1 << 30,
             max_msgs=1_000_000, max_msg_size=1024, duplicate_window=30 * S + 7),
        {"name": "units", "subjects": ["u.>"], "max_msgs": 1_000_000, "max_bytes": "1GiB",
         "max_age": "1d1h1m1s", "max_msg_size": "1KiB", "duplicate_window": "30s7ns"},
        id="units that round nothing",
    ),
    pytest.param(
        live(name="bytes", max_bytes=1_000_000, max_msg_size=300),
        {"name": "bytes", "max_bytes": 1_000_000, "max_msg_size": 300},
        id="a size no binary unit divides stays bytes",
    ),
    pytest.param(
        live(name="m", metadata={"_nats.ver": "2.15.1", "owner": "a", "_nats.level": "1"}),
        {"name": "m", "metadata": {"owner": "a"}}, id="_nats metadata dropped",
    ),
    pytest.param(
        live(name="s", subjects=["z.>", "a.*"]), {"name": "s", "subjects": ["a.*", "z.>"]},
        id="subjects other than the name, as a set",
    ),
    pytest.param(
        live(name="age", max_age=60 * S, duplicate_window=60 * S),
        {"name": "age", "max_age": "1m"}, id="the default window follows a short max_age",
    ),
    pytest.param(
        live(name="win", max_age=3600 * S, duplicate_window=120 * S),
        {"name": "win", "max_age": "1h"}, id="the 2m default window under a long max_age",
    ),
    pytest.param(
        live(name="ttl", subject_delete_marker_ttl=5 * S, allow_msg_ttl=True,
             allow_rollup_hdrs=True),
        {"name": "ttl", "allow_msg_ttl": True, "allow_rollup_hdrs": True,
         "subject_delete_marker_ttl": "5s"},
        id="flags another setting forces on are written",
    ),
    pytest.param(
        live(name="sealed", sealed=True, discard="new", deny_delete=True, deny_purge=True),
        {"name": "sealed", "discard": "new", "deny_delete": True, "deny_purge": True,
         "sealed": True},
        id="sealed, with what it forces",
    ),
    pytest.param(
        {**live(name="mir", storage="memory", mirror={
            "name": "o", "opt_start_time": "2024-05-01T10:00:00.100000000+00:00",
            "filter_subject": "", "opt_start_seq": 0}), "subjects": None,
         "duplicate_window": 0},
        {"name": "mir", "storage": "memory",
         "mirror": {"name": "o", "opt_start_time": "2024-05-01T10:00:00.100000000Z"}},
        id="a mirror: no subjects nor window; empty values dropped, one spelling of a time",
    ),
    pytest.param(
        live(name="rp", republish={"dest": "x.>"}),
        {"name": "rp", "republish": {"src": ">", "dest": "x.>"}},
        id="republish: the server's src written out",
    ),
    pytest.param(
        live(name="rp", republish={"src": "t.*", "dest": ""}),
        {"name": "rp", "republish": {"src": "t.*", "dest": ""}},
        id="a key the manifest must write, stored empty",
    ),
    pytest.param(
        live(name="cl", num_replicas=3, consumer_limits={"inactive_threshold": 10 * S + 1,
                                                         "max_ack_pending": -1}),
        {"name": "cl", "num_replicas": 3,
         "consumer_limits": {"inactive_threshold": "10s1ns", "max_ack_pending": "unlimited"}},
        id="nested units",
    ),
    pytest.param(
        live(name="src", subjects=None, duplicate_window=0, sources=[
            {"name": "b", "subject_transforms": [{"src": "b.>", "dest": "c.>"}],
             "filter_subject": ""},
            {"name": "a", "external": {"api": "$JS.hub.API", "deliver": ""}}]),
        {"name": "src", "sources": [
            {"name": "b", "subject_transforms": [{"src": "b.>", "dest": "c.>"}]},
            {"name": "a", "external": {"api": "$JS.hub.API"}}]},
        id="sources in their order, keys in the schema's",
    ),
    pytest.param(
        live(name="new", future_field=True), {"name": "new"}, id="unknown fields left out",
    ),
]


@pytest.mark.parametrize(("config", "document"), DOCUMENTS)
def test_manifest_document(config: dict[str, Any], document: dict[str, Any]) -> None:
    assert manifest_document(config) == document
    assert list(manifest_document(config)) == list(document)  # the order written


@pytest.mark.parametrize(("config", "document"), DOCUMENTS)
def test_the_document_reads_back_as_the_same_stream(
    config: dict[str, Any], document: dict[str, Any], tmp_path: Path
) -> None:
    """Through the manifest reader, as `plan` reads it: no change."""
    path = tmp_path / "s.yaml"
    path.write_text(render_yaml([Exported(config["name"], document)], ("header",)))
    result = load_manifests([path])
    assert result.problems == ()
    (spec,) = result.specs
    stream = LiveStream(config["name"], config)
    plan = plan_stream(spec, stream)
    assert (plan.action, plan.changes) == (Action.ADOPT, ())  # in sync, made elsewhere
    assert canonical({**spec.config, "name": spec.name}) == canonical(config)


def test_unknown_fields() -> None:
    assert unknown_fields(live(name="a", zeta=1, alpha=None)) == ("alpha", "zeta")
    assert unknown_fields(live(name="a")) == ()


# --- choosing streams, and the check before anything is written ------------------------------

SERVER = ServerIdentity("nats://127.0.0.1:4222", "n1", "2.15.1")


def listing(*configs: dict[str, Any], unreadable: dict[str, str] | None = None) -> Listing:
    return Listing(tuple(LiveStream(c["name"], c) for c in configs), unreadable or {})


def test_all_is_every_stream_but_the_lease_bucket_in_name_order() -> None:
    result = export_streams(listing(live(name="b"), live(name=LEASE_STREAM), live(name="a")),
                            SERVER, "t", everything=True)
    assert [s.name for s in result.written] == ["a", "b"]
    assert result.failed == ()


def test_named_streams_in_the_order_given_once_each() -> None:
    result = export_streams(listing(live(name="a"), live(name="b"), live(name="c")), SERVER,
                            "t", names=["c", "a", "c"])
    assert [s.name for s in result.written] == ["c", "a"]


@pytest.mark.parametrize(("names", "everything", "message"), [
    ((), False, "say which streams to export: --stream NAME (once per stream) or --all"),
    (("a",), True, "give --stream NAME or --all, not both"),
    (("a", "x", "y"), False, "no stream named x, y on the server; nothing was exported (the "
                             "server has 2 streams: a, b)"),
    ((LEASE_STREAM,), False, f"{LEASE_STREAM} is the stream of the reconcilers' lease bucket, "
                             "which they create and keep themselves: it is never exported"),
])
def test_a_wrong_choice_exports_nothing(names: tuple[str, ...], everything: bool,
                                        message: str) -> None:
    with pytest.raises(ExportRefused) as caught:
        export_streams(listing(live(name="a"), live(name="b"), live(name=LEASE_STREAM)),
                       SERVER, "t", names=names, everything=everything)
    assert str(caught.value) == message


def test_a_long_list_of_streams_is_cut() -> None:
    streams = [live(name=f"s{i:02}", subjects=[f"s{i}"]) for i in range(25)]
    with pytest.raises(ExportRefused, match=r"server has 25 streams: s00, s01, .*, s09 and 15 "
                                            r"more\)$"):
        export_streams(listing(*streams), SERVER, "t", names=["x"])


def test_a_stream_the_server_could_not_describe_is_reported() -> None:
    result = export_streams(listing(live(name="a"), unreadable={"b": "its leader is away"}),
                            SERVER, "t", everything=True)
    assert [s.name for s in result.written] == ["a"]
    assert [(s.name, s.error) for s in result.failed] == [
        ("b", "could not read stream b: its leader is away")]


def test_a_stream_no_manifest_can_declare_is_reported_not_written() -> None:
    """The server makes this one from a create that is not pedantic (it turns on the message
    TTLs that subject_delete_marker_ttl needs, after checking the counter against them); no
    manifest can declare it, and export says why instead of writing one that fails."""
    counter = live(name="c", allow_msg_counter=True, subject_delete_marker_ttl=60 * S,
                   allow_msg_ttl=True, allow_rollup_hdrs=True)
    result = export_streams(listing(counter, live(name="ok")), SERVER, "t", everything=True)
    assert [s.name for s in result.written] == ["ok"]
    (failed,) = result.failed
    assert failed.error == (
        "not exported: its manifest would fail validation: c.yaml:5:20: allow_msg_counter: a "
        "counter stream cannot use message TTLs; remove allow_msg_ttl: true")
    assert [p.path for p in failed.problems] == ["allow_msg_counter"]


# --- rendering ---------------------------------------------------------------------------


def test_header_says_which_server_and_when() -> None:
    assert header_lines(SERVER, "2026-01-02T03:04:05Z") == (
        "Exported by jetstream-reconciler from nats://127.0.0.1:4222 at 2026-01-02T03:04:05Z,"
        "\nnats-server 2.15.1 named n1.",
        "What each stream sets beyond the server's defaults; `plan` on it shows no change.",
    )
    unnamed = ServerIdentity("nats://h:4222", "", "")
    assert header_lines(unnamed, "t")[0] == "Exported by jetstream-reconciler from " \
                                            "nats://h:4222 at t."


def test_yaml_documents_under_one_header() -> None:
    streams = [
        Exported("a", {"name": "a", "subjects": ["a.>", ">"], "description": "x: y # z",
                       "placement": {"tags": ["az:1", "ssd"]}}),
        Exported("gone", None, "why"),
        Exported("b", {"name": "b", "metadata": {"k": "007", "yes": "true"}}),
    ]
    text = render_yaml(streams, header_lines(SERVER, "T"))
    assert text == (
        "# Exported by jetstream-reconciler from nats://127.0.0.1:4222 at T,\n"
        "# nats-server 2.15.1 named n1.\n"
        "# What each stream sets beyond the server's defaults; `plan` on it shows no change.\n"
        "name: a\n"
        "subjects: [a.>, '>']\n"
        "description: 'x: y # z'\n"
        "placement:\n"
        "  tags: ['az:1', ssd]\n"
        "---\n"
        "name: b\n"
        "metadata:\n"
        "  k: '007'\n"
        "  'yes': 'true'\n"
    )
    docs = list(yaml.safe_load_all(text))
    assert docs == [s.document for s in streams if s.document is not None]


def test_json_for_programs() -> None:
    export = Export(SERVER, "T", (Exported("a", {"name": "a", "max_age": "1h"}),
                                  Exported("b", None, "why")))
    assert yaml.safe_load(render_json(export)) == {
        "format_version": 1,
        "server": {"url": "nats://127.0.0.1:4222", "name": "n1", "version": "2.15.1"},
        "exported_at": "T",
        "streams": [{"name": "a", "max_age": "1h"}],
        "errors": [{"stream": "b", "error": "why"}],
    }


# --- files --------------------------------------------------------------------------------


def export_of(*names: str) -> Export:
    return Export(SERVER, "T", tuple(Exported(n, {"name": n}) for n in names))


def test_one_file_per_stream_in_a_directory_made_for_them(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    written = write_files(out, export_of("x", "y"))
    assert written == [out / "x.yaml", out / "y.yaml"]
    assert sorted(os.listdir(out)) == ["x.yaml", "y.yaml"]  # nothing left aside
    assert (out / "x.yaml").read_text().endswith("name: x\n")


def test_an_existing_file_is_never_replaced_without_force(tmp_path: Path) -> None:
    (tmp_path / "y.yaml").write_text("mine\n")
    with pytest.raises(ExportRefused) as caught:
        write_files(tmp_path, export_of("x", "y"))
    assert str(caught.value) == (
        f"{tmp_path / 'y.yaml'} already exists; nothing was written. Export to a new "
        "directory (--out DIR), or to standard output (--out -) to compare, move the files "
        "away, or add --overwrite to replace them")
    assert sorted(os.listdir(tmp_path)) == ["y.yaml"]
    assert (tmp_path / "y.yaml").read_text() == "mine\n"
    write_files(tmp_path, export_of("x", "y"), force=True)
    assert (tmp_path / "y.yaml").read_text().endswith("name: y\n")
    assert sorted(os.listdir(tmp_path)) == ["x.yaml", "y.yaml"]


def test_a_dangling_link_is_in_the_way_too(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ExportRefused, match=r"x\.yaml already exists; nothing was written"):
        write_files(tmp_path, export_of("x"))


def test_a_file_made_after_the_check_is_kept(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file is linked into place, which fails rather than replace one that appeared
    since the check (or a second stream name that is the same file name on a
    case-insensitive file system)."""
    real_link = os.link

    def race(src: Any, dst: Any) -> None:
        if str(dst).endswith("y.yaml"):
            Path(dst).write_text("theirs\n")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", race)
    with pytest.raises(ExportRefused) as caught:
        write_files(tmp_path, export_of("x", "y"))
    assert str(caught.value).startswith(
        f"{tmp_path / 'y.yaml'} already exists; it was left as it is (written before it: "
        f"{tmp_path / 'x.yaml'}). Export to a new directory")
    assert (tmp_path / "y.yaml").read_text() == "theirs\n"
    assert sorted(os.listdir(tmp_path)) == ["x.yaml", "y.yaml"]


def test_a_directory_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportRefused, match=r"cannot write to .*/file/out: not a directory; "
                                            "nothing was written"):
        write_files(tmp_path / "file" / "out", export_of("x"))


def test_a_name_too_long_for_a_file_name() -> None:
    assert file_name("events") == "events.yaml"
    long = "é" * 127  # 254 bytes: a valid stream name
    name = file_name(long)
    assert len(name.encode()) <= 255 and name.endswith(".yaml") and name.startswith("é" * 60)
    assert file_name(long[:-1] + "e") != name
    assert file_name("n" * 250) == "n" * 250 + ".yaml"


def test_what_the_command_prints(tmp_path: Path) -> None:
    """A field this version does not know is said on stderr (apply would reset it); failures
    too; with a directory, stdout names the files."""
    result = export_streams(listing(live(name="a", future_field=7), live(name="b")), SERVER,
                            "T", everything=True)
    assert result.written[0].left_out == ("future_field",)
    export = Export(SERVER, "T", (*result.written, Exported("c", None, "why")))
    printed, said = deliver(export, str(tmp_path), "yaml")
    assert printed == f"2 streams exported to {tmp_path} (a.yaml and b.yaml).\n"
    assert said == [
        "warning: stream a: future_field is a field this version does not know; it is left out "
        "of the manifest, and an update by apply would reset it: upgrade jetstream-reconciler "
        "first",
        "error: stream c: why",
    ]
    printed, _ = deliver(export, "-", "yaml")
    assert printed.endswith("name: a\n---\nname: b\n")
