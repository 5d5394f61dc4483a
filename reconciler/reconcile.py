"""One reconcile pass: live configs -> plan -> (apply) -> one summary event.

    specs (manifests) ──┐
                        ├─> plan.build_plan ──> apply.apply_plan ──> reconcile_finished
    live (STREAM.LIST) ─┤
    samples (MSG.GET) ──┘   read only for streams where a change can discard messages

A stream the server cannot describe (in a cluster: its leader does not answer) is left out
of the plan and reported as degraded; every other stream is planned and applied.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from reconciler.apply import StreamWriter, apply_plan
from reconciler.errors import JetStreamError
from reconciler.model import (
    Action,
    Degraded,
    Listing,
    LiveStream,
    MessageSample,
    Outcome,
    Plan,
    Status,
    StreamPlan,
    StreamSpec,
)
from reconciler.plan import build_plan, desired_config, sample_request

log = structlog.get_logger("reconciler.reconcile")


class JetStreamAPI(StreamWriter, Protocol):
    """The part of `jetstream.JetStream` that a reconcile pass needs."""

    async def list_streams(self) -> Listing: ...

    async def sample_messages(
        self, live: LiveStream, *, budget: int = ..., subject_counts: bool = ...
    ) -> MessageSample: ...


@dataclass(frozen=True)
class Result:
    reconcile_id: str
    plan: Plan
    outcomes: tuple[Outcome, ...] = ()
    duration_s: float = 0.0

    def counts(self) -> dict[str, int]:
        if self.outcomes:
            return dict(Counter(str(o.status) for o in self.outcomes))
        return dict(Counter(str(s.action) for s in self.plan.streams))

    @property
    def failed(self) -> bool:
        return any(o.status is Status.FAILED for o in self.outcomes)

    @property
    def blocked(self) -> bool:
        return any(o.status is Status.BLOCKED for o in self.outcomes)

    @property
    def degraded(self) -> tuple[Degraded, ...]:
        """Declared streams the server could not describe: left as they are."""
        return tuple(d for d in self.plan.degraded if d.managed)


def new_reconcile_id() -> str:
    return uuid.uuid4().hex[:12]


async def compute_plan(
    js: JetStreamAPI,
    specs: Sequence[StreamSpec],
    *,
    allow_data_loss: bool = False,
    concurrency: int = 32,
) -> Plan:
    """Read the live state this plan needs, then plan (pure). A stream the server cannot
    describe is not planned (a missing stream would look like one to create): it is listed in
    `Plan.degraded`, with `Plan.unmanaged` when no manifest declares it."""
    listing = await js.list_streams()
    unreadable = dict(listing.unreadable)
    by_name = {s.name: s for s in listing.streams}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def sample(spec: StreamSpec, current: LiveStream) -> tuple[str, MessageSample] | None:
        request = sample_request(desired_config(spec, current), current)
        if request is None:
            return None
        try:
            async with gate:
                got = await js.sample_messages(current, subject_counts=request.subject_counts)
        except asyncio.CancelledError:
            raise
        except JetStreamError as exc:
            unreadable[spec.name] = f"cannot read its messages: {exc}"
            return None
        return spec.name, got

    # only a stream that holds messages can lose any
    holding = [(s, by_name[s.name]) for s in specs
               if s.name in by_name and by_name[s.name].state.messages > 0]
    found = await asyncio.gather(*(sample(s, live) for s, live in holding))
    samples = dict(f for f in found if f is not None)
    readable = [s for s in specs if s.name not in unreadable]
    live = [s for s in listing.streams if s.name not in unreadable]
    plan = build_plan(readable, live, samples, allow_data_loss=allow_data_loss)
    declared = {s.name: s for s in specs}
    degraded = tuple(
        Degraded(name, reason, managed=name in declared,
                 location=declared[name].location if name in declared else None)
        for name, reason in sorted(unreadable.items())
    )
    unmanaged = {*plan.unmanaged, *(d.name for d in degraded if not d.managed)}
    return replace(plan, unmanaged=tuple(sorted(unmanaged)), degraded=degraded)


async def reconcile(
    js: JetStreamAPI,
    specs: Sequence[StreamSpec],
    *,
    allow_data_loss: bool = False,
    concurrency: int = 32,
    apply: bool = True,
    source: str = "manifest",
    sources: Mapping[str, str] | None = None,
    actors: Mapping[str, str] | None = None,
    reconcile_id: str | None = None,
    before_apply: Callable[[Plan], None] | None = None,
    plan: Plan | None = None,
    started: float | None = None,
) -> Result:
    """Plan, and apply unless `apply` is false. Emits `drift_detected` per differing stream
    (its `source` from `sources` by stream name, else `source`; its actor from `actors`) and
    one `reconcile_finished`. Raises only for errors that stop the whole pass (listing streams
    failed); per-stream errors are outcomes.

    `plan` is the plan of `specs` when the caller has computed it already (watch mode looks
    it over first), and `started` the `time.monotonic()` at which the pass began."""
    sources = sources or {}
    actors = actors or {}
    reconcile_id = reconcile_id or new_reconcile_id()
    started = time.monotonic() if started is None else started
    rlog = log.bind(reconcile_id=reconcile_id)
    if plan is None:
        plan = await compute_plan(
            js, specs, allow_data_loss=allow_data_loss, concurrency=concurrency
        )
    for degraded in plan.degraded:
        rlog.warning("stream_unreadable", stream=degraded.name, managed=degraded.managed,
                     error=degraded.reason)
    for stream in plan.streams:
        if stream.action is not Action.NOOP:
            where = sources.get(stream.name, source)
            _log_drift(rlog, stream, where,
                       actors.get(stream.name) if where == "server" else None)
    outcomes: tuple[Outcome, ...] = ()
    if apply:
        if before_apply is not None:
            before_apply(plan)
        outcomes = await apply_plan(js, plan, concurrency=concurrency, logger=rlog)
    result = Result(reconcile_id, plan, outcomes, time.monotonic() - started)
    rlog.info(
        "reconcile_finished",
        trigger=source,
        streams=len(plan.streams),
        unmanaged=len(plan.unmanaged),
        degraded=[d.name for d in plan.degraded],
        counts=result.counts(),
        duration_ms=round(result.duration_s * 1000, 1),
    )
    return result


def _log_drift(rlog: Any, stream: StreamPlan, source: str, actor: str | None) -> None:
    rlog.info(
        "drift_detected",
        stream=stream.name,
        action=str(stream.action),
        source=source,
        actor=actor,
        missing=stream.missing,
        changes=[
            {"field": c.path, "live": c.live, "desired": c.desired} for c in stream.changes
        ] if not stream.missing else [],
    )
