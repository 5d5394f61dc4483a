"""THE RULE TABLE: what the server refuses in a stream's configuration (`checkStreamCfg` in
nats-server's server/stream.go) that can be known without asking it.

Each rule is a row, checked in the order of the table (problems at one place keep that
order): a `Rule` is a predicate over the document's `Facts`, the field path it is reported
at, the message and the hint; a `Check` is a rule that needs code (`checks.py`). A row runs
only when the top-level field it `needs` is in the configuration."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from reconciler.manifest import checks
from reconciler.manifest.facts import Facts, Finding
from reconciler.manifest.fieldfacts import (
    MAX_DESCRIPTION_LEN,
    MAX_METADATA_BYTES,
    MAX_REPLICAS,
    MINIMUMS,
    NOT_ON_MIRROR,
)
from reconciler.manifest.names import name_problem
from reconciler.model import LEASE_STREAM
from reconciler.plan.ownership import RESERVED_BYTES
from reconciler.units import format_duration

Text = str | Callable[[Facts], str]


def _text(text: Text, f: Facts) -> str:
    return text if isinstance(text, str) else text(f)


@dataclass(frozen=True)
class Rule:
    """When `when` holds, the configuration is refused at `at` with `message` and `hint`."""

    at: str
    when: Callable[[Facts], bool]
    message: Text
    hint: Text
    needs: str = ""
    """the top-level field without which the rule cannot apply (default: the one of `at`)"""

    @property
    def field(self) -> str:
        return self.needs or self.at.partition(".")[0]

    def check(self, f: Facts) -> Iterable[Finding]:
        if self.when(f):
            return ((self.at, _text(self.message, f), _text(self.hint, f)),)
        return ()


@dataclass(frozen=True)
class Check:
    """A rule that needs code: `run` yields its findings."""

    field: str
    run: Callable[[Facts], Iterable[Finding]]

    def check(self, f: Facts) -> Iterable[Finding]:
        return self.run(f)


def _bad_name(f: Facts) -> Iterator[Finding]:
    name = f.get("name")
    if isinstance(name, str) and (bad := name_problem(name)):
        yield "name", *bad


def _short(key: str, minimum: int) -> Callable[[Facts], bool]:
    """A duration set (above 0) below `minimum`."""
    return lambda f: isinstance(v := f.get(key), int) and 0 < v < minimum


def _minimum(path: str) -> tuple[Rule, ...]:
    """The server's lower bound of a duration (`MINIMUMS`); a duplicate window must also
    not be longer than max_age."""
    least = MINIMUMS[path]
    below = _short(path, least.value)
    rows = [
        Rule(
            path,
            below,
            lambda f: f"{f.written(path)} is below the minimum of {least.text}",
            least.hint,
        )
    ]
    if path == "duplicate_window":
        rows.append(
            Rule(
                path,
                lambda f: (
                    not below(f)
                    and isinstance(window := f.get(path), int)
                    and isinstance(age := f.get("max_age"), int)
                    and 0 < age < window
                ),
                lambda f: f"{f.written(path)} is longer than max_age ({f.written('max_age')})",
                lambda f: f"write at most {format_duration(f.get('max_age'))}",
            )
        )
    return tuple(rows)


def _replicas(f: Facts) -> int | None:
    value = f.get("num_replicas")
    return value if isinstance(value, int) else None


_NAMES: Final[tuple[Rule | Check, ...]] = (
    Check("name", _bad_name),
    Rule(
        "name",
        lambda f: f.get("name") == LEASE_STREAM,
        lambda f: f"'{f.get('name')}' is the stream of the reconcilers' lease bucket",
        "choose another name",
    ),
    Check("subjects", checks.subjects),
)

_LIMITS: Final[tuple[Rule | Check, ...]] = (
    Rule(
        "num_replicas",
        lambda f: (r := _replicas(f)) is not None and not 1 <= r <= MAX_REPLICAS,
        lambda f: f"{f.get('num_replicas')} is out of range",
        f"write a number from 1 to {MAX_REPLICAS}",
    ),
    *(row for path in MINIMUMS for row in _minimum(path)),
)


def _turned_by(cause: str, active: Callable[[Facts], bool]) -> tuple[Rule, ...]:
    """The flags the server silently turns on or off when `cause` is active: say so, or the
    plan sees drift forever."""
    rows = [
        Rule(
            "allow_rollup_hdrs",
            lambda f: active(f) and f.off("allow_rollup_hdrs"),
            f"{cause} needs rollups, so the server turns this on",
            "write allow_rollup_hdrs: true, or remove the line",
        ),
        Rule(
            "deny_purge",
            lambda f: active(f) and f.on("deny_purge"),
            f"{cause} needs purges, so the server turns this off",
            "write deny_purge: false, or remove the line",
        ),
    ]
    if cause == "subject_delete_marker_ttl":
        rows.insert(
            0,
            Rule(
                "allow_msg_ttl",
                lambda f: active(f) and f.off("allow_msg_ttl"),
                f"{cause} needs message TTLs, so the server turns this on",
                "write allow_msg_ttl: true, or remove the line",
            ),
        )
    return tuple(rows)


def _markers(f: Facts) -> bool:
    return f.positive("subject_delete_marker_ttl")


def _counter(when: Callable[[Facts], bool], message: str, hint: str) -> Rule:
    return Rule("allow_msg_counter", lambda f: f.on("allow_msg_counter") and when(f), message, hint)


def _schedules(when: Callable[[Facts], bool], message: str, hint: str) -> Rule:
    return Rule(
        "allow_msg_schedules", lambda f: f.on("allow_msg_schedules") and when(f), message, hint
    )


_FLAGS: Final[tuple[Rule | Check, ...]] = (
    # with delete markers, deny_purge: true is reported below (the plan turns it off)
    Rule(
        "allow_rollup_hdrs",
        lambda f: f.on("deny_purge") and f.on("allow_rollup_hdrs") and not _markers(f),
        "rollups purge messages, which deny_purge: true forbids",
        "set deny_purge or allow_rollup_hdrs to false",
    ),
    *_turned_by("subject_delete_marker_ttl", _markers),
    *_turned_by("allow_msg_schedules", lambda f: f.on("allow_msg_schedules")),
    Rule(
        "discard_new_per_subject",
        lambda f: f.on("discard_new_per_subject") and f.get("discard") != "new",
        "needs discard: new",
        "add discard: new",
    ),
    Rule(
        "discard_new_per_subject",
        lambda f: f.on("discard_new_per_subject") and not f.positive("max_msgs_per_subject"),
        "needs max_msgs_per_subject above 0",
        "set max_msgs_per_subject, e.g. max_msgs_per_subject: 1",
    ),
    _counter(
        lambda f: f.get("discard") == "new",
        "a counter stream cannot use discard: new",
        "remove discard: new",
    ),
    _counter(
        lambda f: f.on("allow_msg_ttl"),
        "a counter stream cannot use message TTLs",
        "remove allow_msg_ttl: true",
    ),
    _counter(
        lambda f: not f.on("allow_msg_ttl") and _markers(f),
        "a counter stream cannot use message TTLs, which subject_delete_marker_ttl turns on",
        "remove subject_delete_marker_ttl",
    ),
    _counter(
        lambda f: f.on("allow_msg_schedules"),
        "a counter stream cannot use message schedules",
        "remove allow_msg_schedules: true",
    ),
    _counter(
        lambda f: f.get("retention", "limits") != "limits",
        "a counter stream needs retention: limits",
        "write retention: limits, or leave retention out",
    ),
    _schedules(
        lambda f: f.get("discard") == "new",
        "message schedules cannot use discard: new",
        "remove discard: new",
    ),
    _schedules(
        lambda f: bool(f.get("sources")),
        "a stream with sources cannot use message schedules",
        "remove allow_msg_schedules or sources",
    ),
)


def _description_bytes(f: Facts) -> int:
    description = f.get("description")
    if isinstance(description, str) and len(description) <= MAX_DESCRIPTION_LEN:
        return len(description.encode())  # the server counts bytes
    return 0


def _set_on_mirror(key: str) -> Callable[[Facts], bool]:
    def when(f: Facts) -> bool:
        value = f.get(key)
        return f.get("mirror") is not None and (
            value is True or (not isinstance(value, bool) and bool(value))
        )

    return when


_METADATA_ROOM: Final = MAX_METADATA_BYTES - RESERVED_BYTES


def _metadata_bytes(f: Facts) -> int:
    metadata = f.get("metadata")
    return checks.metadata_size(metadata) if isinstance(metadata, dict) else 0


def _async(when: Callable[[Facts], bool], message: str, hint: str) -> Rule:
    return Rule("persist_mode", lambda f: f.get("persist_mode") == "async" and when(f), message,
                hint)  # fmt: skip


_SHAPE: Final[tuple[Rule | Check, ...]] = (
    Rule(
        "description",
        lambda f: _description_bytes(f) > MAX_DESCRIPTION_LEN,
        lambda f: (
            f"the text takes {_description_bytes(f)} bytes in UTF-8, more than "
            f"{MAX_DESCRIPTION_LEN}"
        ),
        f"shorten it to at most {MAX_DESCRIPTION_LEN} bytes (a non-ASCII character takes 2 to 4)",
    ),
    *(
        Rule(key, _set_on_mirror(key), message, f"remove {key}, or the mirror", needs="mirror")
        for key, message in NOT_ON_MIRROR
    ),
    Check("mirror", checks.mirror),
    Check("sources", checks.sources),
    Check("sources", checks.duplicate_sources),
    Check("subject_transform", checks.subject_transform),
    Rule(
        "mirror_direct",
        lambda f: f.on("mirror_direct") and f.get("mirror") is None,
        "mirror_direct serves direct gets for a mirror's origin, and this stream has no mirror",
        "remove mirror_direct, or add a mirror",
    ),
    Check("republish", checks.republish),
    Rule(
        "placement.preferred",
        lambda f: bool(f.get("placement").get("preferred")),
        "the server does not accept a preferred server in a stream's placement",
        "remove preferred",
    ),
    Check("metadata", checks.server_metadata_keys),
    Rule(
        "metadata",
        lambda f: _metadata_bytes(f) > _METADATA_ROOM,
        lambda f: (
            f"keys and values take {_metadata_bytes(f)} bytes, more than {_METADATA_ROOM} (the "
            f"server's {MAX_METADATA_BYTES}, less {RESERVED_BYTES} kept for the ownership keys)"
        ),
        "move large values elsewhere",
    ),
    _async(
        lambda f: f.get("storage") == "memory",
        "async persistence needs file storage",
        "remove persist_mode, or use storage: file",
    ),
    _async(
        lambda f: (r := _replicas(f)) is not None and r > 1,
        "async persistence does not work with num_replicas above 1",
        "remove persist_mode, or use num_replicas: 1",
    ),
    _async(
        lambda f: f.on("allow_atomic"),
        "async persistence does not work with allow_atomic",
        "remove persist_mode or allow_atomic",
    ),
)

#: every rule, in the order its problems are reported
RULES: Final[tuple[Rule | Check, ...]] = (*_NAMES, *_LIMITS, *_FLAGS, *_SHAPE)


#: (the field that triggers it, the rule), computed once: this runs for every document
_ROWS: Final = tuple((rule.field, rule) for rule in RULES)


def check_config(f: Facts) -> list[Finding]:
    """The findings of every rule that applies to the document's configuration."""
    config = f.config
    found: list[Finding] = []
    for field, rule in _ROWS:
        if field in config:
            found.extend(rule.check(f))
    return found
