"""File watching: which directories to watch for the manifest paths, and which events in
them can change what the paths hold. Each relevant batch of events is one trigger."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from watchfiles import awatch

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")


async def watch_files(
    paths: Sequence[str], stopped: asyncio.Event, on_change: Callable[[], None]
) -> None:
    """Call `on_change` for each batch of events that can change what `paths` hold, until
    `stopped` is set."""
    targets = [watch_target(Path(p)) for p in paths]
    directories = sorted({str(d) for d, _ in targets})
    matchers = [m for _, m in targets]

    def relevant(_: Any, path: str) -> bool:
        # No suffix filter: a ConfigMap update is a rename of the `..data` symlink.
        return any(m(path) for m in matchers)

    # awatch sets its stop event when cancelled: give it one of its own
    stop = asyncio.Event()
    relay = asyncio.create_task(_relay(stopped, stop))
    try:
        async for changes in awatch(*directories, stop_event=stop, watch_filter=relevant,
                                    debounce=250, step=10, rust_timeout=0,
                                    yield_on_timeout=False, recursive=True):
            log.debug("files_changed", files=sorted(str(p) for _, p in changes)[:20])
            on_change()
    finally:
        relay.cancel()


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def watch_target(path: Path) -> tuple[Path, Callable[[str], bool]]:
    """The directory to watch for `path`, and which event paths in it matter.

    A directory is watched through itself, a file through its directory (editors save by
    renaming a new file over the old one), a path that does not exist yet through its
    nearest existing ancestor. When the path runs through a symbolic link (git-sync
    publishes each commit by swapping a `current` link; a ConfigMap volume swaps `..data`),
    the directory holding the first link is watched, so that the swap is seen.

    Either way only the events that can change what `path` holds count (`_relevant`), so
    git-sync's own writes beside its link (`.git/` on every fetch, the next worktree before
    its swap) start no reconcile, even when the watch began before the first checkout.
    """
    path = path.absolute()
    wanted = str(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    directory = path if path.is_dir() else path.parent
    for ancestor in [*reversed(path.parents), path]:
        if ancestor.is_symlink():
            directory = ancestor.parent
            break
    return directory, partial(_relevant, wanted)


def _relevant(path: str, event: str) -> bool:
    """Whether a change at `event` can change what `path` holds, as things are now: it is on
    `path`, under it or one of its ancestors (created, renamed), on a link `path` runs
    through (swapped), or under what `path` resolves to."""
    links, real = _resolve(path)
    return (event in links or _within(event, path) or _within(path, event)
            or _within(os.path.realpath(event), real))


def _resolve(path: str) -> tuple[set[str], str]:
    """The symbolic links met while resolving absolute `path`, as written, and its real path."""
    links: set[str] = set()
    pending = [part for part in path.split(os.sep) if part]
    current = os.sep
    hops = 0
    while pending:
        part = pending.pop(0)
        candidate = os.path.join(current, part)
        if os.path.islink(candidate) and hops < 40:
            hops += 1
            links.add(candidate)
            target = os.readlink(candidate)
            if os.path.isabs(target):
                current = os.sep
            pending[:0] = [p for p in target.split(os.sep) if p]
        elif part == "..":
            current = os.path.dirname(current)
        elif part != ".":
            current = candidate
    return links, current


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)
