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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import structlog
from structlog.typing import FilteringBoundLogger

from reconciler.apply import apply_plan
from reconciler.errors import JetStreamError
from reconciler.events import changes_document
from reconciler.jetstream.protocol import JetStreamAPI as JetStreamAPI
from reconciler.known import Known as Known
from reconciler.known import read_listing
from reconciler.ledger import Ledger, Settled
from reconciler.model import (
    LEASE_STREAM,
    Action,
    Config,
    Degraded,
    FieldChange,
    Listing,
    LiveStream,
    MessageSample,
    Outcome,
    Plan,
    Status,
    StreamPlan,
    StreamSpec,
)
from reconciler.plan import (
    SampleRequest,
    StreamInputs,
    canonical,
    prepare,
    prepare_pass,
    same_as_read,
)
from reconciler.plan.ownership import DEFAULT_OWNER, owner_of
from reconciler.plan.prune import Prune, plan_delete

log: FilteringBoundLogger = structlog.get_logger("reconciler.reconcile")


@dataclass(frozen=True)
class Drift:
    """One `drift_detected` event of a pass, as a value (for metrics and conflict tracking)."""

    stream: str
    fields: tuple[str, ...]
    source: str | None
    actor: str | None
    overwritten: bool = False
    """Learnt from an advisory after our update had already put these fields back."""


@dataclass(frozen=True)
class Result:
    reconcile_id: str
    plan: Plan
    """The plan carried out: a stream planned again just before its update shows the new plan."""
    outcomes: tuple[Outcome, ...] = ()
    duration_s: float = 0.0
    drifts: tuple[Drift, ...] = ()

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
    holds: Mapping[str, str] | None = None,
    owner: str = DEFAULT_OWNER,
    prune: Prune | None = None,
    known: Known | None = None,
    changed: Collection[str] | None = None,
    listing: Listing | None = None,
) -> Plan:
    """Read the live state this plan needs, then plan (pure). A stream the server cannot
    describe is not planned (a missing stream would look like one to create): it is listed in
    `Plan.degraded`, with `Plan.unmanaged` when no manifest declares it. `holds` names
    streams to only report (see `plan.plan_stream`). `owner` is who this reconciler is, and
    `prune` says whether and how owned streams no manifest declares are deleted
    (`plan.prune`). The reconcilers' own lease bucket is not ours to plan: it is left out,
    neither managed nor unmanaged.

    With `known` (kept across passes) and `changed` (the streams named as changed on the
    server since the last pass; None: anything may have), only the streams that may have
    changed are read again and prepared (see `Known`); the plan is the same. `listing`:
    every stream, when the caller has just listed them."""
    gate = asyncio.Semaphore(max(1, concurrency))
    listing = await read_listing(js, specs, known, changed, gate, listing)
    unreadable = {n: r for n, r in listing.unreadable.items() if n != LEASE_STREAM}
    by_name = {s.name: s for s in listing.streams if s.name != LEASE_STREAM}
    inputs = (prepare_pass(specs, by_name.values(), owner) if known is None else
              known.prepare(specs, (*by_name.values(),), owner, targeted=changed is not None))

    async def sample(name: str, request: SampleRequest) -> tuple[str, MessageSample] | None:
        try:
            async with gate:
                got = await js.sample_messages(
                    by_name[name], subject_counts=request.subject_counts)
        except asyncio.CancelledError:
            raise
        except JetStreamError as exc:
            unreadable[name] = f"cannot read its messages: {exc}"
            return None
        return name, got

    # only a stream that holds messages can lose any
    found = await asyncio.gather(*(
        sample(name, request) for name, request in inputs.sample_requests().items()))
    samples = dict(f for f in found if f is not None)
    plan = inputs.without(unreadable).plan(
        samples, allow_data_loss=allow_data_loss, holds=holds, topology=js.topology(),
        prune=prune)
    declared = {s.name: s for s in specs}
    degraded = tuple(
        Degraded(name, reason, managed=name in declared,
                 location=declared[name].location if name in declared else None)
        for name, reason in sorted(unreadable.items())
    )
    unmanaged = {*plan.unmanaged, *(d.name for d in degraded if not d.managed)}
    plan = replace(plan, unmanaged=tuple(sorted(unmanaged)), degraded=degraded)
    return plan if known is None else known.planned(plan)


async def check_against_server(
    js: JetStreamAPI, specs: Sequence[StreamSpec]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Why the server would refuse to create or update declared streams, because of what
    else is on it (`plan.server_blockers`): stream name -> (field, reason). Reads no
    messages."""
    listing = await js.list_streams()
    readable = [s for s in specs if s.name not in listing.unreadable]
    return prepare_pass(readable, listing.streams).server_blockers(js.topology())


async def reconcile(
    js: JetStreamAPI,
    specs: Sequence[StreamSpec],
    *,
    allow_data_loss: bool = False,
    concurrency: int = 32,
    apply: bool = True,
    trigger: str = "apply",
    sources: Mapping[str, str] | None = None,
    ledger: Ledger | None = None,
    holds: Mapping[str, str] | None = None,
    actor_grace_s: float = 0.0,
    reconcile_id: str | None = None,
    before_apply: Callable[[Plan], None] | None = None,
    plan: Plan | None = None,
    read_at: int | None = None,
    started: float | None = None,
    owner: str = DEFAULT_OWNER,
    prune: Prune | None = None,
) -> Result:
    """Plan, and apply unless `apply` is false; one `reconcile_finished` event.

    Each drift is logged once as `drift_detected`: its `source` from `sources` by stream
    name (None when unknown: one CLI run cannot tell which side moved), its actor from the
    outside changes `ledger` accounts for (watch mode keeps one across passes); each owned
    stream no manifest declares once as `stream_undeclared`. Just before an update, adoption
    or deletion the stream is read again; if it moved since it was planned, it is planned
    again (and what moved logged) so that no change is overwritten unplanned. A drift read
    before the advisory that names who made it waits up to `actor_grace_s` for it. Raises
    only for errors that stop the whole pass (listing streams failed); per-stream errors are
    outcomes. `holds`, `owner` and `prune`: see `compute_plan`.

    `plan` is the plan of `specs` when the caller has computed it already (watch mode looks
    it over first), `read_at` the ledger's position just before its live configs were read,
    and `started` the `time.monotonic()` at which the pass began."""
    ledger = ledger if ledger is not None else Ledger()
    started = time.monotonic() if started is None else started
    one = _Pass(js, specs, ledger, reconcile_id or new_reconcile_id(), sources or {},
                holds or {}, allow_data_loss=allow_data_loss, concurrency=concurrency,
                actor_grace_s=actor_grace_s, owner=owner)
    if plan is None:
        read_at = ledger.position()
        plan = await compute_plan(
            js, specs, allow_data_loss=allow_data_loss, concurrency=concurrency, holds=one.holds,
            owner=owner, prune=prune,
        )
    await one.account(plan, ledger.position() if read_at is None else read_at)
    outcomes: tuple[Outcome, ...] = ()
    if apply:
        if before_apply is not None:
            before_apply(plan)
        plan, outcomes = await one.apply(plan)
    return one.finished(Result(one.reconcile_id, plan, outcomes, time.monotonic() - started,
                               tuple(one.drifts)), trigger)


class _Pass:
    """The state of one `reconcile` call: the drifts it logs and the live configs its
    updates were based on (for the ledger)."""

    def __init__(self, js: JetStreamAPI, specs: Sequence[StreamSpec], ledger: Ledger,
                 reconcile_id: str, sources: Mapping[str, str], holds: Mapping[str, str], *,
                 allow_data_loss: bool, concurrency: int, actor_grace_s: float,
                 owner: str = DEFAULT_OWNER) -> None:
        self.js = js
        self.specs = {s.name: s for s in specs}
        self.ledger = ledger
        self.reconcile_id = reconcile_id
        self.log = log.bind(reconcile_id=reconcile_id)
        self.sources = sources
        self.holds = holds
        self.allow_data_loss = allow_data_loss
        self.concurrency = concurrency
        self.actor_grace_s = actor_grace_s
        self.owner = owner
        self.gate = asyncio.Semaphore(max(1, concurrency))
        self.drifts: list[Drift] = []
        self.bases: dict[str, tuple[LiveStream, int]] = {}

    def finished(self, result: Result, trigger: str) -> Result:
        plan = result.plan
        self.log.info(
            "reconcile_finished",
            trigger=trigger,
            streams=len(plan.streams),
            unmanaged=len(plan.unmanaged),
            undeclared=len(plan.undeclared),
            degraded=[d.name for d in plan.degraded],
            counts=result.counts(),
            duration_ms=round(result.duration_s * 1000, 1),
        )
        return result

    async def account(self, plan: Plan, position: int) -> None:
        """Log what is unreadable, what an update of ours overwrote, and each new drift."""
        for degraded in plan.degraded:
            self.log.warning("stream_unreadable", stream=degraded.name,
                             managed=degraded.managed, error=degraded.reason)
        self.undeclared(plan)
        news: list[tuple[StreamPlan, str | None]] = []
        tracked = self.ledger.tracked()
        for stream in plan.streams:
            if stream.undeclared or (not stream.changes and stream.name not in tracked):
                continue
            settled = self.ledger.settle(stream.name, position, stream.basis)
            self.overwritten(stream.name, settled)
            if self.ledger.first_report(stream.name, stream.changes):
                news.append((stream, _who(settled.actors)))
        # a change on the server read before its advisory came: wait a moment for the name
        # (all at once); a manifest change has no one to wait for
        named = await asyncio.gather(*(
            _await_actor(self.ledger, s.name, s.basis, self.actor_grace_s)
            if actor is None and s.basis is not None and self.sources.get(s.name) == "server"
            else _known(actor)
            for s, actor in news))
        for (stream, _), actor in zip(news, named, strict=True):
            self.drift(stream.name, str(stream.action), stream.changes,
                       self.sources.get(stream.name), actor, missing=stream.missing)

    def undeclared(self, plan: Plan) -> None:
        """Log each owned stream that no manifest declares, once while it stays so."""
        found = {u.name: (u.manifest, u.messages, u.bytes, "held" if u.note else "kept")
                 for u in plan.undeclared}
        for s in plan.streams:
            if s.undeclared:
                impact = s.impact
                found[s.name] = (s.location.file if s.location else None,
                                 impact.messages if impact else 0,
                                 impact.bytes if impact else 0, str(s.action))
        for name in self.ledger.undeclared_news(found):
            manifest, messages, size, prune = found[name]
            self.log.warning("stream_undeclared", stream=name, manifest=manifest,
                             messages=messages, bytes=size, prune=prune)

    def overwritten(self, name: str, settled: Settled) -> None:
        for actor, lost in settled.overwritten:
            self.drift(name, "update", lost, "server", actor, overwritten=True)

    def drift(self, stream: str, action: str, changes: Sequence[FieldChange],
              source: str | None, actor: str | None, *, missing: bool = False,
              overwritten: bool = False) -> None:
        self.log.info("drift_detected", stream=stream, action=action, source=source,
                      actor=actor, missing=missing, overwritten=overwritten,
                      changes=[] if missing else changes_document(changes))
        self.drifts.append(
            Drift(stream, tuple(c.path for c in changes), source, actor, overwritten))

    async def apply(self, plan: Plan) -> tuple[Plan, tuple[Outcome, ...]]:
        outcomes = await apply_plan(self.js, plan, concurrency=self.concurrency,
                                    logger=self.log, recheck=self.recheck)
        for outcome in outcomes:
            if outcome.status in (Status.UPDATED, Status.ADOPTED) and outcome.name in self.bases:
                basis, at = self.bases[outcome.name]
                self.ledger.wrote(outcome.name, basis.config, at)
        return replace(plan, streams=tuple(o.plan for o in outcomes)), outcomes

    async def recheck(self, stream: StreamPlan) -> StreamPlan:
        """Read the stream again just before its update or adoption; plan again if it moved.
        A deletion is planned again from what is read."""
        assert stream.basis is not None
        if stream.undeclared:
            return await self.recheck_delete(stream)
        at = self.ledger.position()
        current = await self.js.stream_info(stream.name)
        if current is not None and _unmoved(current.config, stream.basis):
            self.overwritten(stream.name, self.ledger.settle(stream.name, at, current.config))
            self.bases[stream.name] = (current, at)
            return stream
        inputs = prepare(self.specs[stream.name], current, self.owner)
        sample = await _sample(self.js, inputs, self.gate)
        again = inputs.plan(sample, allow_data_loss=self.allow_data_loss,
                            hold=self.holds.get(stream.name))
        settled = self.ledger.settle(stream.name, at, current.config if current else None)
        self.overwritten(stream.name, settled)
        moved = tuple(c for c in again.changes if c not in stream.changes)
        if self.ledger.first_report(stream.name, again.changes) and (moved or again.missing):
            actor = _who(settled.actors)
            if actor is None and current is not None:
                actor = await _await_actor(self.ledger, stream.name, current.config,
                                           self.actor_grace_s)
            self.drift(stream.name, str(again.action), moved, "server", actor,
                       missing=again.missing)
        if current is not None:
            self.bases[stream.name] = (current, at)
        return again


    async def recheck_delete(self, stream: StreamPlan) -> StreamPlan:
        """A deletion as the stream is now: gone (nothing to do), no longer ours (blocked),
        or planned again on its current messages (blocked if they now need consent)."""
        current = await self.js.stream_info(stream.name)
        if current is None:
            return replace(stream, action=Action.NOOP, reasons=(), impact=None)
        if owner_of(current.config) != self.owner:
            return replace(stream, action=Action.BLOCKED, reasons=(
                f"the stream is no longer owned by '{self.owner}' (its ownership changed "
                "after it was planned): left as it is",))
        return replace(plan_delete(current, allow_data_loss=self.allow_data_loss),
                       location=stream.location)


async def _sample(
    js: JetStreamAPI, inputs: StreamInputs, gate: asyncio.Semaphore
) -> MessageSample | None:
    """The live stream's messages when the change planned from `inputs` can discard some
    (for the plan made again just before an update)."""
    request = inputs.sample_request()
    if request is None or inputs.live is None:
        return None
    async with gate:
        return await js.sample_messages(inputs.live, subject_counts=request.subject_counts)


async def _await_actor(
    ledger: Ledger, stream: str, live: Config, grace_s: float
) -> str | None:
    """The read saw a change whose advisory is still on its way: wait a moment for its name."""
    deadline = time.monotonic() + grace_s
    while (actor := ledger.actor_of(stream, live)) is None:
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.005)
    return actor


def _unmoved(live: Config, basis: Config) -> bool:
    """Whether a stream read again is as it was planned: the same config as read (the usual
    case: nothing to bring to canonical form), or the same in canonical form and owner."""
    return same_as_read(live, basis) or (
        canonical(live) == canonical(basis) and owner_of(live) == owner_of(basis))


async def _known(actor: str | None) -> str | None:
    return actor


def _who(actors: Sequence[str]) -> str | None:
    return ", ".join(actors) or None
