"""The plan: a pure function from desired specs and live streams to what must change.

No I/O, no clock, no logging. Both sides are brought to one canonical form (the form the
server stores: its defaults filled in, its own `_nats.*` metadata dropped, omitted booleans
false, durations integer nanoseconds), then diffed field by field. Each change is checked
against what the server can do (immutable and one-way fields) and against what it does to
stored messages (predicted exactly from the live stream's messages before applying).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model import (
    Action,
    Config,
    FieldChange,
    Impact,
    LiveStream,
    MessageSample,
    Plan,
    StoredMessage,
    StreamPlan,
    StreamSpec,
)
from reconciler.units import format_timestamp, parse_timestamp

# --- the server's defaults -------------------------------------------------------------------

DEFAULT_DUPLICATE_WINDOW_NS = 120 * 1_000_000_000
"""nats-server's StreamDefaultDuplicatesWindow (2 minutes)."""

#: top-level fields that mean "no limit" as -1; the server turns 0 (and anything below -1) into -1
_UNLIMITED_AS_MINUS_ONE = ("max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size",
                           "max_consumers")

_DEFAULTS: dict[str, Any] = {
    "retention": "limits",
    "storage": "file",
    "discard": "old",
    "num_replicas": 1,
    "max_age": 0,
    "compression": "none",
}

BOOLEANS = (
    "no_ack", "sealed", "deny_delete", "deny_purge", "allow_rollup_hdrs", "allow_direct",
    "mirror_direct", "discard_new_per_subject", "allow_atomic", "allow_msg_counter",
    "allow_msg_schedules", "allow_msg_ttl", "allow_batched",
)

#: nested objects whose zero values mean "unset" (the server omits them)
_NESTED = ("subject_transform", "placement", "mirror", "republish", "consumer_limits")

#: every field this version knows; anything else in a live config is ignored
KNOWN_FIELDS = frozenset({
    "name", "description", "subjects", "subject_transform", "retention", "max_consumers",
    "max_msgs", "max_msgs_per_subject", "max_bytes", "max_age", "max_msg_size", "storage",
    "discard",
    "compression", "first_seq", "num_replicas", "duplicate_window", "placement", "mirror",
    "sources", "republish", "metadata", "consumer_limits", "subject_delete_marker_ttl",
    "persist_mode", *BOOLEANS,
})

SERVER_METADATA_PREFIX = "_nats."


def canonical(config: Config) -> dict[str, Any]:
    """The configuration as the server would store it, in a form two equal configs share."""
    c: dict[str, Any] = {k: v for k, v in config.items() if k in KNOWN_FIELDS}
    is_mirror = bool(c.get("mirror"))
    is_sourced = bool(c.get("sources"))

    for key, value in _DEFAULTS.items():
        if c.get(key) in (None, ""):
            c[key] = value
    for key in _UNLIMITED_AS_MINUS_ONE:
        value = c.get(key)
        if value is None or value == 0 or value < -1:
            c[key] = -1
    if c["num_replicas"] == 0:
        c["num_replicas"] = 1
    for key in BOOLEANS:
        c[key] = bool(c.get(key))

    subjects = c.get("subjects") or []
    if not subjects and not is_mirror and not is_sourced:
        subjects = [c.get("name", "")]
    c["subjects"] = sorted(subjects)  # a set to the server: order carries no meaning

    if not c.get("duplicate_window"):
        if is_mirror or is_sourced:
            c["duplicate_window"] = 0
        else:
            max_age = c["max_age"]
            c["duplicate_window"] = (
                max_age if 0 < max_age < DEFAULT_DUPLICATE_WINDOW_NS
                else DEFAULT_DUPLICATE_WINDOW_NS
            )

    c["first_seq"] = c.get("first_seq") or 0
    c["subject_delete_marker_ttl"] = c.get("subject_delete_marker_ttl") or 0
    if c.get("persist_mode") in (None, "", "default"):
        c.pop("persist_mode", None)
    if not c.get("description"):
        c.pop("description", None)

    # settings the server forces when another one is on
    if c["subject_delete_marker_ttl"] > 0:
        c["allow_msg_ttl"] = True
        c["allow_rollup_hdrs"] = True
        c["deny_purge"] = False
    if c["allow_msg_schedules"]:
        c["allow_rollup_hdrs"] = True
    if c["sealed"]:
        c["max_age"] = 0
        c["discard"] = "new"
        c["deny_delete"] = True
        c["deny_purge"] = True
        c["allow_rollup_hdrs"] = False

    metadata = {
        k: v for k, v in (c.get("metadata") or {}).items()
        if not k.startswith(SERVER_METADATA_PREFIX)
    }
    if metadata:
        c["metadata"] = metadata
    else:
        c.pop("metadata", None)

    republish = c.get("republish")
    if isinstance(republish, Mapping) and republish.get("dest") and not republish.get("src"):
        c["republish"] = {**republish, "src": ">"}  # the server's default, refused if left out

    for key in _NESTED:
        value = _prune(c.get(key))
        if value:
            c[key] = value
        else:
            c.pop(key, None)
    sources = [s for s in (_prune(s) for s in c.get("sources") or []) if s]
    if sources:
        c["sources"] = sources
    else:
        c.pop("sources", None)
    return c


def _prune(value: Any) -> Any:
    """Drop zero values inside nested objects (the server omits them); normalise timestamps."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            v = _prune(v)
            if k == "opt_start_time" and isinstance(v, str):
                v = normalise_timestamp(v)
            if v not in (None, "", 0, False, [], {}):
                out[k] = v
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def normalise_timestamp(text: str) -> str:
    """One spelling per instant, so that two spellings of one time are no change."""
    try:
        return format_timestamp(parse_timestamp(text))
    except ValueError:
        return text


# --- diff ------------------------------------------------------------------------------------

#: fields compared as a whole value; a change in any part shows the whole
_WHOLE = ("subjects", "sources")


def diff(desired: Config, live: Config, ignore: Sequence[str] = ()) -> tuple[FieldChange, ...]:
    """Field-level differences between two canonical configs, in field order, dotted paths."""
    changes: list[FieldChange] = []
    _diff_into(changes, "", desired, live)
    return tuple(c for c in changes if not _ignored(c.path, ignore))


def _diff_into(out: list[FieldChange], prefix: str, desired: Any, live: Any) -> None:
    nested = isinstance(desired, Mapping) or isinstance(live, Mapping)
    if nested and prefix.rstrip(".") not in _WHOLE:
        desired, live = desired or {}, live or {}
        if isinstance(desired, Mapping) and isinstance(live, Mapping):
            for key in sorted(set(desired) | set(live), key=_field_order):
                _diff_into(out, f"{prefix}{key}.", desired.get(key), live.get(key))
            return
    if desired != live:
        out.append(FieldChange(prefix.rstrip("."), live, desired))


_ORDER = {name: i for i, name in enumerate((
    "name", "description", "subjects", "retention", "storage", "max_msgs", "max_bytes",
    "max_age", "max_msgs_per_subject", "max_msg_size", "max_consumers", "discard",
    "discard_new_per_subject", "num_replicas", "duplicate_window",
))}


def _field_order(key: str) -> tuple[int, str]:
    return (_ORDER.get(key, len(_ORDER)), key)


def _ignored(path: str, ignore: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in ignore)


def desired_config(spec: StreamSpec, live: LiveStream | None) -> dict[str, Any]:
    """The whole configuration to send: the manifest's, with the server's defaults written
    out, and fields another tool owns (`reconcile.ignore_fields`) kept at their live value.

    A manifest that leaves `duplicate_window` out gets the server's default window for its
    `max_age`, so lowering max_age under 2m lowers the window with it (the server refuses a
    max_age below the window)."""
    raw: dict[str, Any] = {**spec.config, "name": spec.name}
    if live is not None and spec.policy.ignore_fields:
        live_config = canonical(live.config)
        for path in spec.policy.ignore_fields:
            _copy_path(path.split("."), live_config, raw)
    return canonical(raw)


def _copy_path(path: list[str], source: Mapping[str, Any], target: dict[str, Any]) -> None:
    head, rest = path[0], path[1:]
    if head not in source:
        target.pop(head, None)
    elif not rest or not isinstance(source[head], Mapping):
        target[head] = source[head]
    else:
        inner = dict(target.get(head) or {})
        _copy_path(rest, source[head], inner)
        target[head] = inner


# --- what the server cannot change -----------------------------------------------------------

ONE_WAY = ("sealed", "deny_delete", "deny_purge", "allow_msg_ttl", "allow_msg_schedules")


def blocked_reasons(desired: Config, live: Config) -> tuple[str, ...]:
    """Why the server would refuse to turn `live` into `desired` (both canonical)."""
    reasons = []
    if desired["storage"] != live["storage"]:
        reasons.append(
            f"storage cannot change on an existing stream ({live['storage']} -> "
            f"{desired['storage']}); keep storage: {live['storage']}, or declare a new "
            "stream with the new storage and move the data"
        )
    old_r, new_r = live["retention"], desired["retention"]
    if old_r != new_r and "workqueue" in (old_r, new_r):
        reasons.append(
            f"retention cannot change from {old_r} to {new_r} (only limits <-> interest is "
            f"possible); keep retention: {old_r}"
        )
    if desired.get("mirror") != live.get("mirror") and desired.get("mirror"):
        what = "added to" if not live.get("mirror") else "changed on"
        reasons.append(
            f"a mirror cannot be {what} an existing stream; remove the mirror block or "
            "declare the mirror as a new stream"
        )
    for key in ("allow_msg_counter", "persist_mode"):
        if desired.get(key) != live.get(key):
            reasons.append(
                f"{key} cannot change on an existing stream; keep {key}: "
                f"{_show(live.get(key, 'default'))}"
            )
    for key in ONE_WAY:
        if live[key] and not desired[key]:
            reasons.append(
                f"{key} cannot be turned off once on; keep {key}: true"
            )
    return tuple(reasons)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- what a change does to stored messages ---------------------------------------------------


@dataclass(frozen=True)
class SampleRequest:
    """What the impact prediction needs read from the live stream."""

    subject_counts: bool = False


def _tighter(new: int, old: int) -> bool:
    """A limit where -1 (or 0 for max_age) means none: is `new` stricter than `old`?"""
    return new > 0 and (old <= 0 or new < old)


def sample_request(desired: Config, live: LiveStream) -> SampleRequest | None:
    """Whether predicting the impact of `desired` needs the live stream's messages read."""
    if live.state.messages == 0:
        return None
    old = canonical(live.config)
    if desired == old:
        return None
    per_subject = _tighter(desired["max_msgs_per_subject"], old["max_msgs_per_subject"])
    discards_old = desired["discard"] == "old"
    exceeds = discards_old and (
        (desired["max_msgs"] > 0 and live.state.messages > desired["max_msgs"])
        or (desired["max_bytes"] > 0 and live.state.bytes > desired["max_bytes"])
    )
    ages = _tighter(desired["max_age"], old["max_age"])
    if per_subject or exceeds or ages:
        return SampleRequest(subject_counts=per_subject)
    return None


def stored_size(message: StoredMessage, storage: str) -> int:
    """Bytes a message takes in the stream's accounting (nats-server's fileStoreMsgSize and
    memStoreMsgSize)."""
    subject = len(message.subject.encode())
    if storage == "memory":
        return subject + message.headers_len + message.payload_len + 16
    headers = 4 + message.headers_len if message.headers_len else 0
    return 22 + subject + headers + message.payload_len + 8


def predict_impact(
    desired: Config, live: LiveStream, sample: MessageSample | None
) -> Impact | None:
    """Messages and bytes that applying `desired` (canonical) discards from `live`.

    Removal follows the server: messages past the new max_age expire, each subject keeps its
    newest `max_msgs_per_subject`, and with discard old the oldest go until `max_msgs` and
    `max_bytes` hold. Switching retention from limits to interest on a stream without
    consumers removes everything. Returns None when nothing can be lost.
    """
    state = live.state
    if state.messages == 0:
        return None
    old = canonical(live.config)
    if old["retention"] == "limits" and desired["retention"] == "interest":
        if state.consumer_count == 0:
            return Impact(state.messages, state.bytes, True, ("retention",))
        # Messages every consumer has acknowledged go; which those are is not knowable here.
        return Impact(0, 0, False, ("retention",))
    if sample is None:
        return None

    storage = old["storage"]
    max_age, per_subject = desired["max_age"], desired["max_msgs_per_subject"]
    discard_old = desired["discard"] == "old"
    max_msgs = desired["max_msgs"] if discard_old else -1
    max_bytes = desired["max_bytes"] if discard_old else -1
    cutoff = sample.now_ns - max_age if max_age > 0 else None

    counts: Counter[str] = Counter(sample.subject_counts or {})
    if not sample.subject_counts:
        counts.update(m.subject for m in sample.messages)
    if per_subject > 0:
        excess = {s: n - per_subject for s, n in counts.items() if n > per_subject}
    else:
        excess = {}

    messages = list(sample.messages)
    removed: set[int] = set()
    causes: set[str] = set()
    # 1. age, 2. per subject: both pick messages by their own rule
    for i, m in enumerate(messages):
        if cutoff is not None and m.time_ns <= cutoff:
            removed.add(i)
            causes.add("max_age")
            if excess.get(m.subject, 0) > 0:
                excess[m.subject] -= 1
    for i, m in enumerate(messages):
        if i not in removed and excess.get(m.subject, 0) > 0:
            removed.add(i)
            excess[m.subject] -= 1
            causes.add("max_msgs_per_subject")
    # 3. count and 4. size: the oldest of what is left
    remaining_msgs = state.messages - len(removed)
    remaining_bytes = state.bytes - sum(stored_size(messages[i], storage) for i in removed)
    for field, limit in (("max_msgs", max_msgs), ("max_bytes", max_bytes)):
        if limit <= 0:
            continue
        for i, m in enumerate(messages):
            over = remaining_msgs > limit if field == "max_msgs" else remaining_bytes > limit
            if not over:
                break
            if i in removed:
                continue
            removed.add(i)
            causes.add(field)
            remaining_msgs -= 1
            remaining_bytes -= stored_size(m, storage)

    lost_msgs = len(removed)
    lost_bytes = sum(stored_size(messages[i], storage) for i in removed)
    exact = sample.complete or _prefix_decides(
        messages, removed, cutoff, excess, remaining_msgs, max_msgs, remaining_bytes, max_bytes
    )
    if not lost_msgs and exact:
        return Impact(0, 0, True, ())
    return Impact(lost_msgs, lost_bytes, exact, tuple(sorted(causes, key=_field_order)))


def _prefix_decides(
    messages: Sequence[StoredMessage], removed: set[int], cutoff: int | None,
    excess: Mapping[str, int], remaining_msgs: int, max_msgs: int,
    remaining_bytes: int, max_bytes: int,
) -> bool:
    """With only a prefix read: is the unread rest certain to survive?"""
    if any(n > 0 for n in excess.values()):
        return False
    if max_msgs > 0 and remaining_msgs > max_msgs:
        return False
    if max_bytes > 0 and remaining_bytes > max_bytes:
        return False
    if cutoff is not None:
        survivors = [m for i, m in enumerate(messages) if i not in removed]
        if not survivors or survivors[-1].time_ns <= cutoff:
            return False
    return True


# --- the plan --------------------------------------------------------------------------------


def plan_stream(
    spec: StreamSpec,
    live: LiveStream | None,
    sample: MessageSample | None = None,
    *,
    allow_data_loss: bool = False,
) -> StreamPlan:
    """What to do with one declared stream."""
    config = desired_config(spec, live)
    if live is None:
        # what the manifest sets beyond a stream of all defaults
        changes = tuple(
            FieldChange(c.path, None, c.desired)
            for c in diff(config, canonical({"name": spec.name}))
        )
        if config["sealed"]:
            reason = ("a stream cannot be created sealed; apply it with sealed: false first, "
                      "then set sealed: true")
            return StreamPlan(spec.name, Action.BLOCKED, changes, config, (reason,),
                              location=spec.location)
        return StreamPlan(spec.name, Action.CREATE, changes, config, location=spec.location)

    live_canonical = canonical(live.config)
    changes = () if config == live_canonical else diff(
        config, live_canonical, spec.policy.ignore_fields)
    if not changes:
        return StreamPlan(spec.name, Action.NOOP, location=spec.location)

    reasons = list(blocked_reasons(config, live_canonical))
    impact = predict_impact(config, live, sample)
    if impact is not None and (impact.loses_data or not impact.exact):
        allowed = allow_data_loss or spec.policy.allow_data_loss
        if not allowed:
            reasons.append(
                f"{describe_impact(impact)}; set reconcile.allow_data_loss: true in the "
                "manifest or pass --allow-data-loss to accept the loss"
            )
    action = Action.BLOCKED if reasons else Action.UPDATE
    return StreamPlan(
        spec.name, action, changes, config, tuple(reasons), impact, spec.location
    )


def describe_impact(impact: Impact) -> str:
    causes = ", ".join(impact.causes) or "this change"
    if not impact.exact and impact.messages == 0:
        return f"{causes} may discard stored messages (the number cannot be known in advance)"
    qualifier = "at least " if not impact.exact else ""
    return (
        f"{causes} would discard {qualifier}{impact.messages} "
        f"{'message' if impact.messages == 1 else 'messages'} ({qualifier}{impact.bytes} bytes)"
    )


def build_plan(
    specs: Iterable[StreamSpec],
    live: Iterable[LiveStream],
    samples: Mapping[str, MessageSample] | None = None,
    *,
    allow_data_loss: bool = False,
) -> Plan:
    """The plan for every declared stream, plus the live streams no manifest declares."""
    by_name = {s.name: s for s in live}
    samples = samples or {}
    specs = list(specs)
    declared = {s.name for s in specs}
    streams = tuple(
        plan_stream(s, by_name.get(s.name), samples.get(s.name), allow_data_loss=allow_data_loss)
        for s in specs
    )
    unmanaged = tuple(sorted(n for n in by_name if n not in declared))
    return Plan(streams, unmanaged)
