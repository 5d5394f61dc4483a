"""An in-memory stand-in for `reconciler.jetstream.JetStream`, for unit tests of watch mode's
logic: trigger folding, echo suppression, actor attribution, drift sources.

It keeps stream configs as they were sent (no server defaults, no validation, no messages)
and announces each change the way the server does: a stream advisory, then an API advisory
naming the client. Tests play the other clients (`change_as`, `advise`), make calls fail
(`fail`) or hold a call until released (`pause`). It is not the server: whatever depends on
the server's behaviour is tested against a real nats-server (`reconciler.natsserver`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import ApiError, ConnectFailed, JetStreamError
from reconciler.model import (
    Advisory,
    Config,
    ConnectOptions,
    KvEntry,
    Listing,
    LiveStream,
    MessageSample,
    Topology,
)

Handler = Callable[[Advisory], Awaitable[None]]
Callback = Callable[[], Awaitable[None]]

STREAM_NOT_FOUND = 10059
STREAM_NAME_IN_USE = 10058
WRONG_LAST_SEQUENCE = 10071
#: the client id of the fake's own connection; other clients get others
OUR_CLIENT_ID = 1
_OPS = {"created": "CREATE", "updated": "UPDATE", "deleted": "DELETE"}


@dataclass
class Pause:
    """Holds calls of one method: `entered` is set when one is waiting, `release()` lets
    it (and every later call) go on, `left` is set as the first held call returns."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)
    _go: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self._go.set()


class _Calls:
    """Every call recorded; any method can be made to fail or wait."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        """Every method called on the fake, in order (`update_stream:events`)."""
        self._failures: dict[str, list[Exception]] = {}
        self._pauses: dict[str, Pause] = {}

    def fail(self, method: str, error: Exception | None = None, times: int = 1) -> None:
        """Make the next `times` calls of `method` raise `error` (default: a lost connection)."""
        error = error or JetStreamError(f"{method}: connection lost (fake)")
        self._failures.setdefault(method, []).extend([error] * times)

    def pause(self, method: str) -> Pause:
        """Hold every call of `method` from now on until the pause is released."""
        self._pauses[method] = pause = Pause()
        return pause

    async def _call(self, method: str, detail: str = "") -> None:
        self.calls.append(f"{method}:{detail}" if detail else method)
        pause = self._pauses.get(method)
        if pause is not None:
            pause.entered.set()
            await pause._go.wait()
        failures = self._failures.get(method)
        if failures:
            raise failures.pop(0)
        if pause is not None:
            pause.left.set()  # the caller has the answer before it runs again


class _Buckets(_Calls):
    """Key-value buckets, as the lease uses them."""

    def __init__(self) -> None:
        super().__init__()
        self._kv: dict[str, list[tuple[str, bytes]]] = {}
        self._subject_handlers: dict[str, list[Callable[[], None]]] = {}

    async def ensure_kv_bucket(self, bucket: str, *, replicas: int = 1) -> None:
        await self._call("ensure_kv_bucket", bucket)
        self._kv.setdefault(bucket, [])

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None:
        await self._call("kv_get", key)
        for seq, (k, value) in reversed(list(enumerate(self._bucket(bucket), 1))):
            if k == key:
                return KvEntry(key=key, revision=seq, value=value)
        return None

    async def kv_put(self, bucket: str, key: str, value: bytes, *, revision: int) -> int:
        await self._call("kv_put", key)
        latest = await self.kv_get(bucket, key)
        if (latest.revision if latest is not None else 0) != revision:
            raise ApiError(400, WRONG_LAST_SEQUENCE, f"wrong last sequence: {revision}")
        entries = self._bucket(bucket)
        entries.append((key, value))
        for handler in self._subject_handlers.get(f"$KV.{bucket}.{key}", []):
            handler()
        return len(entries)

    def _bucket(self, bucket: str) -> list[tuple[str, bytes]]:
        if bucket not in self._kv:
            raise ApiError(404, STREAM_NOT_FOUND, "stream not found", stream=f"KV_{bucket}")
        return self._kv[bucket]

    async def watch_subject(self, subject: str, handler: Callable[[], None]) -> Any:
        await self._call("watch_subject", subject)
        self._subject_handlers.setdefault(subject, []).append(handler)
        return handler


class FakeJetStream(_Buckets):
    """Streams and key-value entries in memory; `connect` is a stand-in for
    `jetstream.connect` that hands out this object."""

    def __init__(self, *, client_name: str = "jetstream-reconciler",
                 topology: Topology | None = None) -> None:
        super().__init__()
        self.client_name = client_name
        self.streams: dict[str, LiveStream] = {}
        self.connected = False
        self.refuse_connects = 0
        """Connect attempts still to refuse with `ConnectFailed`."""
        self._topology = topology or Topology()
        self.handler_errors: list[Exception] = []
        """What advisory handlers raised (the real watch logs it and goes on)."""
        self._handlers: list[Handler] = []
        self._queue: asyncio.Queue[Advisory] = asyncio.Queue()
        self._delivery: asyncio.Task[None] | None = None
        self._on_disconnected: Callback | None = None
        self._on_reconnected: Callback | None = None

    # --- the test's side ---------------------------------------------------------------------

    def change_as(self, actor: str, config: Config) -> None:
        """Another client creates or updates a stream: its config changes, and both its
        advisories are sent (stream, then API)."""
        name = str(config["name"])
        kind = "updated" if name in self.streams else "created"
        self.streams[name] = LiveStream(name, dict(config))
        self.announce(kind, name, actor=actor, client_id=OUR_CLIENT_ID + 1, config=config)

    def announce(self, kind: str, stream: str, *, actor: str | None, client_id: int,
                 config: Config | None = None, api: bool = True) -> None:
        """The advisories the server sends for a change of `stream` (`kind`: created,
        updated or deleted) by the client `actor`; `api=False` leaves out the API one."""
        now = time.time_ns()
        self.advise(Advisory(kind=kind, stream=stream, actor=None, own=False,
                             subject=f"$JS.EVENT.ADVISORY.STREAM.{kind.upper()}.{stream}",
                             time_ns=now))
        if api:
            self.advise(Advisory(
                kind="api", stream=stream, actor=actor, own=client_id == OUR_CLIENT_ID,
                subject=f"$JS.API.STREAM.{_OPS[kind]}.{stream}", time_ns=now,
                client_id=client_id, config=dict(config) if config is not None else None))

    def advise(self, advisory: Advisory) -> None:
        """Send one advisory to every advisory watch, after those already sent."""
        self._queue.put_nowait(advisory)

    async def delivered(self) -> None:
        """Wait until every advisory sent so far has been handled."""
        await self._queue.join()

    async def disconnect(self) -> None:
        self.connected = False
        if self._on_disconnected is not None:
            await self._on_disconnected()

    async def reconnect(self) -> None:
        self.connected = True
        if self._on_reconnected is not None:
            await self._on_reconnected()

    # --- the connection ----------------------------------------------------------------------

    async def connect(self, opts: ConnectOptions, *, reconnect: bool = False,
                      on_disconnected: Callback | None = None,
                      on_reconnected: Callback | None = None) -> FakeJetStream:
        if self.refuse_connects > 0:
            self.refuse_connects -= 1
            raise ConnectFailed("cannot connect to the fake: refused")
        self._on_disconnected, self._on_reconnected = on_disconnected, on_reconnected
        self.connected = True
        return self

    async def close(self) -> None:
        self.connected = False
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None

    # --- streams -----------------------------------------------------------------------------

    async def list_streams(self) -> Listing:
        await self._call("list_streams")
        return Listing(tuple(self.streams.values()))

    def topology(self) -> Topology:
        return self._topology

    async def stream_info(self, name: str) -> LiveStream | None:
        await self._call("stream_info", name)
        return self.streams.get(name)

    async def create_stream(self, config: Config) -> LiveStream:
        name = str(config["name"])
        await self._call("create_stream", name)
        if name in self.streams and self.streams[name].config != config:
            raise ApiError(400, STREAM_NAME_IN_USE,
                           "stream name already in use with a different configuration",
                           stream=name)
        return self._write("created", config)

    async def update_stream(self, config: Config) -> LiveStream:
        name = str(config["name"])
        await self._call("update_stream", name)
        if name not in self.streams:
            raise ApiError(404, STREAM_NOT_FOUND, "stream not found", stream=name)
        return self._write("updated", config)

    async def delete_stream(self, name: str) -> None:
        await self._call("delete_stream", name)
        if self.streams.pop(name, None) is None:
            raise ApiError(404, STREAM_NOT_FOUND, "stream not found", stream=name)
        self.announce("deleted", name, actor=self.client_name, client_id=OUR_CLIENT_ID,
                      config=None)

    def _write(self, kind: str, config: Config) -> LiveStream:
        live = LiveStream(str(config["name"]), dict(config))
        self.streams[live.name] = live
        self.announce(kind, live.name, actor=self.client_name, client_id=OUR_CLIENT_ID,
                      config=config)
        return live

    async def sample_messages(self, live: LiveStream, *, budget: int = 100_000,
                              subject_counts: bool = False) -> MessageSample:
        """The fake stores no messages: every sample is complete and empty."""
        await self._call("sample_messages", live.name)
        return MessageSample(subject_counts={} if subject_counts else None,
                             now_ns=time.time_ns())

    # --- advisories --------------------------------------------------------------------------

    async def watch_advisories(self, handler: Handler) -> Any:
        """Deliver every advisory to `handler`, one at a time, in order (like the real watch,
        a failing handler does not stop it)."""
        await self._call("watch_advisories")
        self._handlers.append(handler)
        if self._delivery is None:
            self._delivery = asyncio.create_task(self._deliver(), name="fake-advisories")
        return handler

    async def _deliver(self) -> None:
        while True:
            advisory = await self._queue.get()
            try:
                for handler in list(self._handlers):
                    try:
                        await handler(advisory)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        self.handler_errors.append(exc)
            finally:
                self._queue.task_done()
