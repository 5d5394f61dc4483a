"""Finding manifest files: directories walked, symlinks followed once, special files refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from reconciler.model import Location, Problem

YAML_SUFFIXES: Final = frozenset({".yaml", ".yml", ".json"})
"""YAML, and JSON (natscli's stream configuration files; JSON is YAML too)"""


def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The manifest files under `paths`, sorted; a file reached twice (a symlink, a path given
    twice) is listed once, under the first name it was found by.

    A directory is searched recursively for `*.yaml`/`*.yml`/`*.json`, following symlinks
    and skipping entries whose name starts with `.` (a Kubernetes ConfigMap mount shows each
    key as a symlink through `..data`, and keeps `..data` and `..<timestamp>` beside them). A
    file named explicitly is read whatever its suffix. Paths that do not exist are left out
    here; `load_manifests` reports them.
    """
    return discover_with_problems(paths)[0]


def discover_with_problems(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[Path], list[Problem]]:
    """`discover`, and the problems met on the way (missing paths, unreadable directories)."""
    found: list[tuple[Path, Path]] = []  # (as found, real path)
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                real = path.resolve()
                _walk(path, real, frozenset({real}), found, problems)
            elif path.exists():
                found.append((path, path.resolve()))
            elif path.is_symlink():
                problems.append(file_problem(path, "is a broken symbolic link"))
            else:
                problems.append(file_problem(path, "no such file or directory"))
        except OSError as exc:
            problems.append(file_problem(path, f"cannot read: {exc.strerror or exc}"))
    unique: dict[Path, Path] = {}  # real path: the first name it was found under
    for path, real in found:
        unique.setdefault(real, path)
    return sorted(unique.values(), key=lambda p: p.parts), problems


def _walk(
    directory: Path, real: Path, stack: frozenset[Path], out: list[tuple[Path, Path]],
    problems: list[Problem],
) -> None:
    """Walk `directory`, whose real path is `real`: an entry that is no symbolic link is
    found at `real` / its name, without resolving it (a `stat` of every part of its path)."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        problems.append(file_problem(directory, f"cannot read: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = directory / entry.name
        try:
            linked = entry.is_symlink()
            if entry.is_dir():
                target = path.resolve() if linked else real / entry.name
                if target not in stack:  # a symlink back up the tree: been there
                    _walk(path, target, stack | {target}, out, problems)
            elif path.suffix.lower() in YAML_SUFFIXES:
                if entry.is_file():
                    out.append((path, path.resolve() if linked else real / entry.name))
                elif linked and not path.exists():
                    problems.append(file_problem(path, "is a broken symbolic link"))
                else:
                    problems.append(not_regular(path, path.stat().st_mode))
        except OSError as exc:
            problems.append(file_problem(path, f"cannot read: {exc.strerror or exc}"))


_SPECIAL_FILES: Final = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def not_regular(path: Path, mode: int) -> Problem:
    """The problem with a path that is not a regular file (a pipe, a device, ...)."""
    what = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a regular file")
    return file_problem(
        path,
        f"is {what}: manifests are read from regular files only",
        "give the path of a manifest file, or of a directory of them",
    )


def file_problem(path: Path, message: str, hint: str | None = None) -> Problem:
    """A problem with a whole file (no line, no field)."""
    return Problem(Location(str(path)), "", message, hint)
