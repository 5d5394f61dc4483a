"""The repository as committed, for tests that read its files.

A user edits `config/` (the README suggests it) and `make run` leaves data in
`.jetstream-reconciler/`: tests never read either from the working tree. They read the
committed version (`git show HEAD:...`) into a temporary directory of their own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def committed_copy(dest: Path, *paths: str) -> Path:
    """Copy the committed `paths` (files or directories, relative to the repository) under
    `dest`; outside a git checkout (a source archive) the files as they are. Returns `dest`."""
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
