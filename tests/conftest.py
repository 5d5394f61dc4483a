from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from reconciler import testing
from reconciler.model import ConnectOptions
from reconciler.testing import NatsServer, TestClient
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
async def js(nats_server: NatsServer) -> AsyncIterator[TestClient]:
    """Our own JetStream client (which can also publish, read and delete), connected to
    `nats_server`."""
    async with await testing.connect(ConnectOptions(servers=(nats_server.url,))) as client:
        yield client


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No NATS_* or JETSTREAM_RECONCILER_* variable of the caller's, no NATS context of
    theirs (XDG_CONFIG_HOME under the test's temp dir), and structlog as it was after."""
    for key in list(os.environ):
        if key.startswith(("NATS_", "JETSTREAM_RECONCILER_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    yield
    structlog.reset_defaults()
