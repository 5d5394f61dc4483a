"""The one module that speaks NATS.

nats-py is used for the connection only: every JetStream API call is a request whose JSON we
write and read ourselves, because nats-py's `StreamConfig` round trip loses fields, drifts
durations and cannot send `pedantic`. Everything returned is our own type (`reconciler.model`)
and every nats-py or asyncio error is translated here into our tree (`reconciler.errors`):

    ConnectFailed    the server could not be reached, or refused our credentials
    ConnectionLost   the connection went away before the answer came (`sent`: the request
                     was on its way) or before the request could be sent
    PermissionDenied the server reported a permissions violation for the request's subject
                     (an async `-ERR`, which fails the request at once instead of a timeout)
    RequestTimeout   no answer in time (a stream name containing '.', an overloaded server)
    ApiError         the API answered `{"error": {"code", "err_code", "description"}}`
    JetStreamError   no responders on $JS.API (JetStream not enabled), connection lost, ...

`asyncio.CancelledError` always propagates.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import ParseResult, urlsplit

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.aio.transport import TcpTransport
from structlog.typing import FilteringBoundLogger

from reconciler.errors import (
    ApiError,
    ConnectFailed,
    ConnectionLost,
    JetStreamError,
    PermissionDenied,
    RequestTimeout,
    SettingsError,
)
from reconciler.model import (
    Advisory,
    Config,
    ConnectOptions,
    KvEntry,
    Listing,
    LiveStream,
    MessageSample,
    StoredMessage,
    StreamState,
    Topology,
)
from reconciler.redact import redact_text, redact_url
from reconciler.units import parse_timestamp

__all__ = [
    "ADVISORY_SUBJECTS",
    "AdvisoryWatch",
    "JetStream",
    "connect",
    "parse_advisory",
    "parse_time_ns",
]

log: FilteringBoundLogger = structlog.get_logger("reconciler.jetstream")

API = "$JS.API"
#: The advisories watch mode listens to: stream config changes, and every API request (with
#: the client that made it), of which only stream create/update/delete are passed on.
ADVISORY_SUBJECTS = (
    "$JS.EVENT.ADVISORY.STREAM.CREATED.*",
    "$JS.EVENT.ADVISORY.STREAM.UPDATED.*",
    "$JS.EVENT.ADVISORY.STREAM.DELETED.*",
    "$JS.EVENT.ADVISORY.API",
)
_STREAM_ADVISORY = "$JS.EVENT.ADVISORY.STREAM."
_STREAM_ACTIONS = {"CREATED": "created", "UPDATED": "updated", "DELETED": "deleted"}
_API_STREAM_CHANGES = ("CREATE", "UPDATE", "DELETE")

#: err_code of MSG.GET when no message is at or after the requested sequence
_NO_MESSAGE = 10037
_STREAM_NOT_FOUND = 10059
#: MSG.GET requests in flight per stream while reading messages
_READ_WINDOW = 32
#: how long to wait for nats-py to close a client whose connect failed, seconds
_DISCARD_WAIT = 0.25
#: reconnect_time_wait in watch mode, seconds
_RECONNECT_WAIT = 0.5
#: why STREAM.LIST names a stream as `missing` (the server waits 4 s for each stream leader)
_NO_LEADER = (
    "its leader did not answer within the server's 4 s (the node holding it may be down, "
    "or a leader election is under way)"
)
_ALL_OFFLINE = "all of its replicas are offline"
#: seconds a clustered server waits for stream leaders before answering STREAM.LIST
_LIST_GATHER = 4.0
#: the async error nats-py passes on for a publish or subscribe the server refused
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"', re.I)

Callback = Callable[[], Awaitable[None]]


# --- pure helpers --------------------------------------------------------------------------


def parse_time_ns(text: str | None) -> int:
    """A time the server sent, as integer ns since the epoch; Go's zero time
    (`0001-01-01T00:00:00Z`), an empty or missing value give 0."""
    if not text or text.startswith("0001-01-01T00:00:00"):
        return 0
    return parse_timestamp(text)


def stream_state(state: Mapping[str, Any] | None) -> StreamState:
    """`StreamInfo.state` of the JSON API as our `StreamState`."""
    s = state or {}
    return StreamState(
        messages=int(s.get("messages", 0)),
        bytes=int(s.get("bytes", 0)),
        first_seq=int(s.get("first_seq", 0)),
        last_seq=int(s.get("last_seq", 0)),
        first_ts_ns=parse_time_ns(s.get("first_ts")),
        consumer_count=int(s.get("consumer_count", 0)),
        num_subjects=int(s.get("num_subjects", 0)),
        num_deleted=int(s.get("num_deleted", 0)),
    )


def live_stream(info: Mapping[str, Any]) -> LiveStream:
    """A `StreamInfo` JSON object (from INFO, LIST, CREATE or UPDATE) as our `LiveStream`."""
    config = info["config"]
    return LiveStream(name=config["name"], config=config, state=stream_state(info.get("state")))


def _b64_len(data: str | None) -> int:
    if not data:
        return 0
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        # not expected from the server; the padding-free formula is close enough
        return len(data) * 3 // 4


def stored_message(message: Mapping[str, Any]) -> StoredMessage:
    """The `message` of a `$JS.API.STREAM.MSG.GET` response as our `StoredMessage`."""
    headers = message.get("hdrs")
    return StoredMessage(
        seq=int(message["seq"]),
        subject=message["subject"],
        time_ns=parse_time_ns(message.get("time")),
        payload_len=_b64_len(message.get("data")),
        headers_len=_b64_len(headers),
        marker=_MARKER_HEADER in _b64_bytes(headers or ""),
    )


#: the header that makes a message a subject delete marker
_MARKER_HEADER = b"\r\nNats-Marker-Reason:"


def _b64_bytes(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return b""


def parse_advisory(
    subject: str, payload: Mapping[str, Any], *, client_id: int | None, name: str
) -> Advisory | None:
    """An advisory message as our `Advisory`; None for what watch mode does not care about.

    `client_id` and `name` identify our own connection: an API advisory is `own` when its
    client has our client id (and name), or, when the advisory names no id, our name.
    """
    time_ns = parse_time_ns(payload.get("timestamp"))
    if subject.startswith(_STREAM_ADVISORY):
        action, _, stream = subject[len(_STREAM_ADVISORY) :].partition(".")
        kind = _STREAM_ACTIONS.get(action)
        if kind is None:
            return None
        return Advisory(
            kind=kind,
            stream=payload.get("stream") or stream or None,
            actor=None,
            own=False,
            subject=subject,
            time_ns=time_ns,
        )
    if subject != "$JS.EVENT.ADVISORY.API":
        return None
    request = payload.get("subject")
    if not isinstance(request, str):
        return None
    parts = request.split(".", 4)  # $JS API STREAM <OP> <name>
    if len(parts) != 5 or parts[:3] != ["$JS", "API", "STREAM"]:
        return None
    if parts[3] not in _API_STREAM_CHANGES:
        return None
    if "error" in _decoded(payload.get("response")):
        return None  # nothing changed
    # What the client sent, not the response's config: another update (ours) may already
    # have replaced the config by the time the server writes the response.
    config = _decoded(payload.get("request"))
    client = payload.get("client") or {}
    cid = client.get("id", client.get("cid"))
    cid = cid if isinstance(cid, int) else None
    client_name = client.get("name") or None
    user = client.get("user") or None
    if cid is not None and client_id is not None:
        own = cid == client_id and (client_name is None or client_name == name)
    else:
        own = client_name == name
    return Advisory(
        kind="api",
        stream=parts[4],
        actor=client_name or user,
        own=own,
        subject=request,
        time_ns=time_ns,
        client_id=cid,
        user=user,
        config=config if config and parts[3] != "DELETE" else None,
    )


def _decoded(text: Any) -> dict[str, Any]:
    """An API advisory's `request` or `response` (a JSON string) as a dict; {} when it is
    not one."""
    if not isinstance(text, str):
        return {}
    try:
        decoded = json.loads(text)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def split_servers(servers: Iterable[str]) -> list[str]:
    """Server URLs, each entry possibly a comma-separated list."""
    return [s.strip() for entry in servers for s in entry.split(",") if s.strip()]


def display_url(url: str) -> str:
    """A server URL for messages: password or token masked (the user name kept), scheme and
    port filled in."""
    raw = url if "://" in url else f"nats://{url}"
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        port = parts.port or 4222
    except ValueError:
        return redact_url(raw)
    if ":" in host:
        host = f"[{host}]"
    userinfo, at, _ = parts.netloc.rpartition("@")
    return redact_url(f"{parts.scheme}://{userinfo}{at}{host}:{port}")


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
    if isinstance(exc, _NoTls):
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


def tls_context(opts: ConnectOptions, servers: Sequence[str]) -> ssl.SSLContext | None:
    """The TLS context the options ask for (CA, client certificate), or None for plain TCP."""
    wanted = opts.tls_ca or opts.tls_cert or opts.tls_key
    if not wanted and not any(s.startswith("tls://") for s in servers):
        return None
    if opts.tls_key and not opts.tls_cert:
        raise ConnectFailed("cannot connect: a TLS key needs its certificate (tls_cert)")
    try:
        context = ssl.create_default_context(cafile=opts.tls_ca)
        if opts.tls_cert:
            context.load_cert_chain(opts.tls_cert, opts.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectFailed(f"cannot load TLS files: {connect_reason(exc, 0)}") from None
    return context


_JWT_MARK = "-----BEGIN NATS USER JWT-----"
_SEED_MARK = "-----BEGIN USER NKEY SEED-----"
_CREDS_SHAPE = (
    "a creds file (as `nsc generate creds` writes it) holds the user JWT on the line after "
    f"'{_JWT_MARK}' (eyJ...) and the user seed on the line after '{_SEED_MARK}' (SU...)"
)


def creds_problem(text: str) -> str | None:
    """What keeps `text` from being a NATS credentials file nats-py can use; None if nothing."""
    lines = [line.strip() for line in text.splitlines()]

    def after(mark: str) -> str | None:
        for i, line in enumerate(lines):
            if mark.strip("-") in line:
                return lines[i + 1] if i + 1 < len(lines) else ""
        return None

    jwt = after(_JWT_MARK)
    if jwt is None:
        return f"it has no '{_JWT_MARK}' line"
    if not jwt.startswith("eyJ") or jwt.count(".") != 2:
        return f"the line after '{_JWT_MARK}' is not a JWT"
    seed = after(_SEED_MARK)
    if seed is None:
        return f"it has no '{_SEED_MARK}' line"
    if not seed.startswith("SU"):
        return f"the line after '{_SEED_MARK}' is not a user seed"
    return None


def check_creds(path: str) -> None:
    """Refuse a file that is not a credentials file before nats-py trips over it (it would
    fail with a TypeError, or read past the end of the file forever)."""
    try:
        with open(path, "rb") as f:
            text = f.read(1 << 16).decode("utf-8", errors="replace")
    except OSError as exc:
        raise SettingsError(
            f"cannot read the creds file {path}: {(exc.strerror or str(exc)).lower()}"
        ) from None
    problem = creds_problem(text)
    if problem is not None:
        raise SettingsError(
            f"the creds file {path} is not a NATS credentials file: {problem}; {_CREDS_SHAPE}"
        )


class _TcpTransport(TcpTransport):
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


# --- connecting ----------------------------------------------------------------------------


class _GiveUp(Exception):
    """Raised from nats-py's error callback to end a connect after one try of each server."""


class _NoTls(nats.errors.Error):
    """TLS was asked for, but the server does not require it, so nats-py would go on in
    plaintext (it upgrades only when the server's INFO says `tls_required`)."""


class _Client(Client):
    """nats-py's client, refusing to continue in plaintext when TLS was asked for. The check
    runs on each server's INFO, before CONNECT carries any credential."""

    tls_wanted = False
    #: the server's INFO, with what later INFO messages (cluster changes) brought
    latest_info: Mapping[str, Any] = MappingProxyType({})

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        if self.tls_wanted and initial_connection and not info.get("tls_required"):
            raise _NoTls
        self.latest_info = {**({} if initial_connection else self.latest_info), **info}
        await super()._process_info(info, initial_connection)


async def connect(
    opts: ConnectOptions,
    *,
    reconnect: bool = False,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
) -> JetStream:
    """Connect to NATS, trying each server once; raise `ConnectFailed` with one line if none.

    `reconnect=False` (plan, apply): once connected, a lost connection is not retried.
    `reconnect=True` (watch): reconnect forever, calling `on_disconnected`/`on_reconnected`.
    """
    servers = split_servers(opts.servers)
    if not servers:
        raise ConnectFailed("cannot connect: no server given")
    if opts.creds:
        check_creds(opts.creds)
    tls = tls_context(opts, servers)
    holder: list[JetStream] = []

    def async_error(exc: Exception) -> None:
        if holder:
            holder[0]._async_error(exc)

    async def disconnected() -> None:
        if holder:
            holder[0]._interrupt_all()
        if on_disconnected is not None and holder and not holder[0].closing:
            await _run_callback("disconnected", on_disconnected)

    async def reconnected() -> None:
        if on_reconnected is not None and holder and not holder[0].closing:
            await _run_callback("reconnected", on_reconnected)

    attempts: list[tuple[str, str]] = []
    if reconnect:
        nc = await _open(opts, servers, tls, True, disconnected, reconnected, async_error,
                         attempts)
    else:
        nc = None
        for server in servers:
            nc = await _open(opts, [server], tls, False, disconnected, reconnected,
                             async_error, attempts)
            if nc is not None:
                break
    if nc is None:
        raise ConnectFailed(connect_failure(attempts))
    js = JetStream(nc, opts)
    holder.append(js)
    return js


async def _run_callback(what: str, callback: Callback) -> None:
    try:
        await callback()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("nats_callback_failed", callback=what)


async def _open(
    opts: ConnectOptions,
    servers: list[str],
    tls: ssl.SSLContext | None,
    reconnect: bool,
    disconnected: Callback,
    reconnected: Callback,
    async_error: Callable[[Exception], None],
    attempts: list[tuple[str, str]],
) -> Client | None:
    """One nats-py client over `servers`, each tried once in order; None if all failed."""
    failures: list[BaseException] = []
    connecting = True

    async def on_error(exc: Exception) -> None:
        if connecting:
            failures.append(exc)
            log.debug("nats_connect_attempt_failed", error=repr(exc))
            if len(failures) >= len(servers):
                raise _GiveUp
        else:
            log.debug("nats_async_error", error=repr(exc))
            async_error(exc)

    # nats-py annotates these as int but takes float seconds
    kwargs: dict[str, Any] = {
        "reconnect_time_wait": _RECONNECT_WAIT,
        "connect_timeout": opts.connect_timeout,
        # pings notice a server that stopped answering (frozen, cut off) within seconds
        "ping_interval": opts.ping_interval,
        "max_outstanding_pings": opts.max_outstanding_pings,
    }
    if tls is not None:
        kwargs["tls"] = tls
    if opts.creds:
        kwargs["user_credentials"] = opts.creds
    if opts.nkey:
        kwargs["nkeys_seed"] = opts.nkey
    if opts.user is not None:
        kwargs["user"] = opts.user
    if opts.password is not None:
        kwargs["password"] = opts.password
    if opts.token is not None:
        kwargs["token"] = opts.token

    nc = _Client()
    nc.tls_wanted = tls is not None
    if not any(s.startswith(("ws://", "wss://")) for s in servers):
        # nats-py creates its transport only when it has none; it keeps this one
        nc._transport = _TcpTransport()
    try:
        await nc.connect(
            servers=servers,
            name=opts.name,
            error_cb=on_error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            allow_reconnect=reconnect,
            max_reconnect_attempts=-1 if reconnect else 1,
            dont_randomize=True,  # so that the n-th failure is the n-th server
            **kwargs,
        )
    except asyncio.CancelledError:
        await _discard(nc)
        raise
    except Exception as exc:  # _GiveUp, or what nats-py raised itself
        await _discard(nc)
        if not isinstance(exc, _GiveUp) and len(failures) < len(servers):
            failures.append(exc)
        for server, failure in zip(servers, failures, strict=False):
            attempts.append((display_url(server), connect_reason(failure, opts.connect_timeout)))
        return None
    connecting = False
    return nc


async def _discard(nc: Client) -> None:
    """Close a client whose connect failed. After a failed TLS upgrade the socket is already
    closed but nats-py's close() waits forever on the pre-TLS writer: bound the wait."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), _DISCARD_WAIT)


# --- the API -------------------------------------------------------------------------------


class AdvisoryWatch:
    """A running advisory subscription; `unsubscribe()` ends it."""

    def __init__(self, subs: list[NatsSubscription], task: asyncio.Task[None] | None) -> None:
        self._subs = subs
        self._task = task

    async def unsubscribe(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()
        self._subs = []
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        if task is not asyncio.current_task():  # not unsubscribing from inside the handler
            with contextlib.suppress(asyncio.CancelledError):
                await task


class JetStream:
    """A connection to JetStream that speaks the JSON API. Create it with `connect()`."""

    def __init__(self, nc: Client, opts: ConnectOptions) -> None:
        self._nc = nc
        self._opts = opts
        self.client_name = opts.name
        self.closing = False
        self._watches: list[AdvisoryWatch] = []
        #: requests waiting for an answer, oldest first: subject and what ends the wait early
        self._pending: dict[int, tuple[str, asyncio.Future[JetStreamError]]] = {}
        self._ids = itertools.count()
        #: set when the server refused our reply subscription: no answer can ever arrive
        self._no_replies: str | None = None

    # connection

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

    async def __aenter__(self) -> JetStream:
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

    # requests

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
        try:
            response = json.loads(reply.data)
        except ValueError:
            raise JetStreamError(
                f"{subject}: the server's answer is not JSON: {reply.data[:200]!r}"
            ) from None
        if not isinstance(response, dict):
            raise JetStreamError(f"{subject}: unexpected answer: {reply.data[:200]!r}")
        error = response.get("error")
        if error is not None:
            raise ApiError(
                int(error.get("code", 0)),
                int(error.get("err_code", 0)),
                str(error.get("description", "unknown error")),
                stream=stream,
            )
        return response

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
        interrupt: asyncio.Future[JetStreamError] = asyncio.get_running_loop().create_future()
        key = next(self._ids)
        self._pending[key] = (subject, interrupt)
        request = asyncio.ensure_future(
            self._nc.request(subject, data, timeout=timeout, headers=headers)
        )
        try:
            await asyncio.wait((request, interrupt), return_when=asyncio.FIRST_COMPLETED)
            if not request.done():
                error = interrupt.result()
                if isinstance(error, ConnectionLost):
                    raise ConnectionLost(f"{where}{error}", sent=error.sent)
                raise type(error)(f"{where}{error}")
            return request.result()
        except asyncio.CancelledError:
            raise
        except JetStreamError:
            raise
        except nats.errors.ConnectionClosedError:
            # nats-py refuses to publish on a closed connection: nothing was sent
            raise ConnectionLost(
                f"{where}{subject}: not sent: the connection to {self.url} was lost",
                sent=False) from None
        except nats.errors.NoRespondersError:
            if subject.startswith(f"{API}."):
                raise JetStreamError(
                    f"JetStream is not enabled on {self.url} (no responders on {API}): "
                    "start nats-server with -js, or enable JetStream for this account"
                ) from None
            raise JetStreamError(
                f"no stream on {self.url} takes subject {subject} (no responders)"
            ) from None
        except TimeoutError:
            if interrupt.done() or not self._nc.is_connected:
                # nats-py may give up on a request as the connection drops, before we hear
                # of the drop: that is a lost connection, not a slow server
                raise ConnectionLost(f"{where}{self._lost_in_flight(subject)}",
                                     sent=True) from None
            raise RequestTimeout(_timeout_message(subject, timeout, stream)) from None
        except (nats.errors.Error, OSError) as exc:
            reason = connect_reason(exc, timeout)
            raise JetStreamError(f"{subject} on {self.url}: {reason}") from None
        finally:
            del self._pending[key]
            if not request.done():
                request.cancel()

    def _async_error(self, exc: Exception) -> None:
        """An error the server sent outside any reply: a permissions violation fails the
        request it concerns (nats-py would leave it waiting for its timeout)."""
        found = _VIOLATION.search(str(exc))
        if found is None:
            return
        verb, denied = found[1].lower(), found[2].lower()  # nats-py lowercases the message
        if verb == "publish":
            # the server refuses publishes in the order they came: the oldest one matches
            for subject, interrupt in self._pending.values():
                if subject.lower() == denied and not interrupt.done():
                    interrupt.set_result(PermissionDenied(
                        f"this user may not publish to {subject} (the server reported a "
                        "permissions violation): allow it in the user's publish permissions; "
                        "the reconciler publishes to $JS.API.>"
                    ))
                    return
            return
        if denied.startswith("_inbox."):
            self._no_replies = (
                "this user may not subscribe to _INBOX.> (the server reported a permissions "
                "violation), so no answer can reach us: allow _INBOX.> in the user's "
                "subscribe permissions"
            )
            for _, interrupt in self._pending.values():
                if not interrupt.done():
                    interrupt.set_result(PermissionDenied(self._no_replies))

    def _interrupt_all(self) -> None:
        """The connection is gone: no request in flight will be answered."""
        for subject, interrupt in self._pending.values():
            if not interrupt.done():
                interrupt.set_result(ConnectionLost(self._lost_in_flight(subject), sent=True))

    def _lost_in_flight(self, subject: str) -> str:
        return (f"{subject} on {self.url}: the connection was lost before the server answered "
                "(the request may or may not have been carried out)")

    # streams

    async def list_streams(self) -> Listing:
        """Every stream with its raw config and state, across all pages of STREAM.LIST.

        In a cluster the server asks each stream's leader and waits 4 s at most; a stream
        whose leader did not answer is named in the page's `missing` list (an offline one is
        also in `streams`, with the config the cluster assigned, not the live one). Such
        streams come back as `unreadable`, with the reason: nothing about them can be trusted.
        The page's `offset` counts both kinds.
        """
        found: dict[str, LiveStream] = {}
        unreadable: dict[str, str] = {}
        offset = 0
        while True:
            page = await self._request(
                f"{API}.STREAM.LIST", {"offset": offset}, extra_wait=_LIST_GATHER
            )
            infos = [live_stream(info) for info in page.get("streams") or []]
            listed = {stream.name for stream in infos}
            offline = page.get("offline") or {}
            missing = [str(name) for name in page.get("missing") or []]
            for stream in infos:
                found[stream.name] = stream
            for name in missing:
                unreadable[name] = str(offline.get(name) or "") or (
                    _ALL_OFFLINE if name in listed else _NO_LEADER
                )
            on_page = len(listed | set(missing))
            offset += on_page
            if not on_page or offset >= int(page.get("total", 0)):
                break
        for name in unreadable:
            found.pop(name, None)
        return Listing(tuple(found.values()), unreadable)

    def topology(self) -> Topology:
        """The cluster the connected server is in and how many servers it has, from the
        server's INFO: no `cluster` there means a single server; in a cluster, the client
        URLs it advertises (its own and every other server's: `connect_urls`) count the
        servers. Unknown (None) when it advertises none (`no_advertise`)."""
        info = getattr(self._nc, "latest_info", None) or self._nc._server_info
        cluster = info.get("cluster") or None
        if cluster is None:
            return Topology(None, 1)
        urls = {str(u) for u in info.get("connect_urls") or []}
        return Topology(str(cluster), len(urls) or None)

    async def stream_info(self, name: str) -> LiveStream | None:
        """The stream's raw config and state, or None when there is no such stream."""
        try:
            info = await self._request(f"{API}.STREAM.INFO.{name}", stream=name)
        except ApiError as exc:
            if exc.err_code == _STREAM_NOT_FOUND:
                return None
            raise
        return live_stream(info)

    async def subject_counts(self, name: str, filter: str = ">") -> dict[str, int]:
        """Messages per subject matching `filter`, across all pages of STREAM.INFO."""
        counts: dict[str, int] = {}
        while True:
            body = {"subjects_filter": filter, "offset": len(counts)}
            info = await self._request(f"{API}.STREAM.INFO.{name}", body, stream=name)
            page = (info.get("state") or {}).get("subjects") or {}
            before = len(counts)
            counts.update({str(k): int(v) for k, v in page.items()})
            total = int(info.get("total", 0))
            if len(counts) == before or len(counts) >= total:
                return counts

    async def create_stream(self, config: Config) -> LiveStream:
        """Create the stream; `pedantic` so the server rejects what it would adjust."""
        name = _name_of(config)
        body = {**config, "pedantic": True}
        return live_stream(await self._request(f"{API}.STREAM.CREATE.{name}", body, stream=name))

    async def update_stream(self, config: Config) -> LiveStream:
        """Replace the stream's whole configuration (fields left out are reset)."""
        name = _name_of(config)
        body = {**config, "pedantic": True}
        return live_stream(await self._request(f"{API}.STREAM.UPDATE.{name}", body, stream=name))

    async def delete_stream(self, name: str) -> None:
        await self._request(f"{API}.STREAM.DELETE.{name}", stream=name)

    # messages

    async def read_messages(self, name: str, start_seq: int, limit: int) -> list[StoredMessage]:
        """Up to `limit` stored messages from `start_seq` on, oldest first."""
        messages, _ = await self._read(name, start_seq, limit)
        return messages

    async def sample_messages(
        self, live: LiveStream, *, budget: int = 100_000, subject_counts: bool = False
    ) -> MessageSample:
        """The stream's messages from the oldest on, up to `budget` of them (to its last_seq)."""
        state = live.state
        messages: list[StoredMessage] = []
        complete = True
        if state.messages > 0:
            messages, ended = await self._read(
                live.name, state.first_seq, budget, stop_seq=state.last_seq
            )
            complete = ended or bool(messages and messages[-1].seq >= state.last_seq)
        counts = await self.subject_counts(live.name) if subject_counts else None
        return MessageSample(
            messages=tuple(messages),
            complete=complete,
            subject_counts=counts,
            now_ns=time.time_ns(),
        )

    async def _read(
        self, name: str, start_seq: int, limit: int, *, stop_seq: int | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """Messages from `start_seq` (to `stop_seq`), at most `limit`; and whether it ended.

        A window of MSG.GET requests by consecutive sequence, each answering the first message
        at or after its sequence, is in flight at once: their union is every message from the
        window's start to the highest one answered, whatever gaps deletes left.
        """
        out: list[StoredMessage] = []
        seq = max(start_seq, 1)
        while len(out) < limit:
            if stop_seq is not None and seq > stop_seq:
                return out, True
            size = min(_READ_WINDOW, limit - len(out))
            if stop_seq is not None:
                size = min(size, stop_seq - seq + 1)
            got = await asyncio.gather(*(self._next_message(name, seq + i) for i in range(size)))
            unique = {m.seq: m for m in got if m is not None}
            if stop_seq is not None:
                unique = {s: m for s, m in unique.items() if s <= stop_seq}
            for s in sorted(unique)[: limit - len(out)]:
                out.append(unique[s])
            if None in got or not unique:
                return out, True
            seq = max(unique) + 1
        return out, False

    async def _next_message(self, name: str, seq: int) -> StoredMessage | None:
        subject = f"{API}.STREAM.MSG.GET.{name}"
        try:
            reply = await self._request(subject, {"seq": seq, "next_by_subj": ">"}, stream=name)
        except ApiError as exc:
            if exc.err_code == _NO_MESSAGE:
                return None
            raise
        return stored_message(reply["message"])

    async def publish(
        self, subject: str, payload: bytes = b"", headers: dict[str, str] | None = None
    ) -> int:
        """Publish to a stream and wait for its acknowledgement; the stored sequence."""
        reply = await self._send(subject, payload, headers=headers)
        try:
            ack = json.loads(reply.data)
        except ValueError:
            raise JetStreamError(f"publish to {subject}: not a JetStream ack") from None
        error = ack.get("error") if isinstance(ack, dict) else None
        if error is not None:
            raise ApiError(
                int(error.get("code", 0)),
                int(error.get("err_code", 0)),
                str(error.get("description", "unknown error")),
                stream=ack.get("stream"),
            )
        if not isinstance(ack, dict) or "seq" not in ack:
            raise JetStreamError(f"publish to {subject}: not a JetStream ack: {reply.data!r}")
        return int(ack["seq"])

    # key-value buckets (the JetStream KV layout, spoken over the plain API)

    async def ensure_kv_bucket(self, bucket: str, *, replicas: int = 1) -> None:
        """Create the bucket `bucket` (stream `KV_<bucket>`) unless it exists. Two processes
        creating it at once both succeed: the server accepts an identical create."""
        stream = f"KV_{bucket}"
        if await self.stream_info(stream) is not None:
            return
        config = {
            "name": stream,
            "subjects": [f"$KV.{bucket}.>"],
            "retention": "limits",
            "storage": "file",
            "num_replicas": replicas,
            "max_msgs_per_subject": 1,
            "discard": "new",
            "allow_rollup_hdrs": True,
            "deny_delete": True,
            "allow_direct": True,
            "duplicate_window": 120_000_000_000,
        }
        await self._request(f"{API}.STREAM.CREATE.{stream}", config, stream=stream)

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None:
        """The latest value of `key`, from the stream leader (not a possibly stale replica),
        or None when the key has never been written."""
        stream = f"KV_{bucket}"
        try:
            reply = await self._request(
                f"{API}.STREAM.MSG.GET.{stream}", {"last_by_subj": f"$KV.{bucket}.{key}"},
                stream=stream)
        except ApiError as exc:
            if exc.err_code == _NO_MESSAGE:
                return None
            raise
        message = reply["message"]
        try:
            value = base64.b64decode(message.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            raise JetStreamError(f"{stream}: the value of {key} is not base64") from None
        return KvEntry(key=key, revision=int(message["seq"]), value=value)

    async def kv_put(self, bucket: str, key: str, value: bytes, *, revision: int) -> int:
        """Write `key` only if its latest revision is still `revision` (0: never written);
        the new revision. Someone else's write in between is `ApiError` with err_code 10071
        (wrong last sequence)."""
        headers = {"Nats-Expected-Last-Subject-Sequence": str(revision)}
        return await self.publish(f"$KV.{bucket}.{key}", value, headers=headers)

    async def watch_subject(self, subject: str, handler: Callable[[], None]) -> AdvisoryWatch:
        """Call `handler` (no arguments) whenever a message arrives on `subject`: a wake-up
        only, at most once like all core NATS."""

        async def wake(_: Msg) -> None:
            handler()

        try:
            sub = await self._nc.subscribe(subject, cb=wake)
        except asyncio.CancelledError:
            raise
        except (nats.errors.Error, OSError) as exc:
            raise JetStreamError(
                f"cannot subscribe to {subject} on {self.url}: "
                f"{connect_reason(exc, self._opts.request_timeout)}"
            ) from None
        watch = AdvisoryWatch([sub], None)
        self._watches.append(watch)
        return watch

    # advisories

    async def watch_advisories(
        self, handler: Callable[[Advisory], Awaitable[None]]
    ) -> AdvisoryWatch:
        """Call `handler` with every stream-change advisory, one at a time, in arrival order.

        Advisories are core NATS: at most once, lost while disconnected. A failing handler is
        logged and the watch goes on.
        """
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def enqueue(msg: Msg) -> None:
            queue.put_nowait(msg)

        async def deliver() -> None:
            while True:
                msg = await queue.get()
                advisory = self._advisory(msg)
                if advisory is None:
                    continue
                try:
                    await handler(advisory)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("advisory_handler_failed", subject=msg.subject)

        subs: list[NatsSubscription] = []
        try:
            for subject in ADVISORY_SUBJECTS:
                subs.append(await self._nc.subscribe(subject, cb=enqueue))
            await self._nc.flush(timeout=max(1, int(self._opts.request_timeout)))
        except asyncio.CancelledError:
            raise
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            for sub in subs:
                with contextlib.suppress(nats.errors.Error, OSError):
                    await sub.unsubscribe()
            raise JetStreamError(
                f"cannot subscribe to advisories on {self.url}: "
                f"{connect_reason(exc, self._opts.request_timeout)}"
            ) from None
        watch = AdvisoryWatch(subs, asyncio.create_task(deliver(), name="advisories"))
        self._watches.append(watch)
        return watch

    def _advisory(self, msg: Msg) -> Advisory | None:
        try:
            payload = json.loads(msg.data)
            if not isinstance(payload, dict):
                return None
            return parse_advisory(
                msg.subject, payload, client_id=self.client_id, name=self.client_name
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.debug("advisory_malformed", subject=msg.subject, error=repr(exc))
            return None


def _name_of(config: Config) -> str:
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a stream configuration needs a name")
    return name


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
