"""Checks across all documents: duplicate stream names, subjects two streams take, and what
the server checks against the streams a mirror or its sources read from. They return the
problems of each document (by its index); they change nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.manifest.names import is_plain, name_problem, subject_problem
from reconciler.manifest.reader import Document
from reconciler.model import Location, Problem, StreamSpec
from reconciler.subjects import SubjectIndex, subjects_collide

Config = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Claim:
    subject: str
    spec: StreamSpec
    path: str
    """where the subject is written: `subjects.N`, or `name` for the name taken as subject"""

    @property
    def stream(self) -> str:
        return self.spec.name

    @property
    def implicit(self) -> bool:
        return self.path == "name"

    @property
    def location(self) -> Location:
        return self.spec.where(self.path)


def check_across(docs: Sequence[Document]) -> dict[int, list[Problem]]:
    """Duplicate stream names and overlapping subjects, reported at the later declaration;
    then what the server checks against the streams a mirror or its sources read from."""
    found: dict[int, list[Problem]] = {}
    for index, problem in _names_and_subjects(docs):
        found.setdefault(index, []).append(problem)
    declared: dict[str, StreamSpec] = {}
    for doc in docs:
        if doc.spec is not None and not doc.failed:
            declared.setdefault(doc.spec.name, doc.spec)
    for index, doc in enumerate(docs):
        if doc.spec is None or doc.failed or declared.get(doc.spec.name) is not doc.spec:
            continue
        if problems := _check_origins(doc.spec, declared):
            found.setdefault(index, []).extend(problems)
    return found


def across_key(docs: Sequence[Document]) -> tuple[object, ...] | None:
    """All that `check_across` reads of `docs` when none of them reads from another stream
    (a mirror or sources): each one's name and subjects, and whether they were read
    cleanly. Two lists with the same key have the same problems, but for where they are
    written. None when a document reads from another stream (its checks read more)."""
    key: list[object] = []
    for doc in docs:
        spec = doc.spec
        if spec is None:
            key.append(None)
            continue
        config = spec.config
        if "mirror" in config or config.get("sources"):
            return None
        subjects = config.get("subjects")
        key.append((spec.name, config.get("name"),
                    tuple(subjects) if isinstance(subjects, list) else subjects,
                    doc.subjects_ok, doc.failed))
    return tuple(key)


def _names_and_subjects(docs: Sequence[Document]) -> Iterator[tuple[int, Problem]]:
    names: dict[str, StreamSpec] = {}  # where each is written is found only for a problem
    index: SubjectIndex[_Claim] = SubjectIndex()
    for at, doc in enumerate(docs):
        spec = doc.spec
        if spec is None or not isinstance(spec.config.get("name"), str) or name_problem(spec.name):
            continue
        if spec.name in names:
            yield (
                at,
                Problem(
                    spec.where("name"),
                    "name",
                    f"stream '{spec.name}' is already declared at "
                    f"{names[spec.name].where('name')}",
                    "rename this stream, or remove one of the two declarations",
                ),
            )
            continue
        names[spec.name] = spec
        if not doc.subjects_ok:
            continue
        claims = _claims(spec)
        for claim in claims:
            other = index.first_collision(claim.subject)
            if other is not None:
                yield at, _overlap(claim, other)
        for claim in claims:
            index.add(claim.subject, claim)


def _claims(spec: StreamSpec) -> list[_Claim]:
    """The subjects the stream takes: its name when it lists none."""
    config = spec.config
    subjects = config.get("subjects") or []
    claims = [_Claim(subject, spec, f"subjects.{i}") for i, subject in enumerate(subjects)
              if not subject_problem(subject)]
    if not subjects and "mirror" not in config and not config.get("sources"):
        claims.append(_Claim(spec.name, spec, "name"))
    return claims


def _overlap(claim: _Claim, other: _Claim) -> Problem:
    theirs = (
        f"the default subject of stream '{other.stream}'"
        if other.implicit
        else f"'{other.subject}' of stream '{other.stream}'"
    )
    if claim.implicit:
        message = (
            f"without subjects, stream '{claim.stream}' takes the subject '{claim.subject}', "
            f"which overlaps {theirs} ({other.location})"
        )
        hint = "list subjects that no other stream takes"
    else:
        message = f"'{claim.subject}' overlaps {theirs} ({other.location})"
        hint = "a message subject can belong to one stream only: narrow one of them"
    return Problem(claim.location, claim.path, message, hint)


def _stored_subjects(config: Config) -> list[str]:
    """The subjects the server stores for a stream: its name when it lists none."""
    subjects = list(config.get("subjects") or [])
    if not subjects and "mirror" not in config and not config.get("sources"):
        subjects = [config["name"]]
    return subjects


def _reads_from(config: Config) -> list[tuple[str, Config]]:
    """(path, mirror or source) of every stream this one reads from."""
    out: list[tuple[str, Config]] = []
    mirror = config.get("mirror")
    if isinstance(mirror, dict):
        out.append(("mirror", mirror))
    for index, source in enumerate(config.get("sources") or []):
        out.append((f"sources.{index}", source))
    return out


def _origins(config: Config) -> list[tuple[str, Config]]:
    """(path, mirror or source) of every stream this one reads from in its own domain."""
    return [(path, s) for path, s in _reads_from(config) if "external" not in s]


def _external(config: Config) -> list[tuple[str, Config]]:
    """(path, mirror or source) of every stream this one reads from in another domain."""
    return [(path, s) for path, s in _reads_from(config) if "external" in s]


def _check_origins(spec: StreamSpec, declared: Mapping[str, StreamSpec]) -> list[Problem]:
    """The server's checks that read the origin streams, when the manifests declare them:
    what a mirror inherits, message sizes, delivery prefixes, and cycles."""
    config = spec.config
    if "mirror" not in config and not config.get("sources"):
        return []  # reads from no stream: nothing below applies
    found: list[tuple[str, str, str]] = []
    origin_subjects: list[str] = []
    for path, source in _origins(config):
        origin = declared.get(source.get("name", ""))
        if origin is not None:
            origin_subjects.extend(_stored_subjects(origin.config))
            found.extend(_inherited(config, path, origin))
    found.extend(_delivery_prefixes(config, origin_subjects))
    if cycle := _find_cycle(spec, declared):
        path, through = cycle
        found.append((
            path,
            f"reading from '{through}' leads back to stream '{spec.name}': the server refuses "
            "a cycle of mirrors and sources",
            "remove this mirror or source, or give the sources on the way a filter_subject "
            "that the subjects of the stream they read from do not match",
        ))  # fmt: skip
    return [Problem(spec.where(path), path, message, hint) for path, message, hint in found]


def _inherited(config: Config, path: str, origin: StreamSpec) -> list[tuple[str, str, str]]:
    """What a stream must match of one stream it reads from: message size, direct gets."""
    found: list[tuple[str, str, str]] = []
    own_size = config.get("max_msg_size", -1)
    their_size = origin.config.get("max_msg_size", -1)
    if 0 < own_size < their_size:
        found.append((
            "max_msg_size",
            f"{own_size} is below the max_msg_size of stream '{origin.name}' "
            f"({their_size}), which this stream {'mirrors' if path == 'mirror' else 'sources'}",
            f"write at least {their_size}, or remove max_msg_size",
        ))  # fmt: skip
    if path != "mirror":
        return found
    direct = origin.config.get("allow_direct") is True
    if (config.get("mirror_direct") is True) != direct:
        at = "mirror_direct" if "mirror_direct" in config else "mirror.name"
        if direct:
            found.append((
                at,
                f"stream '{origin.name}' allows direct gets, so its mirror serves them "
                "too and the server wants that written",
                "write mirror_direct: true",
            ))  # fmt: skip
        else:
            found.append((
                at,
                f"stream '{origin.name}' does not allow direct gets, so its mirror "
                "cannot serve them",
                f"remove mirror_direct, or write allow_direct: true in '{origin.name}'",
            ))  # fmt: skip
    return found


def _delivery_prefixes(config: Config, origin_subjects: list[str]) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for path, source in _origins(config) + _external(config):
        external = source.get("external")
        prefix = external.get("deliver") if isinstance(external, dict) else None
        if not prefix or not is_plain(prefix):
            continue
        for subject in origin_subjects:
            if subjects_collide(subject, f"{prefix}.{subject}"):
                found.append((
                    f"{path}.external.deliver",
                    f"messages delivered under '{prefix}' would match the subject "
                    f"'{subject}' of a stream this one reads from",
                    "choose a delivery prefix that no subject of those streams matches",
                ))  # fmt: skip
                break
    return found


def _find_cycle(spec: StreamSpec, declared: Mapping[str, StreamSpec]) -> tuple[str, str] | None:
    """The server's cycle check (`checkStreamCfg`), walking the declared streams as if they
    all existed: (path of this stream's mirror or source that leads back, the stream it
    names), or None."""
    # (config, subjects as the server sees them, the first step taken from `spec`)
    queue: list[tuple[Config, list[str], tuple[str, str] | None]] = [
        (spec.config, list(spec.config.get("subjects") or []), None)
    ]
    visited: set[str] = set()
    while queue:
        config, subjects, first = queue.pop(0)
        visited.add(config["name"])
        for path, source in _origins(config):
            name = source.get("name", "")
            step = first or (f"{path}.name", name)
            if path == "mirror":
                if name in visited:
                    return step
            elif name in visited:
                filter_subject = source.get("filter_subject") or ""
                if not filter_subject or any(subjects_collide(s, filter_subject) for s in subjects):
                    return step
                continue
            origin = declared.get(name)
            if origin is not None and name not in visited:
                queue.append((origin.config, _stored_subjects(origin.config), step))
    return None
