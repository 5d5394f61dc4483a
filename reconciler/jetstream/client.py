"""`JetStream`: the client every command and the daemon use. Create it with `connect()`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable

from reconciler.errors import ApiError, JetStreamError
from reconciler.jetstream import advisories
from reconciler.jetstream.advisories import AdvisoryHandler, AdvisoryWatch
from reconciler.jetstream.streams import Streams
from reconciler.jetstream.wire import API, NO_MESSAGE, stored_message
from reconciler.model import KvEntry, LiveStream, MessageSample, StoredMessage

#: MSG.GET requests in flight per stream while reading messages
_READ_WINDOW = 32


class JetStream(Streams):
    """A connection to JetStream that speaks the JSON API: streams (`Streams`), message
    samples for impact, the key-value layout the lease uses, and advisory watches."""

    # messages

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
        subject = f"{self._api}.STREAM.MSG.GET.{name}"
        try:
            reply = await self._request(subject, {"seq": seq, "next_by_subj": ">"}, stream=name)
        except ApiError as exc:
            if exc.err_code == NO_MESSAGE:
                return None
            raise
        return stored_message(reply["message"])

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
        await self._request(f"{self._api}.STREAM.CREATE.{stream}", config, stream=stream)

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None:
        """The latest value of `key`, from the stream leader (not a possibly stale replica),
        or None when the key has never been written."""
        stream = f"KV_{bucket}"
        try:
            reply = await self._request(
                f"{self._api}.STREAM.MSG.GET.{stream}", {"last_by_subj": f"$KV.{bucket}.{key}"},
                stream=stream)
        except ApiError as exc:
            if exc.err_code == NO_MESSAGE:
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
        # under a domain or an import the key is reached through the API prefix, as the
        # JetStream clients do (the server maps `$JS.<domain>.API.$KV.>` to `$KV.>`)
        prefix = "" if self._api == API else f"{self._api}."
        return await self._publish(f"{prefix}$KV.{bucket}.{key}", value, headers=headers)

    # watches (stopped by `close()`)

    async def watch_subject(self, subject: str, handler: Callable[[], None]) -> AdvisoryWatch:
        """Call `handler` (no arguments) whenever a message arrives on `subject`: a wake-up
        only, at most once like all core NATS."""
        watch = await advisories.watch_subject(
            self._nc, subject, handler, timeout=self._opts.request_timeout, url=self.url)
        self._watches.append(watch)
        return watch

    def _advisory_domain(self) -> str | object | None:
        """The domain whose advisories concern us: they come on the same subjects from every
        domain this account reaches (a leaf node's too), each naming its own. Under an API
        prefix the domain is unknown: every advisory is taken (each is only a trigger)."""
        if self._opts.js_domain:
            return self._opts.js_domain
        if self._opts.api_prefix:
            return advisories.ANY_DOMAIN
        info = getattr(self._nc, "latest_info", None) or self._nc._server_info
        return str(info.get("domain") or "") or None

    async def watch_advisories(self, handler: AdvisoryHandler) -> AdvisoryWatch:
        """Call `handler` with every stream-change advisory, one at a time, in arrival order.

        Advisories are core NATS: at most once, lost while disconnected. A failing handler is
        logged and the watch goes on.
        """
        watch = await advisories.watch_advisories(
            self._nc, handler, lambda: (self.client_id, self.client_name),
            timeout=self._opts.request_timeout, url=self.url, domain=self._advisory_domain())
        self._watches.append(watch)
        return watch
