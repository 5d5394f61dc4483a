"""`TestClient`: `JetStream` with what only tests, benchmarks and examples do to a server
(publish, read stored messages back, send a raw stream request). The reconciler itself
never publishes outside its lease."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.jetstream import JetStream, connect_as, live_stream
from reconciler.jetstream.connection import Callback
from reconciler.model import ConnectOptions, LiveStream, StoredMessage


class TestClient(JetStream):
    """A `JetStream` connection that can also publish, read messages and send raw requests."""

    __test__ = False  # not a pytest test class

    async def publish(
        self, subject: str, payload: bytes = b"", headers: dict[str, str] | None = None
    ) -> int:
        """Publish to a stream and wait for its acknowledgement; the stored sequence."""
        return await self._publish(subject, payload, headers)

    async def read_messages(self, name: str, start_seq: int, limit: int) -> list[StoredMessage]:
        """Up to `limit` stored messages from `start_seq` on, oldest first."""
        messages, _ = await self._read(name, start_seq, limit)
        return messages

    async def raw_stream_request(self, verb: str, config: Mapping[str, Any]) -> LiveStream:
        """`$JS.API.STREAM.<verb>.<name>` (CREATE or UPDATE) with `config` sent as it is, the
        way another tool makes a stream: no canonical form, no `pedantic`."""
        name = str(config["name"])
        return live_stream(await self._request(f"{self._api}.STREAM.{verb}.{name}", config,
                                               stream=name))


async def connect(
    opts: ConnectOptions,
    *,
    reconnect: bool = False,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
) -> TestClient:
    """`reconciler.jetstream.connect`, returning a `TestClient`."""
    return await connect_as(TestClient, opts, reconnect=reconnect,
                            on_disconnected=on_disconnected, on_reconnected=on_reconnected)
