from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.natsserver import NatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream, file store under the test's temp dir."""
    server = NatsServer(tmp_path / "js").start()
    try:
        yield server
    finally:
        server.stop()
