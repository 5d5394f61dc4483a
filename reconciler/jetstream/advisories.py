"""Advisories and wake-ups: core NATS subscriptions whose messages call a handler.

Advisories are core NATS: at most once, lost while disconnected. Watch mode treats them as
triggers (and as who changed what); every reconcile still reads the whole state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Final

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from structlog.typing import FilteringBoundLogger

from reconciler.errors import JetStreamError
from reconciler.jetstream.transport import connect_reason
from reconciler.jetstream.wire import ADVISORY_SUBJECTS, parse_advisory
from reconciler.model import Advisory

log: FilteringBoundLogger = structlog.get_logger("reconciler.jetstream")

AdvisoryHandler = Callable[[Advisory], Awaitable[None]]
#: who we are, asked at each advisory (the client id changes on reconnect): id and name
Identity = Callable[[], tuple[int | None, str]]


class AdvisoryWatch:
    """A running subscription; `unsubscribe()` ends it."""

    def __init__(self, subs: list[Subscription], task: asyncio.Task[None] | None) -> None:
        self._subs = subs
        self._task = task

    async def unsubscribe(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()
        self._subs = []
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        if task is not asyncio.current_task():  # not unsubscribing from inside the handler
            with contextlib.suppress(asyncio.CancelledError):
                await task


#: `domain` of an advisory watch that takes the advisories of every domain
ANY_DOMAIN: Final = object()


def decode_advisory(
    msg: Msg, identity: Identity, domain: str | object | None = ANY_DOMAIN
) -> Advisory | None:
    """An advisory message as our `Advisory`; None (logged at debug) when it is malformed,
    and when it comes from another JetStream domain than `domain` (None: no domain)."""
    try:
        payload = json.loads(msg.data)
        if not isinstance(payload, dict):
            return None
        if domain is not ANY_DOMAIN and (payload.get("domain") or None) != domain:
            return None
        client_id, name = identity()
        return parse_advisory(msg.subject, payload, client_id=client_id, name=name)
    except (ValueError, KeyError, TypeError) as exc:
        log.debug("advisory_malformed", subject=msg.subject, error=repr(exc))
        return None


async def watch_advisories(
    nc: Client, handler: AdvisoryHandler, identity: Identity, *, timeout: float, url: str,
    domain: str | object | None = ANY_DOMAIN,
) -> AdvisoryWatch:
    """Call `handler` with every stream-change advisory, one at a time, in arrival order.
    A failing handler is logged and the watch goes on. `timeout` bounds the flush that
    proves the subscriptions are in place; `url` is for messages; `domain`: only the
    advisories of this JetStream domain (they name it), or ANY_DOMAIN."""
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def enqueue(msg: Msg) -> None:
        queue.put_nowait(msg)

    async def deliver() -> None:
        while True:
            msg = await queue.get()
            advisory = decode_advisory(msg, identity, domain)
            if advisory is None:
                continue
            try:
                await handler(advisory)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("advisory_handler_failed", subject=msg.subject)

    subs: list[Subscription] = []
    try:
        for subject in ADVISORY_SUBJECTS:
            subs.append(await nc.subscribe(subject, cb=enqueue))
        await nc.flush(timeout=max(1, int(timeout)))
    except asyncio.CancelledError:
        raise
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        for sub in subs:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()
        raise JetStreamError(
            f"cannot subscribe to advisories on {url}: {connect_reason(exc, timeout)}"
        ) from None
    return AdvisoryWatch(subs, asyncio.create_task(deliver(), name="advisories"))


async def watch_subject(
    nc: Client, subject: str, handler: Callable[[], None], *, timeout: float, url: str
) -> AdvisoryWatch:
    """Call `handler` (no arguments) whenever a message arrives on `subject`: a wake-up
    only, at most once like all core NATS."""

    async def wake(_: Msg) -> None:
        handler()

    try:
        sub = await nc.subscribe(subject, cb=wake)
    except asyncio.CancelledError:
        raise
    except (nats.errors.Error, OSError) as exc:
        raise JetStreamError(
            f"cannot subscribe to {subject} on {url}: {connect_reason(exc, timeout)}"
        ) from None
    return AdvisoryWatch([sub], None)
