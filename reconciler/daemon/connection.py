"""The connection watch mode keeps: what it needs of JetStream, and connecting until it
succeeds or the daemon stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from reconciler.errors import ConnectFailed
from reconciler.jetstream.protocol import Adapter
from reconciler.model import ConnectOptions
from reconciler.redact import redact_servers

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")

Callback = Callable[[], Awaitable[None]]
#: the first wait after a failed connect; it doubles up to `CONNECT_MAX_WAIT_S`
CONNECT_FIRST_WAIT_S = 0.25
CONNECT_MAX_WAIT_S = 30.0


#: what watch mode holds of one connection (`jetstream.JetStream`; `testing.FakeJetStream`)
Connection = Adapter


class Connect(Protocol):
    """`jetstream.connect`, as watch mode calls it."""

    def __call__(self, opts: ConnectOptions, *, reconnect: bool, on_disconnected: Callback,
                 on_reconnected: Callback) -> Awaitable[Connection]: ...


async def sleep_unless(stopped: asyncio.Event, seconds: float) -> bool:
    """Sleep unless `stopped` is set first; True when it is."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopped.wait(), seconds)
    return stopped.is_set()


async def connect_until(
    stopped: asyncio.Event, connect: Connect, opts: ConnectOptions, *,
    on_disconnected: Callback, on_reconnected: Callback,
) -> Connection | None:
    """Connect (to reconnect forever after), trying again and again until it works; None
    when `stopped` is set first."""
    delay = CONNECT_FIRST_WAIT_S
    while not stopped.is_set():
        try:
            js = await connect(opts, reconnect=True, on_disconnected=on_disconnected,
                               on_reconnected=on_reconnected)
        except ConnectFailed as exc:
            log.warning("nats_unreachable", error=str(exc), retry_in_s=delay)
            if await sleep_unless(stopped, delay):
                return None
            delay = min(delay * 2, CONNECT_MAX_WAIT_S)
            continue
        log.info("nats_connected", servers=redact_servers(opts.servers))
        return js
    return None
