"""The exception tree. Vendor errors (nats-py, YAML) are translated into these in one place each.

    ReconcilerError
     ├── ManifestError          manifests failed validation; carries every Problem found
     ├── SettingsError          a flag or environment variable has a bad value
     ├── EmbeddedServerError    `watch --embedded` cannot run its own server (port or
     │                          directory taken, or the server exited)
     ├── LeaseHeld              another reconciler holds the lease (apply without --force)
     ├── ExportRefused          export wrote nothing: files in the way, streams not found
     └── JetStreamError         anything that went wrong talking to the server
          ├── ConnectFailed     the server could not be reached (or refused our credentials)
          ├── ConnectionLost    the connection went away; `sent`: whether the request had
          │                     been sent (then it may or may not have been carried out)
          ├── RequestTimeout    no answer to an API request in time
          ├── PermissionDenied  the server refused to let this user publish or subscribe
          ├── ApiError          the server answered with an error (status, err_code, words)
          └── LeaseLost         a write not made: this process does not hold the lease
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.model import Problem


class ReconcilerError(Exception):
    """Base of every error this package raises on purpose."""


class ManifestError(ReconcilerError):
    """One or more manifests are invalid. `problems` lists every one, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SettingsError(ReconcilerError):
    """A command-line flag or environment variable has a value we cannot use."""


class EmbeddedServerError(ReconcilerError):
    """The embedded nats-server cannot start as ours, or it stopped by itself."""


class LeaseHeld(ReconcilerError):
    """Another reconciler holds the lease, so this one may not write."""


class ExportRefused(ReconcilerError):
    """`export` wrote nothing: a file it would write exists, or a stream named is not there."""


class JetStreamError(ReconcilerError):
    """Talking to JetStream failed."""


class LeaseLost(JetStreamError):
    """A stream write was not sent: this process does not hold the lease (any more)."""


class ConnectFailed(JetStreamError):
    """The NATS server could not be reached or refused the connection."""


class ConnectionLost(JetStreamError):
    """The connection to the server was lost. `sent`: the request had been sent and its
    answer never came, so it may or may not have been carried out; otherwise it was not
    sent at all."""

    def __init__(self, message: str, *, sent: bool) -> None:
        self.sent = sent
        super().__init__(message)


class RequestTimeout(JetStreamError):
    """The server did not answer an API request in time."""


class PermissionDenied(JetStreamError):
    """The server reported a permissions violation for a subject this request needed."""


# What a person can do about the server's error codes (JSErrCode values of nats-server).
_HINTS: dict[int, str] = {
    10039: "enable JetStream for this account in the server configuration",
    10047: "the server's file storage limit is reached: raise max_file_store or free space",
    10028: "the server's memory storage limit is reached: raise max_memory_store",
    10027: "the account's stream limit is reached: raise the account's max streams",
    10113: "this account requires max_bytes on every stream: set max_bytes in the manifest",
    10122: "max_bytes is above the account's per-stream limit: lower max_bytes",
    10065: "another stream on the server already takes one of these subjects",
    10059: "the stream does not exist on the server",
    10058: "a stream with this name exists with a different configuration",
    10055: "a mirror cannot be added to or changed on an existing stream",
    10056: "a stream cannot be renamed",
    10074: "more replicas than the cluster has servers: lower num_replicas",
    10069: "an existing consumer exceeds the new consumer_limits",
    10157: "the server would have adjusted this configuration; write the adjusted value",
    10025: "the server did not accept the request as valid JSON for this API",
}


class ApiError(JetStreamError):
    """The JetStream API answered a request with an error."""

    def __init__(self, code: int, err_code: int, description: str, *, stream: str | None = None):
        self.code = code
        self.err_code = err_code
        self.description = description
        self.stream = stream
        super().__init__(self.message)

    @property
    def hint(self) -> str | None:
        return _HINTS.get(self.err_code)

    @property
    def message(self) -> str:
        where = f"stream {self.stream}: " if self.stream else ""
        text = f"{where}{self.description} (status {self.code}, error {self.err_code})"
        return f"{text}; {self.hint}" if self.hint else text
