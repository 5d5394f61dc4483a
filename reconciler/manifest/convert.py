"""Manifests of other formats (NACK Stream objects, natscli JSON) rewritten as ours: the
streams they declare, in manifest units (`1h`, `1GiB`), each document headed by a comment
that says where it came from and every value whose meaning the reading changed or filled in.
A natscli file (which lists every field) keeps, as `export` does, only the fields that differ
from what the server would store without them.

What a converted file declares is exactly what the original loads to (for natscli's files:
the same stream once the server's defaults are filled in): `tests/test_formats.py` reads
both and compares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import ManifestError, ReconcilerError
from reconciler.fields import DURATIONS, SIZES
from reconciler.manifest import natscli
from reconciler.manifest.document import parse_file
from reconciler.manifest.load import MAX_FILE_BYTES
from reconciler.model import Location, Policy, Problem, StreamSpec
from reconciler.plan.export import manifest_document
from reconciler.units import format_duration, format_size


@dataclass(frozen=True)
class Converted:
    """One file, converted."""

    file: str
    text: str
    """The YAML manifest: one document per stream, in the file's order."""
    notes: tuple[Problem, ...]
    """Values whose meaning changed or that were filled in, and the warnings."""


def convert_files(files: Sequence[str]) -> list[Converted]:
    """Each file as a manifest of ours; ManifestError with every problem of every file."""
    out: list[Converted] = []
    problems: list[Problem] = []
    for name in files:
        try:
            data = Path(name).read_bytes()[: MAX_FILE_BYTES + 1]
        except OSError as exc:
            problems.append(Problem(Location(name), "", f"cannot read: {exc.strerror or exc}"))
            continue
        docs, file_problems = parse_file(name, data)
        problems.extend(file_problems)
        texts: list[str] = []
        notes: list[Problem] = []
        for doc in docs:
            problems.extend(doc.problems)
            if doc.spec is None or doc.problems:
                continue
            notes.extend(doc.notes + doc.warnings)
            texts.append(render(doc.spec, doc.notes + doc.warnings))
        out.append(Converted(name, "---\n".join(texts), tuple(notes)))
    if problems:
        raise ManifestError(sorted(problems, key=lambda p: p.location))
    return out


def write(converted: Sequence[Converted], out: str) -> list[Path]:
    """Each converted file as `out/<its name>.yaml`; none written (ReconcilerError) if any
    of those is there already, or two files would share one."""
    targets = [Path(out) / f"{Path(c.file).stem}.yaml" for c in converted]
    taken = [str(t) for t in targets if t.exists()] + [
        str(t) for i, t in enumerate(targets) if t in targets[:i]]
    if taken:
        raise ReconcilerError(f"{', '.join(taken)}: already there; choose another --out "
                              "(nothing was written)")
    Path(out).mkdir(parents=True, exist_ok=True)
    for c, target in zip(converted, targets, strict=True):
        target.write_text(c.text)
    return targets


def render(spec: StreamSpec, notes: Sequence[Problem]) -> str:
    """One stream as a manifest document, its notes as comments above it."""
    lines = [f"# converted from {spec.location}"]
    hints: set[str] = set()
    for note in notes:
        field = f"{note.path}: " if note.path else ""
        hint = f"; {note.hint}" if note.hint and note.hint not in hints else ""
        hints.add(note.hint or "")
        lines.append(f"# line {note.location.line}: {field}{note.message}{hint}")
    document: dict[str, Any]
    if spec.location.file.endswith(natscli.SUFFIX):
        # natscli writes every field, most at the server's defaults: as `export` does, keep
        # only what differs from what the server would store without it
        document = manifest_document(spec.config)
    else:
        document = {"name": spec.name}
        document.update({k: _units(k, v) for k, v in spec.config.items() if k != "name"})
    policy = _policy(spec.policy)
    if policy:
        document["reconcile"] = policy
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(lines) + "\n" + body


def _units(pattern: str, value: Any) -> Any:
    """A wire value in manifest units, read back by the manifest reader unchanged."""
    if isinstance(value, Mapping):
        if pattern == "metadata":
            return dict(value)
        return {k: _units(f"{pattern}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_units(f"{pattern}.*", v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        if pattern in DURATIONS:
            return format_duration(value)
        if pattern in SIZES and value > 0:
            return format_size(value)
    return value


def _policy(policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    default = Policy()
    if policy.allow_data_loss != default.allow_data_loss:
        out["allow_data_loss"] = policy.allow_data_loss
    if policy.drift != default.drift:
        out["drift"] = str(policy.drift)
    if policy.ignore_fields:
        out["ignore_fields"] = list(policy.ignore_fields)
    return out
