"""Loading every manifest under some paths: reading files (size limits, special files), the
cache of what each file parsed to, and the result with every problem."""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reconciler.errors import ManifestError
from reconciler.manifest.across import across_key, check_across
from reconciler.manifest.discover import discover_with_problems, file_problem, not_regular
from reconciler.manifest.document import Parsed, parse_file
from reconciler.manifest.reader import Document
from reconciler.model import Problem, StreamSpec

#: files larger than this are rejected unread
MAX_FILE_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class LoadResult:
    """Everything `load_manifests` found. Pure data: the caller decides what to do with it."""

    specs: tuple[StreamSpec, ...]
    """Streams from valid documents, in file order. A document with any problem has no spec
    here, but the valid documents of a failed file do: drop them by `spec.location.file in
    failed_files` to keep the last good state of a file instead."""
    problems: tuple[Problem, ...]
    """Every problem found, sorted by location."""
    files: tuple[str, ...]
    """Every manifest file read (as discovered: relative when the path given was)."""
    failed_files: frozenset[str]
    """Files (and given paths) with at least one problem."""
    warnings: tuple[Problem, ...] = ()
    """What valid documents say that is not followed here (a NACK Stream's `servers`)."""

    @property
    def ok(self) -> bool:
        return not self.problems


#: what was discovered: the files, and the problems met finding them
_Found = tuple[list[Path], list[Problem]]


class ManifestCache:
    """What the last load read, so that the next one can skip the work. Watch mode loads
    every manifest on every pass, and most files have not changed since the last one.

    Everything it holds is immutable (documents, problems, results), so whoever gets a
    cached value may keep it: nobody needs a copy."""

    def __init__(self, max_files: int = 4096) -> None:
        self.max_files = max_files
        self._parsed: dict[str, tuple[bytes, Parsed]] = {}
        """file name -> (its bytes, what they parse to): the last version of each file only"""
        self._last: tuple[_Found, list[Parsed], LoadResult] | None = None
        self._clean: tuple[object, ...] | None = None
        """`across_key` of the last documents checked across, when no problem was found"""

    def parse(self, name: str, data: bytes) -> Parsed:
        """What one file's bytes parse to: the same object as last time when they are the
        same bytes."""
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == data:
            return cached[1]
        parsed = parse_file(name, data)
        if len(self._parsed) >= self.max_files:
            self._parsed.pop(next(iter(self._parsed)))
        self._parsed[name] = (data, parsed)
        return parsed

    def across(self, docs: list[Document]) -> dict[int, list[Problem]]:
        """`check_across(docs)`; not run again when the documents name the same streams and
        subjects as those last checked, in which no problem was found (a file saved with
        another limit: 6-7 ms at 1,000 streams)."""
        key = across_key(docs)
        if key is not None and key == self._clean:
            return {}
        found = check_across(docs)
        self._clean = key if not found else None
        return found

    def result(self, found: _Found, parsed: list[Parsed]) -> LoadResult | None:
        """The last result, if these are the same files, each parsed to the very same
        object as last time: the checks across documents would only find it again."""
        last = self._last
        if (
            last is not None
            and last[0] == found
            and len(last[1]) == len(parsed)
            and all(a is b for a, b in zip(last[1], parsed, strict=True))
        ):
            return last[2]
        return None

    def remember(self, found: _Found, parsed: list[Parsed], result: LoadResult) -> None:
        self._last = (found, parsed, result)


#: the cache of `load_manifests`: one per process, as the files are
CACHE: Final = ManifestCache()


def load_manifests(paths: Sequence[str | os.PathLike[str]], *, keep: bool = True,
                   found: _Found | None = None) -> LoadResult:
    """Discover, parse and validate every manifest under `paths`. Never raises for a bad
    manifest: every problem is in the result. `keep`: remember what was read (`CACHE`), for
    the next load to skip the files that did not change; a command that loads once need not
    hold the files' bytes and documents (1.7 MB at 10,000 streams). `found`: what
    `discover_with_problems(paths)` returned, when the caller has just called it."""
    cache = CACHE if keep else ManifestCache()
    with _collector_paused():
        found = discover_with_problems(paths) if found is None else found
        files, discovered = found
        parsed = [_load_file(path, cache) for path in files]
        result = cache.result(found, parsed)
        if result is None:
            # a load kept for no next one has nothing to compare the documents with
            result = _result(files, discovered, parsed, cache.across if keep else check_across)
            cache.remember(found, parsed, result)
    return result


def load_texts(files: Sequence[tuple[str, bytes]]) -> LoadResult:
    """Parse and validate manifests held in memory, (file name, bytes) each, exactly as
    `load_manifests` does files on disk: what `export` checks before it writes them."""
    with _collector_paused():
        return _result([Path(name) for name, _ in files], [], [parse_file(n, d) for n, d in files],
                       check_across)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while manifests load. A load makes a dozen objects per
    YAML value and keeps most of them; each collection the allocations set off would walk
    every object made so far, which cost 40 % of loading 10,000 streams. What a load leaves
    unreachable is reference-counted away at once; the rest waits for the next collection."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _result(files: list[Path], discovered: list[Problem], parsed: list[Parsed],
            across_of: Callable[[list[Document]], dict[int, list[Problem]]]) -> LoadResult:
    problems = list(discovered)
    docs = [doc for file_docs, _ in parsed for doc in file_docs]
    for _, file_problems in parsed:
        problems.extend(file_problems)
    across = across_of(docs)
    specs: list[StreamSpec] = []
    warnings: list[Problem] = []
    for index, doc in enumerate(docs):
        problems.extend(doc.problems)
        warnings.extend(doc.warnings)
        more = across.get(index, ())
        problems.extend(more)
        if not doc.problems and not more and not doc.failed and doc.spec is not None:
            specs.append(doc.spec)
    problems.sort(key=lambda p: p.location)  # stable: same place, order of the checks
    return LoadResult(
        specs=tuple(specs),
        problems=tuple(problems),
        files=tuple(str(f) for f in files),
        failed_files=frozenset(p.location.file for p in problems),
        warnings=tuple(sorted(warnings, key=lambda p: p.location)),
    )


def load_or_raise(paths: Sequence[str | os.PathLike[str]]) -> tuple[StreamSpec, ...]:
    """The specs under `paths`; `ManifestError` with every problem if there is any."""
    result = load_manifests(paths)
    if result.problems:
        raise ManifestError(result.problems)
    return result.specs


def _load_file(path: Path, cache: ManifestCache) -> Parsed:
    """The parse of one file: the same object as last time when its bytes are the same."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat: what was opened
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return (), (not_regular(path, info.st_mode),)
            if info.st_size > MAX_FILE_BYTES:
                return (), (_size_problem(path, info.st_size),)
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return (), (file_problem(path, f"cannot read: {exc.strerror or exc}"),)
    if len(data) > MAX_FILE_BYTES:  # grew since stat
        return (), (_size_problem(path, len(data)),)
    return cache.parse(str(path), data)


def _size_problem(path: Path, size: int) -> Problem:
    return file_problem(
        path,
        f"the file is {size} bytes, more than the limit of {MAX_FILE_BYTES} bytes (1MiB)",
        "split it into several files",
    )
