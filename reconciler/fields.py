"""The stream configuration's fields, by kind: what units a manifest may use for each and how
a value is shown to people. Dotted paths; `sources.*` stands for every element of the list."""

from __future__ import annotations

#: integer nanoseconds on the wire; strings with a unit in manifests (`100ms`, `1h30m`, `7d`)
DURATIONS: frozenset[str] = frozenset({
    "max_age",
    "duplicate_window",
    "subject_delete_marker_ttl",
    "consumer_limits.inactive_threshold",
})

#: integer bytes on the wire, -1 unlimited; manifests may write `512KiB`, `1GiB`, `unlimited`
SIZES: frozenset[str] = frozenset({"max_bytes", "max_msg_size"})

#: plain counts, -1 unlimited; manifests may write `unlimited`
COUNTS: frozenset[str] = frozenset({
    "max_msgs",
    "max_msgs_per_subject",
    "max_consumers",
    "consumer_limits.max_ack_pending",
})

#: RFC 3339 timestamps with nanoseconds; compared as written, never through a float
TIMESTAMPS: frozenset[str] = frozenset({"mirror.opt_start_time", "sources.*.opt_start_time"})
