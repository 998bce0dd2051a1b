"""What a training stopped by Ctrl-C or by a full disk says: the epoch its runs saved and the
command that goes on from there, in one line.

A training stops only between commits as far as its files go (`grokinterp.training.batch_state`), so
the runs hold their last committed state whatever the moment: that is what `--resume` continues.
New runs stopped before their first commit hold nothing worth keeping; their files are removed,
so the same command can simply be run again.
"""

from __future__ import annotations

import errno
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from grokinterp.errors import Interrupted, UsageError

DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
"""Write errors that come from the disk, not from grokinterp: reported in one line."""


@contextmanager
def reporting(run_dirs: Sequence[Path], new: bool) -> Iterator[None]:
    """Turn Ctrl-C (`Interrupted`) and a disk error (`UsageError`) while `run_dirs` train into
    one line saying where the runs stand; `new`: runs trained from scratch (removed when
    stopped before their first commit). Call it while holding the runs' locks."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(standing(run_dirs, new)) from None
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        where = exc.filename or "a run file"
        raise UsageError(f"{where}: {exc.strerror}; {standing(run_dirs, new)}") from None


def standing(run_dirs: Sequence[Path], new: bool) -> str:
    """Where stopped runs stand: the epoch each batch saved and the command that resumes the
    unfinished ones, or that nothing was saved yet."""
    from grokinterp.training import batch_state

    batches: list[batch_state.BatchState] = []
    for run_dir in run_dirs:
        batch = batch_state.status(run_dir)
        if batch is None or batch.step is None:
            continue
        if not any(batch.same_runs(other) for other in batches):
            batches.append(batch)
    if not batches:
        if new:
            _remove_unsaved(run_dirs)
            return "nothing was saved yet (its files are removed): run the same command again"
        return "nothing was saved"
    saved = "; ".join(f"{_name(batch.runs)} saved epoch {batch.step}" for batch in batches)
    unfinished = [batch.runs[0] for batch in batches if not batch.finished]
    if not unfinished:
        return f"{saved}, the last"
    resume = shlex.join(["grokinterp", "train", "--resume", *(str(run) for run in unfinished)])
    return f"{saved}; go on with: {resume}"


def _name(runs: Sequence[Path]) -> str:
    if len(runs) == 1:
        return str(runs[0])
    parents = sorted({str(Path(run).parent) for run in runs})
    return f"the {len(runs)} runs of the batch in {', '.join(parents)}"


def _remove_unsaved(run_dirs: Sequence[Path]) -> None:
    """Remove what new runs wrote before their first commit (their lock file stays until the
    lock is released)."""
    import shutil

    from grokinterp.storage.store import run_files

    for run_dir in run_dirs:
        for path in run_files(run_dir):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
