"""Server URLs as people write them: lists split, scheme and port filled in, shown masked.

Pure: the CLI's settings, the embedded server and the JetStream adapter all read URLs here.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from reconciler.redact import redact_url

DEFAULT_PORT = 4222
"""The NATS client port, when a URL names none."""


def split_servers(servers: Iterable[str]) -> list[str]:
    """Server URLs, each entry possibly a comma-separated list."""
    return [s.strip() for entry in servers for s in entry.split(",") if s.strip()]


def parse_server(url: str) -> SplitResult:
    """A server URL split into its parts; no scheme means `nats://`. Reading `.port` of the
    result raises ValueError for a port that is not a number."""
    return urlsplit(url if "://" in url else f"nats://{url}")


def display_url(url: str) -> str:
    """A server URL for messages: password or token masked (the user name kept), scheme and
    port filled in."""
    raw = url if "://" in url else f"nats://{url}"
    try:
        parts = parse_server(raw)
        host = parts.hostname or ""
        port = parts.port or DEFAULT_PORT
    except ValueError:
        return redact_url(raw)
    if ":" in host:
        host = f"[{host}]"
    userinfo, at, _ = parts.netloc.rpartition("@")
    return redact_url(f"{parts.scheme}://{userinfo}{at}{host}:{port}")
