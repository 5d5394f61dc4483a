"""A connection that sends JetStream API requests and turns every failure into our error.

What ends a request, besides its answer:

    the connection drops           ConnectionLost (sent=True: it may have been carried out)
    not connected when sending     ConnectionLost (sent=False)
    the server refuses the publish PermissionDenied (an async -ERR, matched to the request)
    no reply subscription allowed  PermissionDenied for this and every later request
    no answer in time              RequestTimeout (why, when the stream name says it)
    nobody listens on the subject  JetStreamError (JetStream not enabled, no such stream)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any, Self

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from reconciler.errors import (
    ConnectionLost,
    JetStreamError,
    PermissionDenied,
    RequestTimeout,
)
from reconciler.jetstream.advisories import AdvisoryWatch
from reconciler.jetstream.transport import connect_reason
from reconciler.jetstream.wire import API, ack_sequence, api_response
from reconciler.model import ConnectOptions
from reconciler.urls import display_url, split_servers

#: the async error nats-py passes on for a publish or subscribe the server refused
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"', re.I)
_NO_INBOX = (
    "this user may not subscribe to _INBOX.> (the server reported a permissions "
    "violation), so no answer can reach us: allow _INBOX.> in the user's "
    "subscribe permissions"
)


class Connection:
    """A nats-py connection for JetStream API requests; `JetStream` adds the API itself."""

    def __init__(self, nc: Client, opts: ConnectOptions) -> None:
        self._nc = nc
        self._opts = opts
        self._api = opts.api
        """the subject prefix of API requests: `$JS.API`, or a domain's or an import's"""
        self.client_name = opts.name
        self.closing = False
        self._watches: list[AdvisoryWatch] = []
        #: requests waiting for an answer, oldest first
        self._pending: dict[int, _InFlight] = {}
        self._ids = itertools.count()
        #: set when the server refused our reply subscription: no answer can ever arrive
        self._no_replies: str | None = None

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def client_id(self) -> int | None:
        """The server's id of this connection (changes on reconnect)."""
        cid = self._nc.client_id
        return cid if isinstance(cid, int) else None

    @property
    def url(self) -> str:
        """The server this connection is on, without credentials."""
        current = self._nc.connected_url
        if current is None:
            return ", ".join(display_url(s) for s in split_servers(self._opts.servers))
        return display_url(current.geturl())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every advisory watch and close the connection (without calling back)."""
        self.closing = True
        for watch in self._watches:
            await watch.unsubscribe()
        self._watches.clear()
        with contextlib.suppress(nats.errors.Error, OSError):
            await self._nc.close()

    async def _request(
        self,
        subject: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: str | None = None,
        extra_wait: float = 0.0,
    ) -> dict[str, Any]:
        """One JetStream API request; the decoded response, or our error. `extra_wait`:
        seconds the server may take on purpose, on top of the request timeout."""
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        reply = await self._send(subject, data, stream=stream, extra_wait=extra_wait)
        return api_response(subject, reply.data, stream)

    async def _publish(
        self, subject: str, payload: bytes = b"", headers: dict[str, str] | None = None
    ) -> int:
        """Publish to a stream and wait for its acknowledgement; the stored sequence."""
        reply = await self._send(subject, payload, headers=headers)
        return ack_sequence(subject, reply.data)

    async def _send(
        self,
        subject: str,
        data: bytes,
        *,
        stream: str | None = None,
        headers: dict[str, str] | None = None,
        extra_wait: float = 0.0,
    ) -> Msg:
        timeout = self._opts.request_timeout + extra_wait
        where = f"stream {stream}: " if stream else ""
        if self._no_replies is not None:
            raise PermissionDenied(f"{where}{self._no_replies}")
        if self._nc.is_reconnecting:
            raise ConnectionLost(f"{where}{subject}: not sent: not connected to {self.url} "
                                 "(reconnecting)", sent=False)
        key = next(self._ids)
        self._pending[key] = waiting = _InFlight(subject)
        try:
            reply = await self._nc.request(subject, data, timeout=timeout, headers=headers)
        except asyncio.CancelledError:
            if waiting.end() or waiting.error is None:
                raise
            if isinstance(waiting.error, ConnectionLost):
                raise ConnectionLost(f"{where}{waiting.error}", sent=waiting.error.sent) from None
            raise type(waiting.error)(f"{where}{waiting.error}") from None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            if waiting.end():
                raise asyncio.CancelledError from None
            lost = waiting.error is not None or not self._nc.is_connected
            raise self._failure(exc, subject, where, timeout, stream, lost=lost) from None
        finally:
            del self._pending[key]
        if waiting.end():
            raise asyncio.CancelledError
        return reply  # (an answer that came as the wait was ended still counts)

    def _failure(
        self, exc: BaseException, subject: str, where: str, timeout: float, stream: str | None,
        *, lost: bool,
    ) -> JetStreamError:
        """Our error for what nats-py raised from a request; `lost`: the connection dropped
        (or we heard of it) while the request was in flight."""
        if isinstance(exc, nats.errors.ConnectionClosedError):
            # nats-py refuses to publish on a closed connection: nothing was sent
            return ConnectionLost(
                f"{where}{subject}: not sent: the connection to {self.url} was lost",
                sent=False)
        if isinstance(exc, nats.errors.NoRespondersError):
            if subject.startswith(f"{self._api}.") and self._api != API:
                return JetStreamError(
                    f"no JetStream answers on {self._api} through {self.url} (no "
                    f"responders): {_unreached(self._opts)}")
            if subject.startswith(f"{API}."):
                return JetStreamError(
                    f"JetStream is not enabled on {self.url} (no responders on {API}): "
                    "start nats-server with -js, or enable JetStream for this account"
                )
            return JetStreamError(
                f"no stream on {self.url} takes subject {subject} (no responders)"
            )
        if isinstance(exc, TimeoutError):
            if lost:
                # nats-py may give up on a request as the connection drops, before we hear
                # of the drop: that is a lost connection, not a slow server
                return ConnectionLost(f"{where}{self._lost_in_flight(subject)}", sent=True)
            return RequestTimeout(_timeout_message(subject, timeout, stream))
        reason = connect_reason(exc, timeout)
        return JetStreamError(f"{subject} on {self.url}: {reason}")

    def _async_error(self, exc: Exception) -> None:
        """An error the server sent outside any reply: a permissions violation fails the
        request it concerns (nats-py would leave it waiting for its timeout)."""
        found = _VIOLATION.search(str(exc))
        if found is None:
            return
        verb, denied = found[1].lower(), found[2].lower()  # nats-py lowercases the message
        if verb == "publish":
            # the server refuses publishes in the order they came: the oldest one matches
            for waiting in self._pending.values():
                if waiting.subject.lower() == denied and waiting.error is None:
                    waiting.interrupt(PermissionDenied(
                        f"this user may not publish to {waiting.subject} (the server reported a "
                        "permissions violation): allow it in the user's publish permissions; "
                        "the reconciler publishes to $JS.API.>"
                    ))
                    return
            return
        if denied.startswith("_inbox."):
            self._no_replies = _NO_INBOX
            for waiting in self._pending.values():
                waiting.interrupt(PermissionDenied(self._no_replies))

    def _interrupt_all(self) -> None:
        """The connection is gone: no request in flight will be answered."""
        for waiting in self._pending.values():
            waiting.interrupt(ConnectionLost(self._lost_in_flight(waiting.subject), sent=True))

    def _lost_in_flight(self, subject: str) -> str:
        return (f"{subject} on {self.url}: the connection was lost before the server answered "
                "(the request may or may not have been carried out)")


class _InFlight:
    """A request waiting for its answer, in the task that sent it. What ends the wait early
    (`interrupt`) cancels that task, the way `asyncio.timeout` does; `end` tells that
    cancellation from any other."""

    __slots__ = ("_cancelling", "_task", "error", "subject")

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.error: JetStreamError | None = None
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()

    def interrupt(self, error: JetStreamError) -> None:
        """End the wait with `error` (the first one given wins)."""
        if self.error is None:
            self.error = error
            self._task.cancel()

    def end(self) -> bool:
        """The wait is over: take back the cancellation `interrupt` made, if it did;
        whether the task was cancelled from outside meanwhile (it must stop, even when its
        answer came at the same moment: Python 3.11's `asyncio.wait_for`, which nats-py
        waits with, then returns the answer and drops the cancellation)."""
        if self.error is not None:
            self._task.uncancel()
        return self._task.cancelling() > self._cancelling


def _unreached(opts: ConnectOptions) -> str:
    """Why no JetStream answers under a domain's or an import's prefix."""
    if opts.js_domain:
        return (f"no server of domain {opts.js_domain!r} is reachable from here (is the leaf "
                "node connected, and is its domain spelt so?)")
    return (f"nothing serves the JetStream API under {opts.api_prefix!r} in this account "
            "(check the account's import and the prefix)")


def _timeout_message(subject: str, timeout: float, stream: str | None) -> str:
    text = f"no answer to {subject} within {timeout:g}s"
    if stream is not None and "." in stream:
        return (
            f"{text}: the stream name {stream!r} contains '.', so no API handler matches "
            "the subject; stream names cannot contain '.'"
        )
    if stream is not None:
        return f"{text}: the stream's leader may be unreachable, or the server overloaded"
    return f"{text}: the server may be overloaded, or JetStream has no meta leader"
