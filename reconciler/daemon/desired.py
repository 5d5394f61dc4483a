"""The desired state: which version of each manifest file a pass goes by, merged into the
streams to reconcile, and what each stream was when last in sync.

    read_manifests (thread) ─> Desired.load ─> specs, changed files
    plan ─> read_again (thread) ─> Desired.review ─> held files keep their last version

`Desired` keeps the per-file streams a pass goes by (`settle.Files` decides which version of
a changed file is accepted) and reports manifest problems when they change. `Sources` tells,
per stream, whether its manifest changed since the stream was last in sync.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from reconciler.manifest import LoadResult, discover_with_problems, load_manifests
from reconciler.metrics import Metrics
from reconciler.model import Plan, Policy, Problem, Status, StreamPlan, StreamSpec
from reconciler.reconcile import Result
from reconciler.settle import STABLE_S, Files, Snapshot, review, snapshot

log: structlog.typing.FilteringBoundLogger = structlog.get_logger("reconciler.daemon")

Snapshots = dict[str, Snapshot | None]


def read_manifests(paths: Sequence[str]) -> tuple[Snapshots, LoadResult]:
    """Every manifest file's snapshot, taken before the load (see `Desired.review`)."""
    found = discover_with_problems(paths)
    before = {str(f): snapshot(f) for f in found[0]}
    return before, load_manifests(paths, found=found)


def read_again(files: Mapping[str, Snapshot | None]) -> Snapshots:
    """Snapshots of `files` taken at least `STABLE_S` after each last changed."""
    out = {}
    for file in files:
        snap = snapshot(file)
        if snap is not None:
            age = time.time() - snap.changed_ns / 1e9
            if age < STABLE_S:
                time.sleep(STABLE_S - max(age, 0.0))
                snap = snapshot(file)
        out[file] = snap
    return out


class Desired:
    """The streams of each manifest file that passes go by, and the problems last reported."""

    def __init__(self, files: Files, metrics: Metrics) -> None:
        self.files = files
        self.metrics = metrics
        self.problems: tuple[Problem, ...] = ()
        self.warnings: tuple[Problem, ...] = ()
        self._by_file: dict[str, tuple[StreamSpec, ...]] = {}
        self.held: dict[str, str] = {}
        """Files whose new version is held back (file: the digest last reported)."""
        self.specs: list[StreamSpec] | None = None
        """The streams last merged (`merged`): what a pass goes by when no manifest changed;
        None until the manifests were first read."""

    def load(self, before: Snapshots, loaded: LoadResult) -> tuple[list[StreamSpec], Snapshots]:
        """The streams to reconcile, and the files whose new version is not accepted yet
        (with their snapshots from before the load).

        A file still as it was when last accepted counts with its accepted streams; a file
        that fails validation keeps its last accepted streams; a changed valid file counts
        with its new streams until `review` says otherwise."""
        self.files.look(before, forget_others=True)
        loaded_by_file: dict[str, list[StreamSpec]] = {}
        for spec in loaded.specs:
            loaded_by_file.setdefault(spec.location.file, []).append(spec)
        changed: Snapshots = {}
        self._by_file = {}
        for f in loaded.files:
            snap = before.get(f)
            if f in loaded.failed_files or self.files.is_accepted(f, snap):
                self._by_file[f] = self.files.accepted_specs(f)
            else:
                self._by_file[f] = tuple(loaded_by_file.get(f, ()))
                changed[f] = snap
        self.held = {f: d for f, d in self.held.items() if f in changed}
        self._report(loaded.problems)
        if loaded.warnings != self.warnings:
            for warning in loaded.warnings:
                log.warning("manifest_warning", file=warning.location.file,
                            line=warning.location.line, column=warning.location.column,
                            field=warning.path, warning=str(warning))
            self.warnings = loaded.warnings
        return self.merged(), changed

    def _report(self, problems: tuple[Problem, ...]) -> None:
        if problems != self.problems:
            for problem in problems:
                log.error("manifest_invalid", file=problem.location.file,
                          line=problem.location.line, column=problem.location.column,
                          field=problem.path, error=str(problem))
            if self.problems and not problems:
                log.info("manifests_valid_again")
        self.problems = problems
        self.metrics.manifests_valid.set(0 if problems else 1)
        self.metrics.manifest_problems.set(len(problems))

    def merged(self) -> list[StreamSpec]:
        """The streams of every file, in file order; a name declared twice counts once."""
        seen: set[str] = set()
        specs = []
        for file in sorted(self._by_file):
            for spec in self._by_file[file]:
                if spec.name not in seen:
                    seen.add(spec.name)
                    specs.append(spec)
        self.specs = specs
        return specs

    def review(self, plan: Plan, changed: Mapping[str, Snapshot | None],
               after: Snapshots) -> bool:
        """Accept or hold each changed file's new version (`settle.review`), given its
        snapshots from before the load (`changed`) and after the plan (`after`). True when
        one is held: its last accepted streams stand, and the plan must be made again."""
        self.files.look(after)
        held: dict[str, tuple[str, ...]] = {}
        by_file: dict[str, list[StreamPlan]] = {}
        for p in plan.streams:
            if p.location is not None and p.location.file in changed:
                by_file.setdefault(p.location.file, []).append(p)
        for file, snap in changed.items():
            again = after.get(file)
            stable = snap is not None and snap == again
            file_specs = self._by_file[file]
            if stable and self.files.settled(file):
                reasons: tuple[str, ...] = ()
            else:
                reasons = review(
                    by_file.get(file, []), {s.name: s for s in file_specs},
                    self.files.baseline(),
                    stable=stable, complete=again is not None and again.complete)
            if reasons:
                held[file] = reasons
            else:
                assert snap is not None
                self.files.accept(file, snap, file_specs)
        digests = {f: snap.digest if (snap := after.get(f)) is not None else "" for f in held}
        for file, reasons in held.items():
            if self.held.get(file) != digests[file]:
                log.warning("manifest_settling", file=file, reasons=list(reasons),
                            streams=[s.name for s in self._by_file[file]],
                            settle_s=self.files.settle_s,
                            retry_in_s=round(self.files.due_in(file), 3))
            self._by_file[file] = self.files.accepted_specs(file)
        self.held = digests
        return bool(held)

    def settle_due_in(self) -> float | None:
        """Seconds until the first held file will have been quiet for the settle period."""
        if not self.held:
            return None
        return min(self.files.due_in(f) for f in self.held)


class Sources:
    """The manifest of each stream as it was when a pass last left the stream in sync."""

    def __init__(self) -> None:
        self._in_sync: dict[str, tuple[Any, Policy]] = {}

    def of(self, specs: Sequence[StreamSpec]) -> Mapping[str, str]:
        """Per stream: `manifest` when its manifest changed since the stream was last in
        sync, else `server` (the live side moved)."""
        return {
            s.name: "manifest" if self._in_sync.get(s.name) != (s.config, s.policy)
            else "server"
            for s in specs
        }

    def remember(self, specs: Sequence[StreamSpec], result: Result | None) -> None:
        """The manifest of each stream the pass left in sync (so that a failed, blocked or
        report-only stream's manifest change is still told as one next time)."""
        if result is None:
            return
        in_sync = {o.name for o in result.outcomes
                   if o.status in (Status.CREATED, Status.UPDATED, Status.UNCHANGED)}
        declared = {s.name for s in specs}
        self._in_sync = {n: v for n, v in self._in_sync.items() if n in declared}
        for spec in specs:
            if spec.name in in_sync:
                self._in_sync[spec.name] = (spec.config, spec.policy)
