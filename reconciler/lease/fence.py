"""Writes that check the lease's deadline first, and work done only while holding it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from reconciler.model import (
    Config,
    Listing,
    LiveStream,
    MessageSample,
    Topology,
)

if TYPE_CHECKING:
    from reconciler.lease.keeper import Lease


class Fenced:
    """A JetStream client whose stream writes first check that this process may write;
    reads pass through."""

    def __init__(self, js: Any, lease: Lease) -> None:
        self._js, self._lease = js, lease

    def topology(self) -> Topology:
        result: Topology = self._js.topology()
        return result

    async def list_streams(self) -> Listing:
        result: Listing = await self._js.list_streams()
        return result

    async def stream_info(self, name: str) -> LiveStream | None:
        result: LiveStream | None = await self._js.stream_info(name)
        return result

    async def sample_messages(self, live: LiveStream, *, budget: int = 100_000,
                              subject_counts: bool = False) -> MessageSample:
        result: MessageSample = await self._js.sample_messages(
            live, budget=budget, subject_counts=subject_counts)
        return result

    async def create_stream(self, config: Config) -> LiveStream:
        self._lease.check_write()
        result: LiveStream = await self._js.create_stream(config)
        return result

    async def update_stream(self, config: Config) -> LiveStream:
        self._lease.check_write()
        result: LiveStream = await self._js.update_stream(config)
        return result

    async def delete_stream(self, name: str) -> None:
        self._lease.check_write()
        await self._js.delete_stream(name)


async def holding(lease: Lease, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run `work()` while `lease` is kept renewed in the background, then release it."""
    keeper = asyncio.create_task(lease.run(), name="lease")
    try:
        return await work()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await lease.release()
        await lease.close()
