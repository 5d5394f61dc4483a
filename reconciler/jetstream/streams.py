"""Streams over the JSON API: list, info, per-subject counts, create, update and delete."""

from __future__ import annotations

from reconciler.errors import ApiError
from reconciler.jetstream.requests import Connection
from reconciler.jetstream.wire import STREAM_NOT_FOUND, live_stream, stream_name
from reconciler.model import Config, Listing, LiveStream, ServerIdentity, Topology

#: why STREAM.LIST names a stream as `missing` (the server waits 4 s for each stream leader)
_NO_LEADER = (
    "its leader did not answer within the server's 4 s (the node holding it may be down, "
    "or a leader election is under way)"
)
_ALL_OFFLINE = "all of its replicas are offline"
#: seconds a clustered server waits for stream leaders before answering STREAM.LIST
_LIST_GATHER = 4.0


class Streams(Connection):
    """The stream part of the API; `JetStream` adds messages, key-value and watches."""

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
                f"{self._api}.STREAM.LIST", {"offset": offset}, extra_wait=_LIST_GATHER
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

    def server_identity(self) -> ServerIdentity:
        """Which server this connection is on: its URL (no credentials), name and version."""
        info = getattr(self._nc, "latest_info", None) or self._nc._server_info
        name = info.get("server_name") or info.get("server_id") or ""
        return ServerIdentity(self.url, str(name), str(info.get("version") or ""))

    async def stream_info(self, name: str) -> LiveStream | None:
        """The stream's raw config and state, or None when there is no such stream."""
        try:
            info = await self._request(f"{self._api}.STREAM.INFO.{name}", stream=name)
        except ApiError as exc:
            if exc.err_code == STREAM_NOT_FOUND:
                return None
            raise
        return live_stream(info)

    async def subject_counts(self, name: str, filter: str = ">") -> dict[str, int]:
        """Messages per subject matching `filter`, across all pages of STREAM.INFO."""
        counts: dict[str, int] = {}
        while True:
            body = {"subjects_filter": filter, "offset": len(counts)}
            info = await self._request(f"{self._api}.STREAM.INFO.{name}", body, stream=name)
            page = (info.get("state") or {}).get("subjects") or {}
            before = len(counts)
            counts.update({str(k): int(v) for k, v in page.items()})
            total = int(info.get("total", 0))
            if len(counts) == before or len(counts) >= total:
                return counts

    async def create_stream(self, config: Config) -> LiveStream:
        """Create the stream; `pedantic` so the server rejects what it would adjust."""
        name = stream_name(config)
        body = {**config, "pedantic": True}
        subject = f"{self._api}.STREAM.CREATE.{name}"
        return live_stream(await self._request(subject, body, stream=name))

    async def update_stream(self, config: Config) -> LiveStream:
        """Replace the stream's whole configuration (fields left out are reset)."""
        name = stream_name(config)
        body = {**config, "pedantic": True}
        subject = f"{self._api}.STREAM.UPDATE.{name}"
        return live_stream(await self._request(subject, body, stream=name))

    async def delete_stream(self, name: str) -> None:
        """Delete the stream and every message in it."""
        await self._request(f"{self._api}.STREAM.DELETE.{name}", stream=name)

