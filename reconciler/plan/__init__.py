"""The plan: a pure function from desired specs and live streams to what must change.

No I/O, no clock, no logging. Both sides are brought to one canonical form (the form the
server stores: its defaults filled in, its own `_nats.*` metadata dropped, omitted booleans
false, durations integer nanoseconds; `canonical`), then diffed field by field (`diff`).
Each change is checked against what the server can do (immutable and one-way fields:
`blocked`) and against what it does to stored messages (predicted exactly from the live
stream's messages before applying: `impact`, `limits`, `replay`). `stream` decides for one
stream, `build` for a whole pass, `server` checks what the rest of the server allows. The
facts about each field come from the registry (`reconciler.fields`).

A pass brings each live configuration to canonical form once: `prepare_pass(specs, live)`,
then `.sample_requests()` (what to read of which stream's messages), then `.plan(samples,
topology=...)`. For one stream: `prepare(spec, live)`, `.sample_request()`, `.plan(sample)`.
"""

from __future__ import annotations

from reconciler.plan.blocked import ONE_WAY, blocked_reasons
from reconciler.plan.build import PassInputs, build_plan, prepare_pass
from reconciler.plan.canonical import (
    BOOLEANS,
    DEFAULT_DUPLICATE_WINDOW_NS,
    KNOWN_FIELDS,
    SERVER_METADATA_PREFIX,
    canonical,
    desired_config,
    normalise_timestamp,
    same_as_read,
)
from reconciler.plan.diff import diff, field_order
from reconciler.plan.impact import SampleRequest, describe_impact, predict_impact, sample_request
from reconciler.plan.limits import stored_size
from reconciler.plan.server import server_blockers, with_server_checks
from reconciler.plan.stream import StreamInputs, plan_stream, prepare

__all__ = [
    "BOOLEANS",
    "DEFAULT_DUPLICATE_WINDOW_NS",
    "KNOWN_FIELDS",
    "ONE_WAY",
    "SERVER_METADATA_PREFIX",
    "PassInputs",
    "SampleRequest",
    "StreamInputs",
    "blocked_reasons",
    "build_plan",
    "canonical",
    "describe_impact",
    "desired_config",
    "diff",
    "field_order",
    "normalise_timestamp",
    "plan_stream",
    "predict_impact",
    "prepare",
    "prepare_pass",
    "same_as_read",
    "sample_request",
    "server_blockers",
    "stored_size",
    "with_server_checks",
]
