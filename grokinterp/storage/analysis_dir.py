"""Which analysis directory belongs to which run, and how one is committed and resumed.

Default paths mirror the run directory: a run at `checkpoints/NAME` (or `NAME`, from the working
directory) is analysed into `analyses/NAME/` and reported in `reports/NAME.html`; a run at
`A/run1` into `analyses/A/run1/` and `reports/A/run1.html`; a run outside the working directory
by its absolute path (`/data/x/run1` -> `analyses/data/x/run1/`). Two run directories therefore
never share a default analysis or report, whatever their names. A report is named after its run
when the run is given, else after its analysis directory (less `analyses/`).

An analysis directory belongs to one run: its summary records the run's fingerprint (the
digest of its config, epochs aside, and its split) and each measured checkpoint's digest.
`check_owner` refuses, before any work, to write into a directory that holds another run's
analysis, one whose checkpoints differ from the run's, one that would lose checkpoints the run no
longer has, or other files; `replace=True` (`--replace`) lifts all but the last.

A commit replaces the analysis's files together: each is written to a staged name, then the
journal `.commit.json` (the commit point) lists them, then each is renamed into place and the
journal removed. A process killed before the journal leaves the analysis as it was (the staged
files are swept away by the next writer); killed after it, the next reader or writer completes
the commit (`settle`), and says so on stderr.

One process writes an analysis directory at a time: `analyze` holds its lock (`.lock`, see
`grokinterp.storage.run_lock`) from its checks to its commit; a second writer is refused naming the
first. Readers take no lock.

Measuring is checkpointed in `.progress.safetensors` (the rows measured so far, float64 exactly;
written at most every `PROGRESS_EVERY_S` seconds and when interrupted) so that a killed or
interrupted analysis resumes where it stopped; a commit removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.run_lock import LOCK_FILE
from grokinterp.storage.store import atomic_write

DEFAULT_ANALYSES_DIR = Path("analyses")
DEFAULT_REPORTS_DIR = Path("reports")
JOURNAL_FILE = ".commit.json"
PROGRESS_FILE = ".progress.safetensors"
PROGRESS_EVERY_S = 5.0
_STAGED = ".staged-"
MEASURES_FILE, NEURONS_FILE, SUMMARY_FILE = "measures.csv", "neurons.safetensors", "summary.json"
INDICATORS_FILE, FINAL_VIEWS_FILE = "indicators.csv", "final_views.safetensors"
LLC_FILE, SETTINGS_FILE, TRACES_FILE = "llc.csv", "llc.json", "llc_traces.safetensors"
ANALYSIS_FILES = (
    MEASURES_FILE,
    NEURONS_FILE,
    SUMMARY_FILE,
    FINAL_VIEWS_FILE,
    INDICATORS_FILE,
    LLC_FILE,
    SETTINGS_FILE,
    TRACES_FILE,
)
"""Every file an analysis directory may hold (besides the journal, staged files and progress);
their readers and writers are `grokinterp.storage.analysis_format`,
`grokinterp.storage.final_views` and `grokinterp.analysis.llc.series`."""


def run_fingerprint(cfg: RunConfig, train: Tensor) -> str:
    """sha256 (hex) of the run's config (its epoch count aside: a run may be trained on) and its
    train pair indices."""
    text = cfg.replace(epochs=1).to_json() + ",".join(map(str, train.tolist()))
    return hashlib.sha256(text.encode()).hexdigest()


def _mirror(path: Path) -> Path:
    """`path` relative to the working directory without a leading `checkpoints/` or `analyses/`;
    for a path outside it, the absolute path without its root."""
    resolved = Path(path).resolve()
    try:
        relative = resolved.relative_to(Path.cwd().resolve())
    except ValueError:
        return resolved.relative_to(resolved.anchor)
    parts = relative.parts
    if len(parts) > 1 and parts[0] in ("checkpoints", DEFAULT_ANALYSES_DIR.name):
        parts = parts[1:]
    return Path(*parts) if parts else Path(resolved.name)


def default_analysis_dir(run_dir: str | Path) -> Path:
    """`analyses/<run directory, mirrored>/` (see the module docstring)."""
    return DEFAULT_ANALYSES_DIR / _mirror(Path(run_dir))


def default_report_path(path: str | Path) -> Path:
    """`reports/<path, mirrored>.html` for a run directory or an analysis directory:
    `checkpoints/x` and `analyses/x` -> `reports/x.html`, `A/run1` -> `reports/A/run1.html`."""
    mirrored = _mirror(Path(path))
    return DEFAULT_REPORTS_DIR / mirrored.with_name(mirrored.name + ".html")


# ---- ownership ----------------------------------------------------------------------------------
def check_owner(
    out: Path,
    run_path: Path,
    fingerprint: str,
    digests: dict[int, str | None],
    replace: bool,
    read: Callable[[Path], tuple[Any, list[int]]],
) -> tuple[str, ...]:
    """Refuse (UsageError, one line) to write the analysis of the run at `run_path` (its
    `fingerprint`, its checkpoints' `digests` by epoch) into `out` when `out` holds files that are
    not an analysis, or, unless `replace`, another run's analysis, checkpoints whose digests
    differ from the run's, or checkpoints the run no longer has. `read(out)` gives the summary and
    the measured epochs of the analysis there (UsageError when unreadable). Returns the files of
    `out` that a replacing commit must delete (another run's LLC and indicators)."""
    if not out.is_dir():
        return ()
    settle(out, sweep=True)
    names = {p.name for p in out.iterdir() if p.name not in (PROGRESS_FILE, LOCK_FILE)}
    if not names:
        return ()
    foreign = sorted(names - set(ANALYSIS_FILES))
    if foreign:
        raise UsageError(
            f"{out} holds files that are not an analysis ({', '.join(foreign[:3])}); choose "
            "another --out"
        )
    hint = "pass --replace to overwrite it, or choose another --out"
    try:
        summary, epochs = read(out)
    except UsageError as exc:
        if replace:
            return tuple(sorted(names))
        raise UsageError(f"{out} holds an unreadable analysis ({exc}); {hint}") from None
    problem = _ownership_problem(summary, epochs, run_path, fingerprint, digests)
    if problem is None:
        return ()
    if not replace:
        raise UsageError(f"{out} {problem}; {hint}")
    return tuple(sorted(names)) if summary.run_fingerprint != fingerprint else ()


def check_measured_run(summary, cfg: RunConfig, train: Tensor, run_path: Path, where: Path) -> None:
    """UsageError unless the analysis whose `summary` was read from `where` measured the run at
    `run_path` (its config `cfg` and train pair indices `train`): the same fingerprint. A summary
    that records no fingerprint is taken as the run's."""
    if summary.run_fingerprint and summary.run_fingerprint != run_fingerprint(cfg, train):
        owner = summary.run_dir_abs or summary.run_dir
        raise UsageError(f"{where} is the analysis of another run ({owner}), not of {run_path}")


def _ownership_problem(summary, epochs, run_path, fingerprint, digests) -> str | None:
    """Why an analysis (its summary, its table's epochs) is not the run's to extend, or None."""
    if summary.run_fingerprint != fingerprint:
        owner = summary.run_dir_abs or summary.run_dir or "an unrecorded run"
        return f"holds the analysis of another run ({owner})"
    changed = sorted(
        int(e)
        for e, digest in summary.checkpoint_digests.items()
        if int(e) in digests and digests[int(e)] != digest
    )
    if changed:
        return (
            f"holds the analysis of checkpoints that differ from {run_path}'s (epochs "
            f"{changed[0]} to {changed[-1]}, {len(changed)} in all): another copy of the run"
        )
    lost = sorted(set(epochs) - set(digests))
    if lost:
        return (
            f"holds {len(epochs)} checkpoints, {len(lost)} of which {run_path} does not have "
            f"(epochs {lost[0]} to {lost[-1]}); analysing it there would drop them"
        )
    return None


# ---- commit -------------------------------------------------------------------------------------
def commit(out: Path, files: dict[str, bytes], remove: tuple[str, ...] = ()) -> None:
    """Replace the files of the analysis directory `out` together: `files` ({name: bytes}) are
    written, `remove` and the progress file deleted, all or none (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    settle(out, sweep=True)
    for name, data in files.items():
        atomic_write(out / f"{_STAGED}{name}", data)
    journal = {"write": sorted(files), "remove": sorted({*remove, PROGRESS_FILE} - set(files))}
    atomic_write(out / JOURNAL_FILE, json.dumps(journal).encode())
    _complete(out, journal)


def _complete(out: Path, journal: dict) -> None:
    """Carry out a written journal; safe to repeat, and beside another process doing the same."""
    for name in journal["write"]:
        # a missing staged file was moved already, by an earlier or a parallel completion
        with contextlib.suppress(FileNotFoundError):
            os.replace(out / f"{_STAGED}{name}", out / name)
    for name in journal["remove"]:
        (out / name).unlink(missing_ok=True)
    _fsync_dir(out)
    (out / JOURNAL_FILE).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settle(analysis_dir: str | Path, sweep: bool = False) -> None:
    """Finish a commit of `analysis_dir` that a killed process left behind its commit point
    (saying so on stderr); with `sweep` (writers only: a reader could sweep away a live writer's
    files), also delete the staged files of a commit killed before it."""
    out = Path(analysis_dir)
    journal_path = out / JOURNAL_FILE
    try:
        journal = json.loads(journal_path.read_text())
    except FileNotFoundError:
        journal = None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{journal_path}: unreadable commit journal ({exc})") from None
    try:
        if journal is not None:
            _complete(out, journal)
            print(
                f"grokinterp: completed the interrupted commit of the analysis in {out}",
                file=sys.stderr,
            )
        elif sweep and out.is_dir():
            for staged in out.glob(f"{_STAGED}*"):
                staged.unlink(missing_ok=True)
    except PermissionError as exc:
        raise UsageError(
            f"{out}: an interrupted commit of this analysis needs completing, and {exc.filename} "
            "cannot be written"
        ) from None
