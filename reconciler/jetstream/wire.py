"""The JetStream JSON API's wire types as ours: pure functions, no connection.

Every answer the server sends (stream info, stored message, API error, publish ack,
advisory) is turned into a `reconciler.model` value or a `reconciler.errors` error here.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Mapping
from typing import Any

from reconciler.errors import ApiError, JetStreamError
from reconciler.model import Advisory, Config, LiveStream, StoredMessage, StreamState
from reconciler.units import parse_timestamp

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
_API_ADVISORY = "$JS.EVENT.ADVISORY.API"
_STREAM_ACTIONS = {"CREATED": "created", "UPDATED": "updated", "DELETED": "deleted"}
_API_STREAM_CHANGES = ("CREATE", "UPDATE", "DELETE")

#: err_code of MSG.GET when no message is at or after the requested sequence
NO_MESSAGE = 10037
STREAM_NOT_FOUND = 10059
#: the header that makes a message a subject delete marker
_MARKER_HEADER = b"\r\nNats-Marker-Reason:"


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


#: fields whose value is one of a few words: each word is kept once, however many streams
_WORDS = ("retention", "storage", "discard", "compression", "persist_mode")


def live_stream(info: Mapping[str, Any]) -> LiveStream:
    """A `StreamInfo` JSON object (from INFO, LIST, CREATE or UPDATE) as our `LiveStream`.

    The words of enumerated fields and the metadata's values are shared (`sys.intern`)
    rather than held once per stream: 3.5 MB at 10,000 streams."""
    config = info["config"]
    for key in _WORDS:
        value = config.get(key)
        if type(value) is str:
            config[key] = sys.intern(value)
    metadata = config.get("metadata")
    if type(metadata) is dict:
        for key, value in metadata.items():
            if type(value) is str:
                metadata[key] = sys.intern(value)
    return LiveStream(name=config["name"], config=config, state=stream_state(info.get("state")))


def _b64_len(data: str | None) -> int:
    if not data:
        return 0
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        # not expected from the server; the padding-free formula is close enough
        return len(data) * 3 // 4


def _b64_bytes(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return b""


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


def api_error(error: Mapping[str, Any], stream: str | None) -> ApiError:
    """The `error` object of an API answer (or a publish ack) as our `ApiError`."""
    return ApiError(
        int(error.get("code", 0)),
        int(error.get("err_code", 0)),
        str(error.get("description", "unknown error")),
        stream=stream,
    )


def api_response(subject: str, data: bytes, stream: str | None) -> dict[str, Any]:
    """The decoded answer to an API request on `subject`; `ApiError` when it is an error."""
    try:
        response = json.loads(data)
    except ValueError:
        raise JetStreamError(
            f"{subject}: the server's answer is not JSON: {data[:200]!r}"
        ) from None
    if not isinstance(response, dict):
        raise JetStreamError(f"{subject}: unexpected answer: {data[:200]!r}")
    error = response.get("error")
    if error is not None:
        raise api_error(error, stream)
    return response


def ack_sequence(subject: str, data: bytes) -> int:
    """The stored sequence a JetStream publish ack names; `ApiError` when the stream
    refused the message."""
    try:
        ack = json.loads(data)
    except ValueError:
        raise JetStreamError(f"publish to {subject}: not a JetStream ack") from None
    error = ack.get("error") if isinstance(ack, dict) else None
    if error is not None:
        raise api_error(error, ack.get("stream"))
    if not isinstance(ack, dict) or "seq" not in ack:
        raise JetStreamError(f"publish to {subject}: not a JetStream ack: {data!r}")
    return int(ack["seq"])


def stream_name(config: Config) -> str:
    """The stream a configuration is for."""
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a stream configuration needs a name")
    return name


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
    if subject == _API_ADVISORY:
        return _api_advisory(payload, time_ns, client_id=client_id, name=name)
    return None


def _api_advisory(
    payload: Mapping[str, Any], time_ns: int, *, client_id: int | None, name: str
) -> Advisory | None:
    """An API audit advisory of a stream create, update or delete that went through."""
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
    if client.get("kind") == "Leafnode":
        # a request that came over a leaf node connection (another JetStream domain's
        # client): the server names the connection, not who sent it, so this says no more
        # than the stream advisory does (and our own would pass for someone else's)
        return None
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
