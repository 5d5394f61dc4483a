"""The removal an update causes, replayed on the sampled messages in the server's order (see
`limits.Limits`): max_msgs, max_bytes, the per-subject limit, max_age (with the delete
markers it writes), and first_seq at the next restart."""

from __future__ import annotations

from collections import Counter

from reconciler.fields.stream_config import StreamConfig
from reconciler.model import Impact, MessageSample, StreamState
from reconciler.plan.diff import field_order
from reconciler.plan.limits import (
    Limits,
    marker_fits,
    marker_size,
    possible_causes,
    stored_size,
)


def replay(
    limits: Limits, storage: str, state: StreamState, sample: MessageSample
) -> Impact | None:
    """Messages and bytes `limits` remove from the stream that `sample` was read from."""
    run = _Replay(storage, state, sample)
    run.limit("max_msgs", limits.max_msgs)
    run.limit("max_bytes", limits.max_bytes)
    if limits.per_subject > 0:
        run.per_subject(limits.per_subject)
    if limits.max_age > 0:
        run.age(limits.max_age, limits.config)
    if limits.first_seq > 0:
        whole = run.first_seq(limits.first_seq)
        if whole is not None:
            return whole
    return run.result(limits)


class _Replay:
    """The sampled messages as the update goes through them: which are removed (and by
    which field), how many messages and bytes are left, and whether the figures are exact
    (false once the sample ends before a limit is met)."""

    def __init__(self, storage: str, state: StreamState, sample: MessageSample) -> None:
        self.storage = storage
        self.state = state
        self.sample = sample
        self.messages = sample.messages
        self.sizes = [stored_size(m, storage) for m in sample.messages]
        self.removed: dict[int, str] = {}  # index in `messages` -> the field that removes it
        self.exact = True
        self.left_msgs, self.left_bytes = state.messages, state.bytes

    def remove(self, i: int, cause: str) -> None:
        self.removed[i] = cause
        self.left_msgs -= 1
        self.left_bytes -= self.sizes[i]

    def over(self, cause: str, limit: int) -> bool:
        return (self.left_msgs if cause == "max_msgs" else self.left_bytes) > limit

    def limit(self, cause: str, limit: int) -> None:
        """max_msgs or max_bytes: the oldest go until the stream is within the limit."""
        if limit <= 0:
            return
        for i in range(len(self.messages)):
            if not self.over(cause, limit):
                break
            if i not in self.removed:
                self.remove(i, cause)
        self.exact = self.exact and not self.over(cause, limit)

    def per_subject(self, limit: int) -> None:
        """The per-subject limit: each subject keeps its newest."""
        messages, sample = self.messages, self.sample
        if sample.complete or sample.subject_counts is None:
            counts = Counter(m.subject for m in messages)
        else:
            counts = Counter(sample.subject_counts)
        for i, m in enumerate(messages):
            if i in self.removed:
                counts[m.subject] -= 1
        for i, m in enumerate(messages):
            if i not in self.removed and counts[m.subject] > limit:
                self.remove(i, "max_msgs_per_subject")
                counts[m.subject] -= 1
        if not sample.complete and any(n > limit for n in counts.values()):
            self.exact = False

    def age(self, max_age: int, config: StreamConfig) -> None:
        """max_age: from the oldest left, up to the first message young enough. With
        subject_delete_marker_ttl, the last message of a subject is replaced by a marker: a
        new message that is stored under the stream's limits (with discard old it can push
        out the oldest; with discard new it can be refused, and the message then stays)."""
        cutoff = self.sample.now_ns - max_age
        marker_ttl = config["subject_delete_marker_ttl"] // 1_000_000_000
        left = Counter(m.subject for i, m in enumerate(self.messages) if i not in self.removed)
        markers: list[int] = []  # sizes of the markers written, oldest first
        young = False
        if marker_ttl > 0 and not self.sample.complete:
            self.exact = False  # which message is the last of its subject is past the sample
        for i, m in enumerate(self.messages):
            if i in self.removed:
                continue
            if m.time_ns > cutoff:
                young = True
                break
            if marker_ttl <= 0 or left[m.subject] != 1 or m.marker:
                self.remove(i, "max_age")
                left[m.subject] -= 1
                continue
            self.marker(i, marker_size(m.subject, marker_ttl, self.storage), config, left,
                        markers)
        if not young and not self.sample.complete and self.left_msgs > 0:
            self.exact = False

    def marker(
        self, i: int, size: int, config: StreamConfig, left: Counter[str], markers: list[int]
    ) -> None:
        """Message `i`, the last of its subject, aged out: a marker of `size` replaces it
        when the store takes one (discard old then makes room by removing the oldest)."""
        if not marker_fits(config, self.left_msgs, self.left_bytes, size, self.sizes[i]):
            return
        markers.append(size)
        self.left_msgs += 1
        self.left_bytes += size
        if config["discard"] == "old":
            for cause, limit in (("max_msgs", config["max_msgs"]),
                                 ("max_bytes", config["max_bytes"])):
                for j in range(len(self.messages)):
                    if limit <= 0 or not self.over(cause, limit):
                        break
                    if j not in self.removed:
                        self.remove(j, "max_age")
                        left[self.messages[j].subject] -= 1
                while limit > 0 and self.over(cause, limit) and markers:
                    self.left_msgs -= 1
                    self.left_bytes -= markers.pop(0)
        if i not in self.removed:  # the marker rolls the subject up
            self.remove(i, "max_age")
            left[self.messages[i].subject] -= 1

    def first_seq(self, first_seq: int) -> Impact | None:
        """first_seq: the whole stream goes at the next restart if a survivor is below it."""
        first_left = next(
            (m.seq for i, m in enumerate(self.messages) if i not in self.removed), None)
        if first_left is None and not self.sample.complete and self.left_msgs > 0:
            last_read = self.messages[-1].seq if self.messages else self.state.first_seq - 1
            if last_read + 1 < first_seq:
                self.exact = False  # the first survivor is past the sample
        elif first_left is not None and first_left < first_seq:
            causes = tuple(sorted({*self.removed.values(), "first_seq"}, key=field_order))
            return Impact(self.state.messages, self.state.bytes, True, causes)
        return None

    def result(self, limits: Limits) -> Impact | None:
        if not self.removed:
            return None if self.exact else Impact(0, 0, False, possible_causes(limits))
        lost_bytes = sum(self.sizes[i] for i in self.removed)
        return Impact(len(self.removed), lost_bytes, self.exact,
                      tuple(sorted(set(self.removed.values()), key=field_order)))
