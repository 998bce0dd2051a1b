"""One writer per run directory: an exclusive flock on RUN/.lock for a writer's whole life.

Every process that writes a run (train, resume, a sweep worker, an import) holds the lock of
each of its run directories from before its first write until it ends; a second writer is
refused in one line that names the holder. The lock file holds the holder's pid, host and
command. The kernel drops a flock when its holder dies, so a lock file left by a killed process
never blocks anyone; a holder that ends normally removes the file (and the directory, when the
lock created it and nothing else was written). Readers (analysis, reports, status) never take
the lock, nor test it. Locks are re-entrant within a process: `train_runs` inside a sweep
worker that already holds the run's lock goes on.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from grokinterp.errors import UsageError

LOCK_FILE = ".lock"
_HELD: dict[Path, list] = {}
"""Locks this process holds: resolved run directory -> [fd, holders]."""


class Busy(UsageError):
    """A run (or analysis) directory locked by another live process."""

    def __init__(self, run_dir: Path, holder: str, doing: str = "trained"):
        self.run_dir, self.holder = Path(run_dir), holder
        super().__init__(f"{run_dir} is being {doing} by {holder}; wait for it to end or stop it")


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (None when it exists)."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def _holder(fd: int) -> str:
    """The holder named in a lock file held by another process (written right after it took
    the lock, so an empty file is read again for a moment)."""
    for _ in range(20):
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if text:
            pid, host, command = (text.split("\n", 2) + ["", ""])[:3]
            where = "" if host in ("", socket.gethostname()) else f" on {host}"
            if len(command) > 160:
                command = command[:157] + "..."
            return f"process {pid}{where}" + (f" ({command})" if command else "")
        time.sleep(0.05)
    return "another process"


def _acquire(run_dir: Path, doing: str) -> int:
    """The fd of RUN/.lock, locked; Busy when another process holds it. A lock file removed by
    its holder between our open and our flock is opened again."""
    path = run_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"{path}: cannot create the run's lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Busy(run_dir, holder, doing) from None
        except OSError as exc:
            os.close(fd)
            raise UsageError(
                f"{path}: cannot lock ({exc.strerror}); run directories need a filesystem with "
                "flock support"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _record(fd: int) -> None:
    command = shlex.join(["grokinterp", *sys.argv[1:]]) if sys.argv else "python"
    text = f"{os.getpid()}\n{socket.gethostname()}\n{command}\n".encode()
    try:  # the holder's name is for messages only: the lock holds without it (a full disk)
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
    except OSError:
        pass


@contextmanager
def holding_one(run_dir: Path, doing: str = "trained") -> Iterator[None]:
    """Hold the lock of one run directory (created, with its parents, when missing); `doing`
    names the work in the refusal of a second writer (an analysis directory is "analysed")."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    created = _first_missing(run_dir)
    if created is None and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run directory")
    if created is not None and not created.parent.is_dir():
        raise UsageError(f"{created.parent} is a file, so {run_dir} cannot be a run directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from None
    try:
        fd = _acquire(run_dir, doing)
    except UsageError:
        _remove_empty(run_dir, created)
        raise
    _record(fd)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        (run_dir / LOCK_FILE).unlink(missing_ok=True)  # still held: nobody has it open locked
        os.close(fd)
        _remove_empty(run_dir, created)


def _remove_empty(run_dir: Path, created: Path | None) -> None:
    """Remove the directories from `run_dir` up to `created` that the lock made and that stayed
    empty."""
    if created is None:
        return
    path = run_dir
    while True:
        try:
            path.rmdir()
        except OSError:
            return
        if path == created:
            return
        path = path.parent


@contextmanager
def holding(run_dirs: Sequence[Path]) -> Iterator[None]:
    """Hold the locks of every run directory, or of none: Busy (naming the holder) when another
    process holds one of them."""
    with ExitStack() as stack:
        for run_dir in run_dirs:
            stack.enter_context(holding_one(run_dir))
        yield
