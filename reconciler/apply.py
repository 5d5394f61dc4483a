"""Execute a plan: create, update, adopt and delete streams with bounded concurrency, an
outcome per stream.

One stream's failure never stops the others. Every exception becomes an `Outcome`, except
`asyncio.CancelledError`, which always propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from structlog.typing import FilteringBoundLogger

from reconciler.errors import ApiError, ConnectionLost, JetStreamError, RequestTimeout
from reconciler.events import changes_document, impact_document
from reconciler.jetstream.protocol import StreamWriter as StreamWriter
from reconciler.model import (
    WRITES,
    Action,
    Outcome,
    Plan,
    Status,
    StreamPlan,
)

log: FilteringBoundLogger = structlog.get_logger("reconciler.apply")

#: the writes made against a live stream as read: read again just before
_RECHECKED = (Action.UPDATE, Action.ADOPT, Action.DELETE)

#: long applies report progress every this many streams (or every tenth of them)
PROGRESS_EVERY = 100


#: plans a stream again, just before its update, adoption or deletion, if the live stream
#: moved since it was planned
Recheck = Callable[[StreamPlan], Awaitable[StreamPlan]]


async def apply_plan(
    js: StreamWriter,
    plan: Plan,
    *,
    concurrency: int = 32,
    logger: FilteringBoundLogger | None = None,
    recheck: Recheck | None = None,
) -> tuple[Outcome, ...]:
    """Carry out every write of `plan`; outcomes in the plan's order. Nothing is decided
    here: the plan says what is written, left alone, reported or blocked. `recheck`, called
    just before an update, adoption or deletion, returns the stream's plan made again if the
    live stream moved since. Events go to `logger` (a structlog logger, bound to the
    reconcile id by the caller)."""
    gate = asyncio.Semaphore(max(1, concurrency))
    log_to = logger or log
    writes = sum(1 for s in plan.streams if s.action in WRITES)
    step = max(PROGRESS_EVERY, writes // 10)
    done = 0

    async def one(stream: StreamPlan) -> Outcome:
        nonlocal done
        planned = stream.action
        async with gate:
            if recheck is not None and stream.action in _RECHECKED:
                try:
                    stream = await recheck(stream)
                except asyncio.CancelledError:
                    raise
                except JetStreamError as exc:
                    log_to.error("apply_failed", stream=stream.name,
                                 action=str(stream.action), error=str(exc))
                    return Outcome(stream, Status.FAILED, str(exc))
            outcome = await apply_stream(js, stream, log_to)
        if planned in WRITES:
            done += 1
            if writes >= PROGRESS_EVERY and (done % step == 0 or done == writes):
                log_to.info("apply_progress", done=done, total=writes)
        return outcome

    # deletions last: a create never races the server's clean-up after a deleted stream (it
    # removes the account's directory when that was its last file stream, and a file
    # stream created meanwhile fails with 10049), and a stream that replaces another exists
    # before the other goes; a stream in sync needs nothing, not even a task, and its
    # outcome is made once the writes are done (a heal does not wait for 1,000 of them)
    outcomes: dict[int, Outcome] = {}
    for deleting in (False, True):
        picked = [i for i, s in enumerate(plan.streams)
                  if s.action is not Action.NOOP and (s.action is Action.DELETE) is deleting]
        done_now = await asyncio.gather(*(one(plan.streams[i]) for i in picked))
        outcomes.update(zip(picked, done_now, strict=True))
    return tuple(outcomes[i] if i in outcomes else Outcome(s, Status.UNCHANGED)
                 for i, s in enumerate(plan.streams))


async def apply_stream(
    js: StreamWriter, stream: StreamPlan, logger: FilteringBoundLogger | None = None
) -> Outcome:
    bound = (logger or log).bind(stream=stream.name)
    if stream.action is Action.NOOP:
        return Outcome(stream, Status.UNCHANGED)
    if stream.action is Action.BLOCKED:
        bound.warning(
            "change_blocked",
            reasons=list(stream.reasons),
            impact=impact_document(stream.impact),
            changes=changes_document(stream.changes),
        )
        return Outcome(stream, Status.BLOCKED, "; ".join(stream.reasons))
    if stream.action is Action.REPORT:
        bound.info("drift_reported", changes=changes_document(stream.changes),
                   reasons=list(stream.reasons))
        return Outcome(stream, Status.REPORTED)
    try:
        return await _write(js, stream, bound)
    except asyncio.CancelledError:
        raise
    except ApiError as exc:
        bound.error("apply_failed", action=str(stream.action), code=exc.code,
                    err_code=exc.err_code, description=exc.description, error=exc.message,
                    in_doubt=False)
        return Outcome(stream, Status.FAILED, exc.message, exc.err_code)
    except JetStreamError as exc:
        lost = isinstance(exc, ConnectionLost)
        # a request sent and never answered may have been carried out
        in_doubt = exc.sent if isinstance(exc, ConnectionLost) else isinstance(
            exc, RequestTimeout)
        bound.error("apply_failed", action=str(stream.action), error=str(exc),
                    in_doubt=in_doubt)
        return Outcome(stream, Status.FAILED, str(exc), connection_lost=lost, in_doubt=in_doubt)



async def _write(js: StreamWriter, stream: StreamPlan, bound: FilteringBoundLogger) -> Outcome:
    if stream.action is Action.DELETE:
        await js.delete_stream(stream.name)
        bound.warning("stream_deleted", manifest=stream.location.file if stream.location else None,
                      impact=impact_document(stream.impact))
        return Outcome(stream, Status.DELETED)
    assert stream.config is not None
    if stream.action is Action.CREATE:
        await js.create_stream(stream.config)
        bound.info("stream_created", config=dict(stream.config),
                   changes=changes_document(stream.changes))
        return Outcome(stream, Status.CREATED)
    await js.update_stream(stream.config)
    if stream.adopt:
        bound.info("stream_adopted", manifest=stream.location.file if stream.location else None)
    if stream.action is Action.ADOPT:
        return Outcome(stream, Status.ADOPTED)
    bound.info(
        "stream_updated",
        changes=changes_document(stream.changes),
        impact=impact_document(stream.impact),
    )
    return Outcome(stream, Status.UPDATED)
