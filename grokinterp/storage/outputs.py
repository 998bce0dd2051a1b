"""Output paths checked before any work: a path that cannot be written is one line, not a
traceback after the work is done.

Each check finds the nearest existing ancestor of the path and creates (and removes) a probe file
there, so a read-only mount, a missing permission and a file where a folder belongs are all found
whoever runs the command (root included, for whom permission bits say nothing). Nothing else is
created: missing folders are made by the writer when it writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from grokinterp.errors import UsageError


def _nearest_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (a file or a folder)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_creatable(path: Path, flag: str, named: Path | None = None) -> None:
    """UsageError unless everything missing on the way to `path` can be created, and written in
    (`named`: the path the user gave, for the message)."""
    named = path if named is None else named
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise UsageError(f"{flag} {named}: {base} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=base, prefix=".grokinterp-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {named}: cannot write in {base} ({exc.strerror})") from None


def check_output_dir(path: str | Path, flag: str, renamed_into_place: bool = False) -> None:
    """Refuse, before any work, an output folder that is a file, lies under a file, or cannot be
    written (UsageError naming `flag`, e.g. "--out"); `renamed_into_place`: the folder is built
    beside it and renamed, so its parent must be writable too."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: a file, not a folder")
    _check_creatable(path.absolute().parent if renamed_into_place else path, flag, path)


def check_output_file(path: str | Path, flag: str) -> None:
    """Refuse, before any work, an output file that is a folder, lies under a file, or cannot be
    written (UsageError naming `flag`)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: not writable")
    _check_creatable(path.parent, flag, path)
