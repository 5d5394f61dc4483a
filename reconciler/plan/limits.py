"""Which limits of a desired configuration reach a live stream's stored messages, and the
sizes the server accounts messages and delete markers at."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.fields.stream_config import StreamConfig
from reconciler.model import StoredMessage, StreamState
from reconciler.plan.diff import field_order


def _tighter(new: int, old: int) -> bool:
    """A limit where -1 (or 0 for max_age) means none: is `new` stricter than `old`?"""
    return new > 0 and (old <= 0 or new < old)


@dataclass(frozen=True)
class Limits:
    """What an update does to stored messages, in the order the server does it.

    nats-server's `updateWithAdvisory` changes retention first (limits -> interest without
    consumers removes everything); then the store's `UpdateStreamConfig` (file and memory alike)
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
    config: StreamConfig
    """The desired configuration: the limits a delete marker is stored under."""

    @classmethod
    def of(cls, desired: StreamConfig, old: StreamConfig, state: StreamState) -> Limits:
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

    def needs_messages(self, old: StreamConfig) -> bool:
        return (self.max_msgs > 0 or self.max_bytes > 0 or self.per_subject > 0
                or _tighter(self.max_age, old["max_age"]))


def stored_size(message: StoredMessage, storage: str) -> int:
    """Bytes a message takes in the stream's accounting (nats-server's fileStoreMsgSize and
    memStoreMsgSize)."""
    subject = len(message.subject.encode())
    if storage == "memory":
        return subject + message.headers_len + message.payload_len + 16
    headers = 4 + message.headers_len if message.headers_len else 0
    return 22 + subject + headers + message.payload_len + 8


def marker_size(subject: str, ttl_s: int, storage: str) -> int:
    """Stored size of the delete marker nats-server writes when age empties `subject`."""
    hours, rest = divmod(ttl_s, 3600)
    minutes, seconds = divmod(rest, 60)
    ttl = (f"{hours}h{minutes}m{seconds}s" if hours else
           f"{minutes}m{seconds}s" if minutes else f"{seconds}s")  # Go's Duration.String
    headers = (f"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: {ttl}\r\n"
               "Nats-Rollup: sub\r\n\r\n")
    return stored_size(StoredMessage(0, subject, 0, 0, len(headers)), storage)


def marker_fits(config: StreamConfig, msgs: int, size_now: int, size: int, replaced: int) -> bool:
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


def possible_causes(limits: Limits) -> tuple[str, ...]:
    causes = [field for field, on in (
        ("max_msgs", limits.max_msgs > 0), ("max_bytes", limits.max_bytes > 0),
        ("max_age", limits.max_age > 0), ("max_msgs_per_subject", limits.per_subject > 0),
        ("first_seq", limits.first_seq > 0),
    ) if on]
    return tuple(sorted(causes, key=field_order))
