"""What the rest of the reconciler needs from JetStream, as protocols.

`JetStream` implements all of them against a real server; `reconciler.testing.fake`
implements them in memory. Each user names only the part it needs:

    StreamWriter   apply: create and update streams
    JetStreamAPI   one reconcile pass: list, read and sample streams, and the topology
    LeaseStore     the lease: a key-value bucket and wake-ups on a subject
    AdvisorySource watch mode: stream-change advisories
    Adapter        all of the above, and closing (what the daemon holds)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from reconciler.model import (
    Advisory,
    Config,
    KvEntry,
    Listing,
    LiveStream,
    MessageSample,
    Topology,
)


class Subscription(Protocol):
    """A running watch (`AdvisoryWatch`); `unsubscribe()` ends it."""

    async def unsubscribe(self) -> None: ...


class StreamWriter(Protocol):
    """The part of `JetStream` that apply needs."""

    async def create_stream(self, config: Config) -> LiveStream: ...

    async def update_stream(self, config: Config) -> LiveStream: ...

    async def delete_stream(self, name: str) -> None: ...


class JetStreamAPI(StreamWriter, Protocol):
    """The part of `JetStream` that a reconcile pass needs."""

    async def list_streams(self) -> Listing: ...

    async def stream_info(self, name: str) -> LiveStream | None: ...

    async def sample_messages(
        self, live: LiveStream, *, budget: int = ..., subject_counts: bool = ...
    ) -> MessageSample: ...

    def topology(self) -> Topology: ...


class LeaseStore(Protocol):
    """The part of `JetStream` the lease needs."""

    async def ensure_kv_bucket(self, bucket: str, *, replicas: int = ...) -> None: ...

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None: ...

    async def kv_put(self, bucket: str, key: str, value: bytes, *, revision: int) -> int: ...

    async def watch_subject(self, subject: str, handler: Callable[[], None]) -> Subscription: ...


class AdvisorySource(Protocol):
    """Stream-change advisories, for watch mode's triggers."""

    async def watch_advisories(
        self, handler: Callable[[Advisory], Awaitable[None]]
    ) -> Subscription: ...


class Adapter(JetStreamAPI, LeaseStore, AdvisorySource, Protocol):
    """Everything the daemon uses of one connection."""

    async def close(self) -> None: ...
