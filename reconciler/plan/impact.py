"""What a change does to stored messages, predicted before applying: whether the live
stream's messages must be read for it (`sample_request`), and the prediction itself
(`predict_impact`; the removal is replayed in `replay`)."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.fields.stream_config import StreamConfig
from reconciler.model import Impact, LiveStream, MessageSample
from reconciler.plan.canonical import canonical
from reconciler.plan.limits import Limits, possible_causes
from reconciler.plan.replay import replay


@dataclass(frozen=True)
class SampleRequest:
    """What the impact prediction needs read from the live stream."""

    subject_counts: bool = False


def sample_request(
    desired: StreamConfig, live: LiveStream, old: StreamConfig | None = None
) -> SampleRequest | None:
    """Whether predicting the impact of `desired` needs the live stream's messages read
    (`old`: the live config in canonical form, when the caller has it already)."""
    if live.state.messages == 0:
        return None
    old = canonical(live.config) if old is None else old
    if desired == old:
        return None
    limits = Limits.of(desired, old, live.state)
    if limits.everything or limits.uncertain or not limits.needs_messages(old):
        return None
    return SampleRequest(subject_counts=limits.per_subject > 0)


def predict_impact(
    desired: StreamConfig,
    live: LiveStream,
    sample: MessageSample | None,
    old: StreamConfig | None = None,
) -> Impact | None:
    """Messages and bytes that applying `desired` (canonical) removes from `live`, now or at
    the server's next restart; None when nothing can be lost.

    The removal is replayed on the sampled messages in the server's order (see `Limits`).
    The figures are exact when the sample holds every message the limits reach; otherwise
    they count what the sample shows will go and are a lower bound (`exact` false). Delete
    markers the server writes for subjects that age empties are not counted. `old` is the
    live config in canonical form, when the caller has it already.
    """
    state = live.state
    if state.messages == 0:
        return None
    old = canonical(live.config) if old is None else old
    limits = Limits.of(desired, old, state)
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
        return Impact(0, 0, False, possible_causes(limits))
    return replay(limits, old["storage"], state, sample)


def describe_impact(impact: Impact) -> str:
    """An impact in words, for reasons and reports."""
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
