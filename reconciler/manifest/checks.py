"""The server rules that need more than a predicate: each is a function from a document's
`Facts` to findings, listed as a row of the rule table (`rules.RULES`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from reconciler.manifest.facts import Facts, Finding
from reconciler.manifest.names import (
    filter_within,
    filters_overlap,
    is_plain,
    name_problem,
    subject_problem,
)
from reconciler.plan import ownership
from reconciler.subjects import SubjectIndex, subject_is_subset, subjects_collide, transform_error

API_PREFIX: Final = "$JS.API"
TRANSFORM_HINT: Final = (
    "write a subject whose tokens are literals, $n or {{wildcard(n)}} for the source's n-th "
    "'*', other functions of them, and '>' at the end when the source ends in '>'"
)
#: the server's own subject spaces, and the part of each a stream may capture with acks
_SERVER_SPACES: Final = (
    ("$JS.>", "$JS.EVENT.>"),
    ("$JSC.>", None),
    ("$NRG.>", None),
    ("$SYS.>", "$SYS.ACCOUNT.>"),
)


def subjects(f: Facts) -> Iterator[Finding]:
    """Each subject: valid, listed once, not overlapping another of the stream, and taking
    nothing of the server's own subjects without no_ack."""
    listed = f.get("subjects") or []
    # one subject cannot overlap another: no index to build (most streams have one)
    seen: SubjectIndex[tuple[int, str]] | None = SubjectIndex() if len(listed) > 1 else None
    for index, subject in enumerate(listed):
        path = f"subjects.{index}"
        if bad := subject_problem(subject):
            yield path, *bad
            continue
        if seen is not None:
            first = seen.first_collision(subject)
            if first is None:
                seen.add(subject, (index, subject))
            else:
                yield _overlap(f, path, subject, *first)
        yield from _server_subjects(f, path, subject)


def _overlap(f: Facts, path: str, subject: str, other_index: int, other: str) -> Finding:
    other_line = f.line(f"subjects.{other_index}")
    if other == subject:
        return path, f"'{subject}' is already listed at line {other_line}", "remove one of them"
    if subject_is_subset(subject, other):
        hint = f"remove '{subject}': '{other}' already covers it"
    elif subject_is_subset(other, subject):
        hint = f"remove '{other}': '{subject}' already covers it"
    else:
        hint = "a message may match only one subject of a stream: narrow one of them"
    return path, f"'{subject}' overlaps '{other}' (line {other_line})", hint


def _server_subjects(f: Facts, path: str, subject: str) -> Iterator[Finding]:
    no_ack = f.on("no_ack")
    if subject == ">":
        if not no_ack:
            yield (
                path,
                "'>' captures every subject, which needs no_ack: true",
                "add no_ack: true, or list narrower subjects",
            )
        replicas = f.get("num_replicas")
        if isinstance(replicas, int) and replicas > 1:
            yield (
                path,
                "'>' captures every subject, which needs num_replicas: 1",
                "write num_replicas: 1, or list narrower subjects",
            )
    elif not no_ack and subject[0] in "$*>":  # others cannot reach the server's spaces
        for space, allowed in _SERVER_SPACES:
            if subjects_collide(subject, space) and not (
                allowed and subject_is_subset(subject, allowed)
            ):
                yield (
                    path,
                    f"'{subject}' overlaps the server's own subjects ({space}), "
                    "which needs no_ack: true",
                    "choose other subjects, or add no_ack: true",
                )
                break


def mirror(f: Facts) -> Iterator[Finding]:
    return source(f, "mirror", f.get("mirror"))


def sources(f: Facts) -> Iterator[Finding]:
    for index, each in enumerate(f.get("sources") or []):
        yield from source(f, f"sources.{index}", each)


def source(f: Facts, path: str, source: Mapping[str, Any]) -> Iterator[Finding]:
    """What a mirror and each source share: names, filters, transforms, durable consumer."""
    name = source.get("name")
    if isinstance(name, str) and (bad := name_problem(name)):
        yield f"{path}.name", *bad
    filter_subject = source.get("filter_subject")
    if filter_subject and (bad := subject_problem(filter_subject)):
        yield f"{path}.filter_subject", *bad
    if filter_subject and source.get("subject_transforms"):
        yield (
            f"{path}.filter_subject",
            "filter_subject and subject_transforms cannot be used together",
            "move the filter into subject_transforms as src",
        )
    yield from _source_transforms(f, path, source.get("subject_transforms") or [])
    consumer = source.get("consumer")
    if isinstance(consumer, dict):
        yield from _source_consumer(path, source, consumer)
    external = source.get("external")
    if isinstance(external, dict):
        yield from _source_external(path, external)


def _source_transforms(
    f: Facts, path: str, transforms: Sequence[Mapping[str, Any]]
) -> Iterator[Finding]:
    srcs: list[tuple[int, str]] = []
    for index, each in enumerate(transforms):
        at = f"{path}.subject_transforms.{index}.src"
        found, ok = transform(f"{path}.subject_transforms.{index}", each)
        yield from found
        if not ok:
            continue
        src = each.get("src") or ""
        for other_index, other in srcs:
            # the server's tests differ: any overlap for a mirror, a subset for a source
            if (
                filters_overlap(src, other)
                if path == "mirror"
                else (filter_within(src, other) or filter_within(other, src))
            ):
                line = f.line(f"{path}.subject_transforms.{other_index}.src")
                yield (
                    at,
                    f"'{src}' overlaps '{other}' (line {line})",
                    "the filters of one source must not overlap: narrow one of them",
                )
                break
        else:
            srcs.append((index, src))


def _source_consumer(
    path: str, source: Mapping[str, Any], consumer: Mapping[str, Any]
) -> Iterator[Finding]:
    at = f"{path}.consumer"
    consumer_name = consumer.get("name")
    if isinstance(consumer_name, str) and (bad := name_problem(consumer_name)):
        yield f"{at}.name", *bad
    deliver = consumer.get("deliver_subject")
    if isinstance(deliver, str) and not is_plain(deliver):
        yield (
            f"{at}.deliver_subject",
            f"'{deliver}' is not a subject without wildcards",
            "write a plain subject such as 'deliver.orders'",
        )
    for key in ("opt_start_seq", "opt_start_time", "filter_subject"):
        if source.get(key):
            yield (
                f"{path}.{key}",
                f"{key} cannot be combined with a durable consumer",
                f"remove {key}, or the consumer",
            )


def _source_external(path: str, external: Mapping[str, Any]) -> Iterator[Finding]:
    for key in ("api", "deliver"):
        prefix = external.get(key)
        if prefix and not is_plain(prefix):
            yield (
                f"{path}.external.{key}",
                f"'{prefix}' is not a subject without wildcards",
                "write a plain subject prefix such as '$JS.hub.API'",
            )
        elif key == "api" and prefix and subjects_collide(prefix, API_PREFIX):
            yield (
                f"{path}.external.api",
                f"'{prefix}' overlaps this server's own API ({API_PREFIX})",
                "write the prefix under which the other domain's API is imported, "
                "such as '$JS.hub.API'",
            )


def transform(path: str, each: Mapping[str, Any]) -> tuple[list[Finding], bool]:
    """A stream, mirror or source transform's findings; whether its src is a valid subject
    (or none)."""
    src = each.get("src") or ""
    dest = each.get("dest") or ""
    if src and (bad := subject_problem(src)):
        return [(f"{path}.src", *bad)], False
    if error := transform_error(src, dest):
        return [(f"{path}.dest", error, TRANSFORM_HINT)], True
    return [], True


def subject_transform(f: Facts) -> list[Finding]:
    return transform("subject_transform", f.get("subject_transform"))[0]


def republish(f: Facts) -> Iterator[Finding]:
    """Republish: a valid source, a destination that does not loop back into the stream."""
    republish = f.get("republish")
    src = republish.get("src") or ">"  # the server's default, which the plan writes out
    dest = republish.get("dest") or ""
    if bad := subject_problem(src):
        yield "republish.src", *bad
        return
    transform = f.get("subject_transform")
    subjects = f.get("subjects") or []
    if (
        src == ">"
        and dest == ">"
        and isinstance(transform, dict)
        and len(subjects) == 1
        and transform.get("src") == subjects[0]
        and transform.get("dest")
    ):
        shown = transform["dest"]
        yield (
            "republish",
            "'>' to '>' next to a subject_transform of the stream's only subject would be "
            f"read by the server as a republish of '{shown}'",
            f"write src: '{shown}' and dest: '{shown}'",
        )
        return
    name = f.get("name")
    own = subjects or (
        [name]
        if isinstance(name, str) and "mirror" not in f.config and not f.get("sources")
        else []
    )
    for subject in own:
        if dest and not subject_problem(subject) and subjects_collide(dest, subject):
            yield (
                "republish.dest",
                f"'{dest}' overlaps the stream's own subject '{subject}', "
                "so republished messages would loop back into the stream",
                "choose a destination outside the stream's subjects",
            )
            return
    if error := transform_error(src, dest, mapping=False):
        yield "republish.dest", error, TRANSFORM_HINT


def duplicate_sources(f: Facts) -> Iterator[Finding]:
    """Sources the server cannot tell apart (`composeIName`, `composeCName`)."""
    seen: dict[tuple[Any, ...], int] = {}
    consumers: dict[tuple[Any, ...], int] = {}
    for index, source in enumerate(f.get("sources") or []):
        external = source.get("external")
        api = external.get("api") if isinstance(external, dict) else None
        consumer = source.get("consumer")
        consumer_name = consumer.get("name") if isinstance(consumer, dict) else None
        transforms = tuple(
            (t.get("src") or ">", t.get("dest") or ">")
            for t in source.get("subject_transforms") or []
        )
        identity = (
            source.get("name"),
            api,
            consumer_name,
            transforms or ((source.get("filter_subject") or ">", ">"),),
        )
        if identity in seen:
            line = f.line(f"sources.{seen[identity]}")
            yield (
                f"sources.{index}",
                f"stream '{source.get('name')}' is already sourced the same way at line {line}",
                "remove one of them",
            )
        else:
            seen[identity] = index
        if consumer_name is not None:
            key = (source.get("name"), api, consumer_name)
            if key in consumers:
                line = f.line(f"sources.{consumers[key]}")
                yield (
                    f"sources.{index}.consumer.name",
                    f"consumer '{consumer_name}' of stream '{source.get('name')}' already "
                    f"sources it at line {line}",
                    "give each source of one stream its own consumer name",
                )
            else:
                consumers[key] = index


def server_metadata_keys(f: Facts) -> Iterator[Finding]:
    for key in f.get("metadata"):
        if key.startswith("_nats."):
            yield (
                f"metadata.{key}",
                "keys starting with '_nats.' belong to the server, which overwrites them",
                "choose another key",
            )
        elif ownership.is_reserved(key):
            yield (
                f"metadata.{key}",
                f"keys starting with '{ownership.PREFIX}' are where the reconciler records "
                "which streams it owns; it writes them itself",
                "remove the key (--owner names the owner)",
            )


def metadata_size(metadata: Mapping[str, Any]) -> int:
    """The bytes of the keys and values the manifest sends (never '_nats.' keys, which the
    server replaces, nor ownership keys, which `ownership.RESERVED_BYTES` keeps room for)."""
    return sum(
        len(k.encode()) + len(str(v).encode())
        for k, v in metadata.items()
        if not k.startswith("_nats.") and not ownership.is_reserved(k)
    )
