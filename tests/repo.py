"""The repository as committed, for tests that read its files.

A user edits `config/` (the README suggests it) and `make run` leaves data in
`.jetstream-reconciler/`: tests never read either from the working tree. They read the
committed version (`git show HEAD:...`) into a temporary directory of their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The user's: what they edit, and what `make run` keeps there.
USER_FILES = (ROOT / "config", ROOT / ".jetstream-reconciler")


class UserFilesTouched(RuntimeError):
    """A test reached for the working tree's `config/` or `.jetstream-reconciler/`."""


_exempt = threading.local()
_WATCHED = frozenset({"open", "os.listdir", "os.scandir", "os.mkdir", "shutil.copytree",
                      "subprocess.Popen", "os.exec", "os.posix_spawn"})


def _touches(path: Any, base: str) -> bool:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    elif isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path or path.startswith("-"):
        return False
    full = os.path.normpath(os.path.join(base, path))
    for user in map(str, USER_FILES):
        if full == user or full.startswith(user + os.sep):
            return True
        if path.startswith(user + ":"):  # a bind mount, `SRC:DEST`
            return True
    return False


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event not in _WATCHED or getattr(_exempt, "on", False):
        return
    if event in ("subprocess.Popen", "os.exec", "os.posix_spawn"):
        argv, cwd = args[1], (args[2] if event == "subprocess.Popen" else None)
        base = os.fspath(cwd) if cwd is not None else os.getcwd()
        argv = [argv] if isinstance(argv, (str, bytes, os.PathLike)) else list(argv or ())
        touched = any(_touches(a, base) for a in argv) or (
            "--embedded" in argv and os.path.normpath(base) == str(ROOT))
    elif event in ("open", "os.mkdir") and not os.path.isabs(os.fsdecode(
            args[0] if isinstance(args[0], (str, bytes)) else "")):
        # relative: may be to a directory's fd (`dir_fd`, as shutil.rmtree does), which the
        # event does not carry; tests name files by absolute paths (ROOT / ...)
        touched = False
    else:
        touched = _touches(args[0], os.getcwd())
    if touched:
        raise UserFilesTouched(
            f"{event} {args[:2]!r}: tests never read or write the user's config/ or "
            ".jetstream-reconciler/ (the README suggests editing config/, and `make run` "
            "keeps its data there); use committed_copy() from tests/repo.py, in a temporary "
            "directory of the test's own")


def guard_user_files() -> None:
    """From now on, in this process, reaching for the user's files raises UserFilesTouched:
    so that no edit to `config/` and no running `make run` can change what `make test` says.
    Installed once for the test session (tests/conftest.py)."""
    if not getattr(guard_user_files, "installed", False):
        sys.addaudithook(_guard)
        guard_user_files.installed = True  # type: ignore[attr-defined]


@contextlib.contextmanager
def reading_user_files() -> Iterator[None]:
    """Allowed in this thread: only for a copy of a source archive, which has no commits."""
    _exempt.on = True
    try:
        yield
    finally:
        _exempt.on = False


def committed_copy(dest: Path, *paths: str) -> Path:
    """Copy the committed `paths` (files or directories, relative to the repository) under
    `dest`; outside a git checkout (a source archive) the files as they are. Returns `dest`."""
    with reading_user_files():  # the committed versions, through git
        return _committed_copy(dest, *paths)


def _committed_copy(dest: Path, *paths: str) -> Path:
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", "HEAD", "--", *paths],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        for path in paths:
            source = ROOT / path
            if source.is_dir():
                shutil.copytree(source, dest / path, dirs_exist_ok=True)
            else:
                (dest / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / path)
        return dest
    assert listed, f"nothing committed under {paths}"
    for name in listed:
        blob = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{name}"],
                              capture_output=True, check=True, timeout=30).stdout
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    return dest
