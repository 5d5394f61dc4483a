from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reconciler import jetstream
from reconciler.model import ConnectOptions
from tests.natsserver import NatsServer
from tests.repo import guard_user_files

guard_user_files()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream, file store under the test's temp dir."""
    server = NatsServer(tmp_path / "js").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[jetstream.JetStream]:
    """Our own JetStream client, connected to `nats_server`."""
    async with await jetstream.connect(ConnectOptions(servers=(nats_server.url,))) as client:
        yield client
