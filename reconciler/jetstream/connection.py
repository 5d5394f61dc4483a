"""Connecting: each server tried once (or, in watch mode, forever), with one clear line
when none could be reached."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from nats.aio.client import Client
from structlog.typing import FilteringBoundLogger

from reconciler.errors import ConnectFailed
from reconciler.jetstream.client import JetStream
from reconciler.jetstream.security import check_creds, tls_context
from reconciler.jetstream.transport import (
    StrictClient,
    TlsTransport,
    connect_failure,
    connect_reason,
)
from reconciler.model import ConnectOptions
from reconciler.urls import display_url, split_servers

log: FilteringBoundLogger = structlog.get_logger("reconciler.jetstream")

Callback = Callable[[], Awaitable[None]]
ClientT = TypeVar("ClientT", bound=JetStream)

#: how long to wait for nats-py to close a client whose connect failed, seconds
_DISCARD_WAIT = 0.25
#: reconnect_time_wait in watch mode, seconds
_RECONNECT_WAIT = 0.5


class _GiveUp(Exception):
    """Raised from nats-py's error callback to end a connect after one try of each server."""


async def connect(
    opts: ConnectOptions,
    *,
    reconnect: bool = False,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
) -> JetStream:
    """Connect to NATS, trying each server once; raise `ConnectFailed` with one line if none.

    `reconnect=False` (plan, apply): once connected, a lost connection is not retried.
    `reconnect=True` (watch): reconnect forever, calling `on_disconnected`/`on_reconnected`.
    """
    return await connect_as(JetStream, opts, reconnect=reconnect,
                            on_disconnected=on_disconnected, on_reconnected=on_reconnected)


async def connect_as(
    cls: type[ClientT],
    opts: ConnectOptions,
    *,
    reconnect: bool = False,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
) -> ClientT:
    """`connect()`, returning a `cls` (`JetStream` or a subclass of it)."""
    servers = split_servers(opts.servers)
    if not servers:
        raise ConnectFailed("cannot connect: no server given")
    if opts.creds:
        check_creds(opts.creds)
    tls = tls_context(opts, servers)
    holder: list[ClientT] = []

    def async_error(exc: Exception) -> None:
        if holder:
            holder[0]._async_error(exc)

    async def disconnected() -> None:
        if holder:
            holder[0]._interrupt_all()
        if on_disconnected is not None and holder and not holder[0].closing:
            await _run_callback("disconnected", on_disconnected)

    async def reconnected() -> None:
        if on_reconnected is not None and holder and not holder[0].closing:
            await _run_callback("reconnected", on_reconnected)

    attempts: list[tuple[str, str]] = []
    callbacks = (disconnected, reconnected, async_error)
    if reconnect:
        nc = await _open(opts, servers, tls, True, callbacks, attempts)
    else:
        nc = None
        for server in servers:
            nc = await _open(opts, [server], tls, False, callbacks, attempts)
            if nc is not None:
                break
    if nc is None:
        raise ConnectFailed(connect_failure(attempts))
    js = cls(nc, opts)
    holder.append(js)
    return js


async def _run_callback(what: str, callback: Callback) -> None:
    try:
        await callback()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("nats_callback_failed", callback=what)


def _client_options(opts: ConnectOptions, tls: ssl.SSLContext | None) -> dict[str, Any]:
    """nats-py's connect options for timing, TLS and credentials."""
    # nats-py annotates these as int but takes float seconds
    kwargs: dict[str, Any] = {
        "reconnect_time_wait": _RECONNECT_WAIT,
        "connect_timeout": opts.connect_timeout,
        # pings notice a server that stopped answering (frozen, cut off) within seconds
        "ping_interval": opts.ping_interval,
        "max_outstanding_pings": opts.max_outstanding_pings,
    }
    if tls is not None:
        kwargs["tls"] = tls
    if opts.creds:
        kwargs["user_credentials"] = opts.creds
    if opts.nkey:
        kwargs["nkeys_seed"] = opts.nkey
    if opts.user is not None:
        kwargs["user"] = opts.user
    if opts.password is not None:
        kwargs["password"] = opts.password
    if opts.token is not None:
        kwargs["token"] = opts.token
    return kwargs


async def _open(
    opts: ConnectOptions,
    servers: list[str],
    tls: ssl.SSLContext | None,
    reconnect: bool,
    callbacks: tuple[Callback, Callback, Callable[[Exception], None]],
    attempts: list[tuple[str, str]],
) -> Client | None:
    """One nats-py client over `servers`, each tried once in order; None if all failed.
    `callbacks`: on disconnect, on reconnect, and for an error outside any request."""
    disconnected, reconnected, async_error = callbacks
    failures: list[BaseException] = []
    connecting = True

    async def on_error(exc: Exception) -> None:
        if connecting:
            failures.append(exc)
            log.debug("nats_connect_attempt_failed", error=repr(exc))
            if len(failures) >= len(servers):
                raise _GiveUp
        else:
            log.debug("nats_async_error", error=repr(exc))
            async_error(exc)

    nc = StrictClient()
    nc.tls_wanted = tls is not None
    if not any(s.startswith(("ws://", "wss://")) for s in servers):
        # nats-py creates its transport only when it has none; it keeps this one
        nc._transport = TlsTransport()
    try:
        await nc.connect(
            servers=servers,
            name=opts.name,
            error_cb=on_error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            allow_reconnect=reconnect,
            max_reconnect_attempts=-1 if reconnect else 1,
            dont_randomize=True,  # so that the n-th failure is the n-th server
            **_client_options(opts, tls),
        )
    except asyncio.CancelledError:
        await _discard(nc)
        raise
    except Exception as exc:  # _GiveUp, or what nats-py raised itself
        await _discard(nc)
        if not isinstance(exc, _GiveUp) and len(failures) < len(servers):
            failures.append(exc)
        for server, failure in zip(servers, failures, strict=False):
            attempts.append((display_url(server), connect_reason(failure, opts.connect_timeout)))
        return None
    connecting = False
    return nc


async def _discard(nc: Client) -> None:
    """Close a client whose connect failed. After a failed TLS upgrade the socket is already
    closed but nats-py's close() waits forever on the pre-TLS writer: bound the wait."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), _DISCARD_WAIT)
