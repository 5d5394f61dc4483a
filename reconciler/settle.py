"""Files being written: which version of each manifest file watch mode goes by.

A writer that rewrites a file in place can be read half way: a value cut in the middle
(`max_msgs: 1` of `max_msgs: 100000`), a file cut at a line boundary (valid YAML whose missing
lines mean "server default"), an empty file after a truncation. So a file's new version is
applied at once only when that is safe even if the writer is not done; otherwise its last
accepted version stays in force until the file has been left alone for the settle period
(README, "Data safety" / "Files being written"):

    snapshot ─> load ─> plan ─> snapshot again ─> review each changed file
                                                    ├ accept: the new version stands
                                                    └ hold: the last accepted version
                                                      stands (plan again); look again
                                                      when the file has been quiet for
                                                      the settle period

`review` is pure; `snapshot` reads one file; `Files` remembers what was seen and accepted.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.manifest import MAX_FILE_BYTES
from reconciler.model import Action, StreamPlan, StreamSpec
from reconciler.plan import describe_impact

#: a file changed less than this long ago is read again this much later before it counts as
#: stable (the file watcher already waits for 10 ms without events, so this waits at most
#: about 10 ms more)
STABLE_S = 0.02


@dataclass(frozen=True)
class Snapshot:
    """A file as read once: its identity, size and times (from the open file) and a digest
    of its bytes. Two equal snapshots taken around a load mean the load read these bytes."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    digest: str
    complete: bool
    """Empty, or ends with a newline: the last line is finished."""

    @property
    def changed_ns(self) -> int:
        """When the file last changed, nanoseconds since the epoch (write or rename)."""
        return max(self.mtime_ns, self.ctime_ns)


def snapshot(path: str | os.PathLike[str]) -> Snapshot | None:
    """Read `path` once; None when it cannot be read (gone, or not a file)."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return Snapshot(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                    hashlib.sha256(data).hexdigest(), not data or data.endswith(b"\n"))


# --- the rule (pure) -------------------------------------------------------------------------


def mentions(spec: StreamSpec) -> frozenset[str]:
    """Every field path the manifest writes (`max_age`, `subjects.1`, `metadata.owner`),
    and those it names in `reconcile.ignore_fields`."""
    out: set[str] = set(spec.policy.ignore_fields)

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            items: Iterable[tuple[Any, Any]] = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            return
        for key, inner in items:
            path = f"{prefix}{key}"
            out.add(path)
            visit(path + ".", inner)

    visit("", spec.config)
    return frozenset(out)


def _related(a: str, b: str) -> bool:
    """One path is the other, or inside it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def reverted(plan: StreamPlan, spec: StreamSpec, before: StreamSpec | None) -> tuple[str, ...]:
    """Fields `plan` changes only because the manifest stopped writing something about them
    (a line that went missing means the server's default). With no earlier version of the
    stream to compare with, every changed field the manifest does not write."""
    now = mentions(spec)
    if before is None:
        return tuple(c.path for c in plan.changes
                     if not any(_related(c.path, p) for p in now))
    gone = mentions(before) - now
    return tuple(c.path for c in plan.changes if any(_related(c.path, p) for p in gone))


def review(
    plans: Sequence[StreamPlan],
    specs: Mapping[str, StreamSpec],
    before: Mapping[str, StreamSpec],
    *,
    stable: bool,
    complete: bool,
) -> tuple[str, ...]:
    """Why a manifest file's new version may not be applied at once; empty when it may.

    `plans` are the plans of the streams the file declares (`specs`, by name), `before` the
    last accepted spec of each stream by name. A version is applied at once only when it was
    the same before the load and after the plan (`stable`), its last line is finished
    (`complete`), and no update it makes discards stored messages (or may) or puts a field
    back to the server's default because its line went missing.
    """
    reasons = []
    if not stable:
        reasons.append("the file changed while it was read")
    if not complete:
        reasons.append("its last line is unfinished (no newline at the end)")
    for plan in plans:
        if plan.action is not Action.UPDATE:
            continue  # a create loses nothing; a blocked change is not applied
        impact = plan.impact
        if impact is not None:  # any impact is a (possible) loss
            reasons.append(f"{plan.name}: {describe_impact(impact)}")
        fields = reverted(plan, specs[plan.name], before.get(plan.name))
        if fields:
            reasons.append(f"{plan.name}: {', '.join(fields)} would go back to the server's "
                           "default (not written in this version)")
    return tuple(reasons)


# --- what was seen and accepted --------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The version of a file watch mode goes by."""

    digest: str
    specs: tuple[StreamSpec, ...]


class Files:
    """Per manifest file: the version in force, and since when its bytes have been as they
    are now. Per stream name: its last accepted spec (kept when a file stops declaring it,
    so that an emptied file cannot hide what the stream used to say)."""

    def __init__(self, settle_s: float, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.settle_s = settle_s
        self._clock = clock
        self._wall = wall
        self._accepted: dict[str, Accepted] = {}
        self._baseline: dict[str, StreamSpec] = {}
        self._seen: dict[str, tuple[Snapshot, float]] = {}

    def look(self, snaps: Mapping[str, Snapshot | None], *, forget_others: bool = False) -> None:
        """Record what the files hold now. A version seen for the first time counts as
        unchanged since now; a file this daemon has never seen, since its change time."""
        now = self._clock()
        for file, snap in snaps.items():
            if snap is None:
                self._seen.pop(file, None)
                continue
            seen = self._seen.get(file)
            if seen is not None and seen[0] == snap:
                continue
            since = now
            if seen is None:
                since -= max(0.0, self._wall() - snap.changed_ns / 1e9)
            self._seen[file] = (snap, since)
        if forget_others:
            for file in set(self._seen) - set(snaps):
                del self._seen[file]
            for file in set(self._accepted) - set(snaps):
                del self._accepted[file]

    def quiet_for(self, file: str) -> float:
        """Seconds the file has held its current bytes (0 when unknown)."""
        seen = self._seen.get(file)
        return 0.0 if seen is None else self._clock() - seen[1]

    def settled(self, file: str) -> bool:
        return self.quiet_for(file) >= self.settle_s

    def due_in(self, file: str) -> float:
        """Seconds until the file will have been quiet for the settle period."""
        return max(0.0, self.settle_s - self.quiet_for(file))

    def is_accepted(self, file: str, snap: Snapshot | None) -> bool:
        accepted = self._accepted.get(file)
        return accepted is not None and snap is not None and accepted.digest == snap.digest

    def accepted_specs(self, file: str) -> tuple[StreamSpec, ...]:
        accepted = self._accepted.get(file)
        return accepted.specs if accepted is not None else ()

    def baseline(self) -> Mapping[str, StreamSpec]:
        return self._baseline

    def accept(self, file: str, snap: Snapshot, specs: Sequence[StreamSpec]) -> None:
        self._accepted[file] = Accepted(snap.digest, tuple(specs))
        for spec in specs:
            self._baseline[spec.name] = spec
