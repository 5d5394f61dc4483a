"""nats-py's client and TCP transport as we use them, and why a connection attempt failed.

nats-py itself is kept: only two of its behaviours are changed, each in a subclass whose
docstring says why.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import ParseResult

import nats.errors
from nats.aio.client import Client
from nats.aio.transport import TcpTransport

from reconciler.redact import redact_text


class TlsTransport(TcpTransport):
    """nats-py's TCP transport, with its TLS upgrade made through `StreamWriter.start_tls`.

    nats-py upgrades by handing `loop.start_tls` a new `StreamReaderProtocol` whose
    `connection_made` is never called, so that protocol does not know it runs over TLS and
    answers the server's end of stream with "keep the connection open", which asyncio's SSL
    layer cannot do: it logs "returning true from eof_received() has no effect when using ssl"
    for every TLS connection that ends. `StreamWriter.start_tls` upgrades the same reader and
    writer and tells the protocol.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def __bool__(self) -> bool:
        """True from the start: nats-py replaces a transport that is false before connecting
        (its own is false until connected); this one is there to be kept."""
        return True

    # before the first connection there is nothing to write to (nats-py may flush on close)

    def writelines(self, payload: list[bytes]) -> None:
        if self._io_writer is not None:
            self._io_writer.writelines(payload)

    async def drain(self) -> None:
        if self._io_writer is not None:
            await self._io_writer.drain()

    async def connect_tls(
        self,
        uri: str | ParseResult,
        ssl_context: ssl.SSLContext,
        buffer_size: int,
        connect_timeout: int,
    ) -> None:
        writer = self._io_writer
        assert writer is not None, "connect() comes first"
        hostname = uri if isinstance(uri, str) else uri.hostname
        await asyncio.wait_for(
            writer.start_tls(ssl_context, server_hostname=hostname), connect_timeout
        )


class NoTls(nats.errors.Error):
    """TLS was asked for, but the server does not require it, so nats-py would go on in
    plaintext (it upgrades only when the server's INFO says `tls_required`)."""


class StrictClient(Client):
    """nats-py's client, refusing to continue in plaintext when TLS was asked for. The check
    runs on each server's INFO, before CONNECT carries any credential."""

    tls_wanted = False
    #: the server's INFO, with what later INFO messages (cluster changes) brought
    latest_info: Mapping[str, Any] = MappingProxyType({})

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        if self.tls_wanted and initial_connection and not info.get("tls_required"):
            raise NoTls
        self.latest_info = {**({} if initial_connection else self.latest_info), **info}
        await super()._process_info(info, initial_connection)


def connect_reason(exc: BaseException, timeout: float) -> str:
    """Why one connection attempt failed, in a few words."""
    if isinstance(exc, nats.errors.AuthorizationError) or (
        "authorization violation" in str(exc).lower()
    ):
        return "authorization violation"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    if isinstance(exc, NoTls):
        return ("the server does not offer TLS, which tls:// or a --tls option asks for; "
                "nothing was sent: write nats:// to connect without TLS")
    if isinstance(exc, nats.errors.SecureConnRequiredError):
        return "the server requires TLS (use tls:// or set a CA)"
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        return f"{what.lower()}: {exc.filename}" if exc.filename else what.lower()
    if isinstance(exc, nats.errors.Error):
        text = str(exc).removeprefix("nats: ").strip().strip("'")
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def connect_failure(attempts: Sequence[tuple[str, str]]) -> str:
    """One line: `cannot connect to URL[, URL]: reason` or, when reasons differ, each's own."""
    if not attempts:
        return "cannot connect: no server given"
    reasons = {r for _, r in attempts}
    if len(reasons) == 1:
        text = f"cannot connect to {', '.join(u for u, _ in attempts)}: {attempts[0][1]}"
    else:
        text = "cannot connect to " + "; ".join(f"{u}: {r}" for u, r in attempts)
    return redact_text(text)  # a library's own words may quote a URL
