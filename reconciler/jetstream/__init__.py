"""The JetStream adapter: the one package that speaks NATS.

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

    wire.py        the API's JSON as our types (pure): streams, messages, errors, advisories
    transport.py   nats-py's client and transport as we use them; why a connect failed
    security.py    TLS context and creds file checks
    connection.py  connect(): each server once, or forever in watch mode
    requests.py    Connection: one API request, every failure as our error
    streams.py     Streams(Connection): list, info, create, update
    client.py      JetStream(Streams): message samples, key-value, watches
    advisories.py  advisory and wake-up subscriptions
    protocol.py    what the rest of the reconciler needs of it, for fakes
"""

from typing import TYPE_CHECKING

from reconciler.jetstream.advisories import AdvisoryWatch
from reconciler.jetstream.client import JetStream
from reconciler.jetstream.connection import connect, connect_as
from reconciler.jetstream.protocol import (
    Adapter,
    AdvisorySource,
    JetStreamAPI,
    LeaseStore,
    StreamWriter,
    Subscription,
)
from reconciler.jetstream.security import check_creds, creds_problem, tls_context
from reconciler.jetstream.transport import connect_failure, connect_reason
from reconciler.jetstream.wire import (
    ADVISORY_SUBJECTS,
    API,
    live_stream,
    parse_advisory,
    parse_time_ns,
    stored_message,
    stream_state,
)
from reconciler.urls import display_url, split_servers

if TYPE_CHECKING:

    def _implements(js: JetStream) -> Adapter:
        """mypy checks here that `JetStream` implements the whole protocol."""
        return js


__all__ = [
    "ADVISORY_SUBJECTS",
    "API",
    "Adapter",
    "AdvisorySource",
    "AdvisoryWatch",
    "JetStream",
    "JetStreamAPI",
    "LeaseStore",
    "StreamWriter",
    "Subscription",
    "check_creds",
    "connect",
    "connect_as",
    "connect_failure",
    "connect_reason",
    "creds_problem",
    "display_url",
    "live_stream",
    "parse_advisory",
    "parse_time_ns",
    "split_servers",
    "stored_message",
    "stream_state",
    "tls_context",
]
