"""Which streams are ours: ownership is recorded in each stream's own `metadata`, where it
survives restarts and other tools can see it.

Two keys of our own, under a prefix that manifests may not use (validation refuses it):
`jetstream-reconciler/owner` names the owner (the `--owner` setting: reconcilers with
different manifest sets in one account take different owners), and
`jetstream-reconciler/manifest` the manifest file that declared the stream when it was last
written (kept for people, never compared). Both are written with every create and update of
ours, and never show up as drift: the canonical form leaves them out.

A stream is ours when its owner key names our owner: we created it, or a manifest declared it
and an apply recorded ownership (adoption). Only streams that are ours are ever pruned.
"""

from __future__ import annotations

import re
from typing import Any, Final, cast

from reconciler.fields.stream_config import StreamConfig
from reconciler.model import Config

PREFIX: Final = "jetstream-reconciler/"
OWNER_KEY: Final = PREFIX + "owner"
MANIFEST_KEY: Final = PREFIX + "manifest"
DEFAULT_OWNER: Final = "default"

RESERVED_BYTES: Final = 1024
"""Metadata bytes kept for the two keys, so that a manifest's own metadata plus ours always
fits the server's limit: validation allows a manifest this much less."""
MAX_OWNER_LEN: Final = 64
_OWNER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MANIFEST_ROOM: Final = RESERVED_BYTES - len(OWNER_KEY) - MAX_OWNER_LEN - len(MANIFEST_KEY)


def valid_owner(name: str) -> bool:
    """An owner name: 1 to 64 letters, digits, '_', '-' or '.'."""
    return bool(_OWNER.match(name))


def is_reserved(key: str) -> bool:
    """A metadata key of ours, which a manifest may not set."""
    return key.startswith(PREFIX)


def owner_of(config: Config) -> str | None:
    """The owner recorded in a live configuration; None when the stream is nobody's."""
    metadata = config.get("metadata") or {}
    owner = metadata.get(OWNER_KEY) if isinstance(metadata, dict) else None
    return str(owner) if owner else None


def manifest_of(config: Config) -> str | None:
    """The manifest file recorded when the stream was last written by a reconciler."""
    metadata = config.get("metadata") or {}
    manifest = metadata.get(MANIFEST_KEY) if isinstance(metadata, dict) else None
    return str(manifest) if manifest else None


def owned(config: StreamConfig, owner: str, manifest: str) -> StreamConfig:
    """`config` (canonical) with ownership recorded in its metadata: what create and update
    send. A manifest path too long for the room kept is cut from the left."""
    encoded = manifest.encode()
    if len(encoded) > _MANIFEST_ROOM:
        manifest = "..." + encoded[-(_MANIFEST_ROOM - 3):].decode(errors="ignore")
    metadata: dict[str, Any] = {**(config.get("metadata") or {}), OWNER_KEY: owner,
                                MANIFEST_KEY: manifest}
    return cast(StreamConfig, {**config, "metadata": metadata})
