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
from dataclasses import dataclass, replace
from typing import Any

from reconciler.model import (
    Action,
    Config,
    DriftMode,
    FieldChange,
    Impact,
    LiveStream,
    MessageSample,
    Plan,
    StoredMessage,
    StreamPlan,
    StreamSpec,
    StreamState,
    Topology,
)
from reconciler.subjects import subjects_collide
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


@dataclass(frozen=True)
class _Limits:
    """What an update does to stored messages, in the order the server does it.

    nats-server's `updateWithAdvisory` changes retention first (limits -> interest without
    consumers removes everything); then the store's `UpdateConfig` (file and memory alike)
    enforces `max_msgs`, then `max_bytes` (both only with discard old), then the per-subject
    limit (only when it is lowered or newly set), then expires messages past `max_age` (from
    the oldest, up to the first one young enough). A file stream whose first message is
    below a changed `first_seq` is purged whole when the server next starts.
    """

    max_msgs: int
    max_bytes: int
    per_subject: int
    max_age: int
    first_seq: int
    everything: str | None
    uncertain: str | None
    config: Config
    """The desired configuration: the limits a delete marker is stored under."""

    @classmethod
    def of(cls, desired: Config, old: Config, state: StreamState) -> _Limits:
        discard_old = desired["discard"] == "old"
        max_msgs, max_bytes = desired["max_msgs"], desired["max_bytes"]
        everything = uncertain = None
        if old["retention"] == "limits" and desired["retention"] == "interest":
            if state.consumer_count == 0:
                everything = "retention"
            else:  # messages every consumer acknowledged go: not knowable from here
                uncertain = "retention"
        first_seq = desired["first_seq"]
        purges = (old["storage"] == "file" and first_seq != old["first_seq"]
                  and first_seq > state.first_seq)
        return cls(
            max_msgs=max_msgs if discard_old and 0 < max_msgs < state.messages else -1,
            max_bytes=max_bytes if discard_old and 0 < max_bytes < state.bytes else -1,
            per_subject=(desired["max_msgs_per_subject"] if _tighter(
                desired["max_msgs_per_subject"], old["max_msgs_per_subject"]) else -1),
            max_age=desired["max_age"],
            first_seq=first_seq if purges else 0,
            everything=everything,
            uncertain=uncertain,
            config=desired,
        )

    def needs_messages(self, old: Config) -> bool:
        return (self.max_msgs > 0 or self.max_bytes > 0 or self.per_subject > 0
                or _tighter(self.max_age, old["max_age"]))


def sample_request(desired: Config, live: LiveStream) -> SampleRequest | None:
    """Whether predicting the impact of `desired` needs the live stream's messages read."""
    if live.state.messages == 0:
        return None
    old = canonical(live.config)
    if desired == old:
        return None
    limits = _Limits.of(desired, old, live.state)
    if limits.everything or limits.uncertain or not limits.needs_messages(old):
        return None
    return SampleRequest(subject_counts=limits.per_subject > 0)


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
    """Messages and bytes that applying `desired` (canonical) removes from `live`, now or at
    the server's next restart; None when nothing can be lost.

    The removal is replayed on the sampled messages in the server's order (see `_Limits`).
    The figures are exact when the sample holds every message the limits reach; otherwise
    they count what the sample shows will go and are a lower bound (`exact` false). Delete
    markers the server writes for subjects that age empties are not counted.
    """
    state = live.state
    if state.messages == 0:
        return None
    old = canonical(live.config)
    limits = _Limits.of(desired, old, state)
    if limits.everything:
        return Impact(state.messages, state.bytes, True, (limits.everything,))
    if limits.uncertain:
        return Impact(0, 0, False, (limits.uncertain,))
    if not limits.needs_messages(old):
        if limits.first_seq:
            return Impact(state.messages, state.bytes, True, ("first_seq",))
        if sample is None:
            return None
    if sample is None:  # needed, not read: never taken for "nothing lost"
        return Impact(0, 0, False, _possible_causes(limits))
    return _replay(limits, old["storage"], state, sample)


def _marker_size(subject: str, ttl_s: int, storage: str) -> int:
    """Stored size of the delete marker nats-server writes when age empties `subject`."""
    hours, rest = divmod(ttl_s, 3600)
    minutes, seconds = divmod(rest, 60)
    ttl = (f"{hours}h{minutes}m{seconds}s" if hours else
           f"{minutes}m{seconds}s" if minutes else f"{seconds}s")  # Go's Duration.String
    headers = (f"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: {ttl}\r\n"
               "Nats-Rollup: sub\r\n\r\n")
    return stored_size(StoredMessage(0, subject, 0, 0, len(headers)), storage)


def _marker_fits(config: Config, msgs: int, size_now: int, size: int, replaced: int) -> bool:
    """Whether the store takes a marker that replaces a message of `replaced` bytes
    (discard new refuses one over max_msgs or max_bytes, unless it replaces a message at the
    per-subject limit)."""
    if config["discard"] != "new":
        return True
    at_subject_limit = config["max_msgs_per_subject"] == 1
    max_msgs, max_bytes = config["max_msgs"], config["max_bytes"]
    if max_msgs > 0 and msgs >= max_msgs and not at_subject_limit:
        return False
    if max_bytes > 0 and size_now + size > max_bytes:
        return at_subject_limit and replaced >= size
    return True


def _possible_causes(limits: _Limits) -> tuple[str, ...]:
    causes = [field for field, on in (
        ("max_msgs", limits.max_msgs > 0), ("max_bytes", limits.max_bytes > 0),
        ("max_age", limits.max_age > 0), ("max_msgs_per_subject", limits.per_subject > 0),
        ("first_seq", limits.first_seq > 0),
    ) if on]
    return tuple(sorted(causes, key=_field_order))


def _replay(
    limits: _Limits, storage: str, state: StreamState, sample: MessageSample
) -> Impact | None:
    messages = sample.messages
    sizes = [stored_size(m, storage) for m in messages]
    removed: dict[int, str] = {}  # index in `messages` -> the field that removes it
    exact = True
    left_msgs, left_bytes = state.messages, state.bytes

    def remove(i: int, cause: str) -> None:
        nonlocal left_msgs, left_bytes
        removed[i] = cause
        left_msgs -= 1
        left_bytes -= sizes[i]

    def over(cause: str, limit: int) -> bool:
        return (left_msgs if cause == "max_msgs" else left_bytes) > limit

    # max_msgs, then max_bytes: the oldest go until the stream is within the limit
    for cause, limit in (("max_msgs", limits.max_msgs), ("max_bytes", limits.max_bytes)):
        if limit <= 0:
            continue
        for i in range(len(messages)):
            if not over(cause, limit):
                break
            if i not in removed:
                remove(i, cause)
        exact = exact and not over(cause, limit)

    # the per-subject limit: each subject keeps its newest
    if limits.per_subject > 0:
        if sample.complete or sample.subject_counts is None:
            counts = Counter(m.subject for m in messages)
        else:
            counts = Counter(sample.subject_counts)
        for i, m in enumerate(messages):
            if i in removed:
                counts[m.subject] -= 1
        for i, m in enumerate(messages):
            if i not in removed and counts[m.subject] > limits.per_subject:
                remove(i, "max_msgs_per_subject")
                counts[m.subject] -= 1
        if not sample.complete and any(n > limits.per_subject for n in counts.values()):
            exact = False

    # max_age: from the oldest left, up to the first message young enough. With
    # subject_delete_marker_ttl, the last message of a subject is replaced by a marker: a new
    # message that is stored under the stream's limits (with discard old it can push out the
    # oldest; with discard new it can be refused, and the message then stays).
    if limits.max_age > 0:
        cutoff = sample.now_ns - limits.max_age
        config = limits.config
        marker_ttl = config["subject_delete_marker_ttl"] // 1_000_000_000
        per_subject = Counter(m.subject for i, m in enumerate(messages) if i not in removed)
        markers: list[int] = []  # sizes of the markers written, oldest first
        young = False
        if marker_ttl > 0 and not sample.complete:
            exact = False  # which message is the last of its subject is past the sample
        for i, m in enumerate(messages):
            if i in removed:
                continue
            if m.time_ns > cutoff:
                young = True
                break
            if marker_ttl <= 0 or per_subject[m.subject] != 1 or m.marker:
                remove(i, "max_age")
                per_subject[m.subject] -= 1
                continue
            size = _marker_size(m.subject, marker_ttl, storage)
            if not _marker_fits(config, left_msgs, left_bytes, size, sizes[i]):
                continue
            markers.append(size)
            left_msgs += 1
            left_bytes += size
            if config["discard"] == "old":
                for cause, limit in (("max_msgs", config["max_msgs"]),
                                     ("max_bytes", config["max_bytes"])):
                    for j in range(len(messages)):
                        if limit <= 0 or not over(cause, limit):
                            break
                        if j not in removed:
                            remove(j, "max_age")
                            per_subject[messages[j].subject] -= 1
                    while limit > 0 and over(cause, limit) and markers:
                        left_msgs -= 1
                        left_bytes -= markers.pop(0)
            if i not in removed:  # the marker rolls the subject up
                remove(i, "max_age")
                per_subject[m.subject] -= 1
        if not young and not sample.complete and left_msgs > 0:
            exact = False

    # first_seq: the whole stream goes at the next restart if a survivor is below it
    if limits.first_seq > 0:
        first_left = next((m.seq for i, m in enumerate(messages) if i not in removed), None)
        if first_left is None and not sample.complete and left_msgs > 0:
            last_read = messages[-1].seq if messages else state.first_seq - 1
            if last_read + 1 < limits.first_seq:
                exact = False  # the first survivor is past the sample
        elif first_left is not None and first_left < limits.first_seq:
            causes = tuple(sorted({*removed.values(), "first_seq"}, key=_field_order))
            return Impact(state.messages, state.bytes, True, causes)

    if not removed:
        return None if exact else Impact(0, 0, False, _possible_causes(limits))
    lost_bytes = sum(sizes[i] for i in removed)
    return Impact(len(removed), lost_bytes, exact,
                  tuple(sorted(set(removed.values()), key=_field_order)))


# --- the plan --------------------------------------------------------------------------------


def plan_stream(
    spec: StreamSpec,
    live: LiveStream | None,
    sample: MessageSample | None = None,
    *,
    allow_data_loss: bool = False,
    hold: str | None = None,
) -> StreamPlan:
    """What to do with one declared stream: the one decision that `apply`, the exit codes,
    the outputs, the events and the metrics all follow.

    A stream that differs is only reported (`Action.REPORT`, nothing written, nothing
    blocked) when its policy is `drift: report` or when `hold` gives a reason to leave it
    alone for now (watch mode pausing a fight over the stream)."""
    config = desired_config(spec, live)
    if live is None:
        # what the manifest sets beyond a stream of all defaults
        changes = tuple(
            FieldChange(c.path, None, c.desired)
            for c in diff(config, canonical({"name": spec.name}))
        )
        report = _report_reason(spec, hold, missing=True)
        if report:
            return StreamPlan(spec.name, Action.REPORT, changes, None, (report,),
                              location=spec.location, missing=True)
        if config["sealed"]:
            reason = ("a stream cannot be created sealed; apply it with sealed: false first, "
                      "then set sealed: true")
            return StreamPlan(spec.name, Action.BLOCKED, changes, config, (reason,),
                              location=spec.location, missing=True)
        return StreamPlan(spec.name, Action.CREATE, changes, config, location=spec.location,
                          missing=True)

    live_canonical = canonical(live.config)
    changes = () if config == live_canonical else diff(
        config, live_canonical, spec.policy.ignore_fields)
    if not changes:
        return StreamPlan(spec.name, Action.NOOP, location=spec.location, basis=live.config)
    report = _report_reason(spec, hold, missing=False)
    if report:
        return StreamPlan(spec.name, Action.REPORT, changes, None, (report,),
                          location=spec.location, basis=live.config)

    reasons = list(blocked_reasons(config, live_canonical))
    impact = predict_impact(config, live, sample)
    if impact is not None:
        allowed = allow_data_loss or spec.policy.allow_data_loss
        if not allowed:
            reasons.append(
                f"{describe_impact(impact)}; set reconcile.allow_data_loss: true in the "
                "manifest or pass --allow-data-loss to accept the loss"
            )
    action = Action.BLOCKED if reasons else Action.UPDATE
    return StreamPlan(
        spec.name, action, changes, config, tuple(reasons), impact, spec.location,
        basis=live.config,
    )


def _report_reason(spec: StreamSpec, hold: str | None, *, missing: bool) -> str | None:
    if spec.policy.drift is DriftMode.REPORT:
        what = "not created" if missing else "left as it is"
        return f"reconcile.drift is report: {what}, the difference is only logged"
    return hold


def describe_impact(impact: Impact) -> str:
    causes = ", ".join(impact.causes) or "this change"
    later = (", first_seq at the server's next restart"
             if "first_seq" in impact.causes else "")
    if not impact.exact and impact.messages == 0:
        return (f"{causes} may discard stored messages (the number cannot be known in "
                f"advance){later}")
    qualifier = "at least " if not impact.exact else ""
    return (
        f"{causes} would discard {qualifier}{impact.messages} "
        f"{'message' if impact.messages == 1 else 'messages'} ({qualifier}{impact.bytes} "
        f"bytes){later}"
    )


def build_plan(
    specs: Iterable[StreamSpec],
    live: Iterable[LiveStream],
    samples: Mapping[str, MessageSample] | None = None,
    *,
    allow_data_loss: bool = False,
    holds: Mapping[str, str] | None = None,
) -> Plan:
    """The plan for every declared stream, plus the live streams no manifest declares.
    `holds` names streams to leave alone for now, with the reason (see `plan_stream`)."""
    by_name = {s.name: s for s in live}
    samples = samples or {}
    holds = holds or {}
    specs = list(specs)
    declared = {s.name for s in specs}
    streams = tuple(
        plan_stream(s, by_name.get(s.name), samples.get(s.name),
                    allow_data_loss=allow_data_loss, hold=holds.get(s.name))
        for s in specs
    )
    unmanaged = tuple(sorted(n for n in by_name if n not in declared))
    return Plan(streams, unmanaged)


# --- what the rest of the server allows ------------------------------------------------------


def server_blockers(
    plan: Plan, live: Iterable[LiveStream], topology: Topology | None = None
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Why the server would refuse a planned create or update, judging by what else is on it:
    subjects that overlap a stream no manifest declares (10065), more replicas than the
    cluster has servers (10074 on a single server, 10005 in a cluster), and sources or a
    mirror that close a cycle (`detected cycle`, 10052). Stream name -> (the field at fault:
    `subjects`, `num_replicas`, `sources` or `mirror`; the reason); only streams with a
    reason are in it."""
    live = list(live)
    declared = {s.name for s in plan.streams}
    undeclared = [s for s in live if s.name not in declared]
    configs: dict[str, Config] = {s.name: canonical(s.config) for s in live}
    for stream in plan.streams:  # as the streams will be once this plan is applied
        if stream.config is not None and stream.action in _WRITES:
            configs[stream.name] = stream.config
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for stream in plan.streams:
        if stream.config is None or stream.action not in (*_WRITES, Action.BLOCKED):
            continue  # nothing to send (in sync, or only reported)
        reasons = [
            *_overlaps(stream.config, undeclared),
            *_replicas(stream, topology),
            *_cycle(stream.config, configs, declared),
        ]
        if reasons:
            out[stream.name] = tuple(reasons)
    return out


_WRITES = (Action.CREATE, Action.UPDATE)


def with_server_checks(
    plan: Plan, live: Iterable[LiveStream], topology: Topology | None = None
) -> Plan:
    """`plan` with every create or update that `server_blockers` finds turned into blocked
    (apply then leaves it alone), the reasons added to those it already had."""
    found = server_blockers(plan, live, topology)
    if not found:
        return plan
    streams = tuple(
        replace(s, action=Action.BLOCKED,
                reasons=(*s.reasons, *(reason for _, reason in found[s.name])))
        if s.name in found else s
        for s in plan.streams
    )
    return replace(plan, streams=streams)


def _overlaps(config: Config, undeclared: Sequence[LiveStream]) -> list[tuple[str, str]]:
    reasons = []
    for other in undeclared:
        theirs = canonical(other.config).get("subjects") or []
        for subject in config.get("subjects") or []:
            hit = next((t for t in theirs if subjects_collide(subject, t)), None)
            if hit is not None:
                reasons.append(("subjects",
                    f"subject '{subject}' overlaps '{hit}' of stream '{other.name}', which is "
                    "on the server and in no manifest (the server refuses overlapping "
                    f"subjects: 10065); choose subjects that '{other.name}' does not take, "
                    f"or declare or remove '{other.name}'"
                ))
                break
    return reasons


def _replicas(stream: StreamPlan, topology: Topology | None) -> list[tuple[str, str]]:
    config = stream.config or {}
    replicas = int(config.get("num_replicas") or 1)
    changed = stream.action is Action.CREATE or any(
        c.path == "num_replicas" for c in stream.changes)
    if topology is None or topology.servers is None or replicas <= 1 or not changed:
        return []
    placement = config.get("placement") or {}
    if placement.get("cluster") and placement["cluster"] != topology.cluster:
        return []  # another cluster of a super-cluster: its size is not known here
    if topology.cluster is None:
        return [("num_replicas", f"num_replicas: {replicas} needs a cluster, and the server "
                 "is a single server (it refuses more than one replica: 10074); write "
                 "num_replicas: 1")]
    if replicas > topology.servers:
        return [("num_replicas", f"num_replicas: {replicas} needs {replicas} servers, and cluster "
                f"'{topology.cluster}' has {topology.servers} (the server finds no peers for "
                f"it: 10005); write num_replicas: {topology.servers} at most")]
    return []


def _cycle(
    config: Config, configs: Mapping[str, Config], declared: set[str]
) -> list[tuple[str, str]]:
    """The server's cycle check (`checkStreamCfg` in stream.go) over the streams as they will
    be: a breadth-first walk of mirrors and sources from `config`; reaching a stream twice
    is a cycle (for a source, only when the subjects of the stream reading it match its
    filter). Names the way it went."""
    # (a stream to visit, the way to it, the field of `config` that the way starts from)
    queue: list[tuple[Config, list[str], str]] = [(config, [config["name"]], "")]
    visited: set[str] = set()
    while queue:
        current, path, start = queue.pop(0)
        visited.add(current["name"])
        origins = [(s, False) for s in current.get("sources") or []]
        if current.get("mirror"):
            origins.append((current["mirror"], True))
        for origin, mirror in origins:
            name = origin.get("name", "")
            field = start or ("mirror" if mirror else "sources")
            if origin.get("external"):
                continue
            if name in visited:
                flt = origin.get("filter_subject") or ""
                subjects = current.get("subjects") or []
                if mirror or not flt or any(subjects_collide(s, flt) for s in subjects):
                    way = " -> ".join([*path, name])
                    others = sorted({n for n in [*path, name] if n not in declared})
                    note = (f" ({', '.join(repr(n) for n in others)} in no manifest)"
                            if others else "")
                    return [(field, f"its mirror and sources would close a cycle: {way}{note} (the "
                            "server refuses it: detected cycle, 10052); remove the source "
                            "that leads back, or give it a filter_subject the subjects of "
                            "the stream reading it do not match")]
            elif name in configs:
                queue.append((configs[name], [*path, name], field))
    return []
