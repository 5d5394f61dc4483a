"""`export`: live streams written as manifests that `plan` reads back with no change.

    read            one STREAM.LIST through the adapter, and which server answered
    export_streams  (pure) the streams chosen -> a manifest document each (`plan.export`),
                    every one read back through the manifest reader and planned against its
                    live stream before anything is written: a stream whose manifest would not
                    come back as the same stream is reported, never written
    render_*        (pure) YAML files with a header saying where and when, or one JSON
                    document for scripts
    write_files     one `<name>.yaml` per stream; an existing file is never replaced unless
                    forced, and each file appears whole (written aside, then linked or renamed)

The reconcilers' own lease bucket stream is never exported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from reconciler.errors import ExportRefused
from reconciler.manifest import load_texts
from reconciler.model import (
    LEASE_STREAM,
    Action,
    Listing,
    LiveStream,
    Problem,
    ServerIdentity,
)
from reconciler.plan import plan_stream
from reconciler.plan.export import manifest_document, unknown_fields
from reconciler.units import count_of, format_timestamp, listed

FORMAT_VERSION = 1
#: stream names an error message lists before it only counts the rest
_SHOWN = 10


class Source(Protocol):
    """What `read` needs of the adapter."""

    async def list_streams(self) -> Listing: ...

    def server_identity(self) -> ServerIdentity: ...


@dataclass(frozen=True)
class Exported:
    """One stream: its manifest document, or why it could not be exported."""

    name: str
    document: Mapping[str, Any] | None
    error: str | None = None
    problems: tuple[Problem, ...] = ()
    """Why its manifest would fail validation, when that is why it was not exported."""
    left_out: tuple[str, ...] = ()
    """Fields of the live configuration this version does not know, set to a value: the
    manifest cannot say them."""

    @property
    def file(self) -> str:
        return file_name(self.name)


#: the longest file name most file systems take, in bytes
MAX_FILE_NAME = 255


def file_name(stream: str) -> str:
    """`<stream>.yaml`; a name too long for a file name (a stream name may take 255 bytes)
    is cut, and a hash of the whole name keeps two such names apart."""
    whole = f"{stream}.yaml"
    if len(whole.encode()) <= MAX_FILE_NAME:
        return whole
    digest = hashlib.sha256(stream.encode()).hexdigest()[:12]
    tail = f"-{digest}.yaml"
    head = stream.encode()[:MAX_FILE_NAME - len(tail)].decode(errors="ignore")
    return head + tail


@dataclass(frozen=True)
class Export:
    server: ServerIdentity
    exported_at: str
    """RFC 3339, UTC."""
    streams: tuple[Exported, ...]

    @property
    def written(self) -> tuple[Exported, ...]:
        return tuple(s for s in self.streams if s.document is not None)

    @property
    def failed(self) -> tuple[Exported, ...]:
        return tuple(s for s in self.streams if s.document is None)


async def read(js: Source) -> tuple[Listing, ServerIdentity]:
    return await js.list_streams(), js.server_identity()


def now() -> str:
    """This second, RFC 3339 in UTC: when an export was made."""
    return format_timestamp(time.time_ns() // 1_000_000_000 * 1_000_000_000)


def export_streams(
    listing: Listing,
    server: ServerIdentity,
    exported_at: str,
    *,
    names: Sequence[str] = (),
    everything: bool = False,
) -> Export:
    """The manifests of the streams named (or of all of them, but the lease's), each checked
    by reading it back. `ExportRefused` when the choice itself is wrong (no choice, a name
    the server does not have, the lease's stream): then nothing is exported."""
    chosen = _choose(listing, names, everything)
    live = {s.name: s for s in listing.streams}
    header = header_lines(server, exported_at)
    out: list[Exported] = []
    for name in chosen:
        if name in listing.unreadable:
            out.append(Exported(name, None, f"could not read stream {name}: "
                                            f"{listing.unreadable[name]}"))
            continue
        config = live[name].config
        left_out = tuple(k for k in unknown_fields(config) if config[k] not in _EMPTY)
        out.append(Exported(name, manifest_document(config), left_out=left_out))
    return Export(server, exported_at, tuple(_checked(out, live, header)))


_EMPTY: tuple[Any, ...] = (None, False, 0, "", [], {})


def _choose(listing: Listing, names: Sequence[str], everything: bool) -> list[str]:
    known = {s.name for s in listing.streams} | set(listing.unreadable)
    if everything and names:
        raise ExportRefused("give --stream NAME or --all, not both")
    if everything:
        return sorted(known - {LEASE_STREAM})
    if not names:
        raise ExportRefused("say which streams to export: --stream NAME (once per stream) or "
                            "--all")
    if LEASE_STREAM in names:
        raise ExportRefused(f"{LEASE_STREAM} is the stream of the reconcilers' lease bucket, "
                            "which they create and keep themselves: it is never exported")
    missing = [n for n in dict.fromkeys(names) if n not in known]
    if missing:
        there = sorted(known - {LEASE_STREAM})
        shown = ", ".join(there[:_SHOWN]) + (f" and {len(there) - _SHOWN} more"
                                             if len(there) > _SHOWN else "")
        raise ExportRefused(
            f"no stream named {', '.join(missing)} on the server; nothing was exported "
            f"(the server has {count_of(len(there), 'stream')}{': ' + shown if there else ''})")
    return list(dict.fromkeys(names))


def _checked(exported: list[Exported], live: Mapping[str, LiveStream],
             header: Sequence[str]) -> list[Exported]:
    """Each manifest read back as `plan` will read it (one file each, checked together, as
    a directory of them is), and planned against its live stream: a manifest that does not
    load, or that plans a change, is reported instead of written."""
    ready = [e for e in exported if e.document is not None]
    texts = [(e.file, render_yaml([e], header).encode()) for e in ready]
    result = load_texts(texts)
    problems: dict[str, list[Problem]] = {}
    for problem in result.problems:
        problems.setdefault(problem.location.file, []).append(problem)
    specs = {spec.location.file: spec for spec in result.specs}
    out: list[Exported] = []
    for e in exported:
        if e.document is None:
            out.append(e)
            continue
        spec = specs.get(e.file)
        found = tuple(problems.get(e.file, ()))
        if found or spec is None:
            shown = "; ".join(str(p) for p in found) or "no stream"
            out.append(Exported(e.name, None, "not exported: its manifest would fail "
                                              f"validation: {shown}", found))
            continue
        plan = plan_stream(spec, live[e.name])
        if plan.action in (Action.NOOP, Action.ADOPT):  # in sync (adoption changes nothing)
            out.append(e)
            continue
        changes = ", ".join(f"{c.path}: {c.live!r} -> {c.desired!r}" for c in plan.changes)
        out.append(Exported(e.name, None, "not exported: plan would show a change on its "
                                          f"manifest: {changes}"))
    return out


# --- rendering ----------------------------------------------------------------------------


def header_lines(server: ServerIdentity, exported_at: str) -> tuple[str, ...]:
    """Where and when, as comment lines (without the `# `)."""
    about = " ".join(x for x in (f"nats-server {server.version}" if server.version else "",
                                 f"named {server.name}" if server.name else "") if x)
    return (
        f"Exported by jetstream-reconciler from {server.url} at {exported_at}"
        + (f",\n{about}." if about else "."),
        "What each stream sets beyond the server's defaults; `plan` on it shows no change.",
    )


class _Dumper(yaml.SafeDumper):
    """Lists of plain values on one line (`subjects: [a.>, b]`), everything else in blocks."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, Mapping | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def document_yaml(document: Mapping[str, Any]) -> str:
    text: str = yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                          default_flow_style=False, width=100)
    return text


def render_yaml(streams: Sequence[Exported], header: Sequence[str]) -> str:
    """The header as comments, then one YAML document per stream (`---` between them)."""
    docs = [document_yaml(s.document) for s in streams if s.document is not None]
    comment = "".join(f"# {line}\n" for part in header for line in part.splitlines())
    return comment + "---\n".join(docs)


def render_json(export: Export) -> str:
    """One JSON document: where and when, each manifest document, and each failure."""
    body = {
        "format_version": FORMAT_VERSION,
        "server": {"url": export.server.url, "name": export.server.name,
                   "version": export.server.version},
        "exported_at": export.exported_at,
        "streams": [s.document for s in export.written],
        "errors": [{"stream": s.name, "error": s.error} for s in export.failed],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def deliver(export: Export, out: str, output: str, *, force: bool = False
            ) -> tuple[str, list[str]]:
    """What `export` prints: its standard output, and its lines for standard error. With
    `out` a directory, the files are written there (`write_files`) and standard output says
    which."""
    said = [f"warning: stream {s.name}: {name} is a field this version does not know; it is "
            "left out of the manifest, and an update by apply would reset it: upgrade "
            "jetstream-reconciler first" for s in export.written for name in s.left_out]
    if output == "json":
        printed = render_json(export)
    elif out == "-":
        printed = render_yaml(export.written, header_lines(export.server, export.exported_at))
    else:
        files = [p.name for p in write_files(Path(out), export, force=force)]
        printed = (f"{count_of(len(files), 'stream')} exported to {out}"
                   f"{f' ({listed(files)})' if files else ''}.\n")
    said += [f"error: stream {s.name}: {s.error}" for s in export.failed]
    return printed, said


# --- files --------------------------------------------------------------------------------


def write_files(directory: Path, export: Export, *, force: bool = False) -> list[Path]:
    """`<name>.yaml` in `directory` (made if missing) for each stream exported. Without
    `force`, nothing is written when any of them exists. Each file is written aside first
    (a name starting with `.`, which manifest discovery skips), then put in place whole."""
    header = header_lines(export.server, export.exported_at)
    targets = [(directory / s.file, render_yaml([s], header)) for s in export.written]
    if not force:
        there = [str(path) for path, _ in targets if os.path.lexists(path)]
        if there:
            raise ExportRefused(_in_the_way(there))
    written: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for index, (path, text) in enumerate(targets):
            aside = path.with_name(f".export-{os.getpid()}-{index}.tmp")
            aside.write_text(text, encoding="utf-8")
            try:
                if force:
                    os.replace(aside, path)
                else:
                    _put_new(aside, path, text, written)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    aside.unlink()
            written.append(path)
    except OSError as exc:
        before = ", ".join(str(p) for p in written)
        raise ExportRefused(
            f"cannot write to {directory}: {(exc.strerror or str(exc)).lower()}"
            + (f" (written before it: {before})" if before else "; nothing was written")
        ) from None
    return written


def _put_new(aside: Path, path: Path, text: str, written: Sequence[Path]) -> None:
    """Put `aside` at `path` unless something is there already (a file made since the check,
    or two stream names that are one file name on a case-insensitive file system)."""
    try:
        try:
            os.link(aside, path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: create it, never replace
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
    except FileExistsError:
        before = ", ".join(str(p) for p in written)
        raise ExportRefused(
            f"{path} already exists; it was left as it is"
            + (f" (written before it: {before})" if before else "; nothing was written")
            + ". " + _WHAT_INSTEAD) from None


_WHAT_INSTEAD = ("Export to a new directory (--out DIR), or to standard output (--out -) to "
                 "compare, move the files away, or add --overwrite to replace them")


def _in_the_way(paths: Sequence[str]) -> str:
    return (f"{', '.join(paths)} already exist{'s' if len(paths) == 1 else ''}; nothing was "
            f"written. {_WHAT_INSTEAD}")
