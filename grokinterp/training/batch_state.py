"""A batch's saved training state: one commit for all of its runs.

Runs trained together as one batched model (`train --seeds ...`, a sweep batch) resume together,
in the same batch order and from the same step: a batch of one does not reproduce a batch of
four (the float order differs, and grokking amplifies the difference). Each run directory holds

    RUN/group.json                  {"format", "runs": the batch's run directories in batch
                                    order (relative to RUN), "step": S or null, "finished"}
    RUN/state_0000050.safetensors   the run's full training state after 50 steps

`start` writes every run's record (step null) before the first step. `commit` writes every
run's state at the new step, then every run's record, then removes the older states. The first
record written at the new step is the commit point: from then on every run's state at that step
exists. The batch's step is the largest step that any of its records names, so a kill anywhere
leaves the batch at the new step or the previous one, never split. `settle` brings a batch to
that step before it resumes: checkpoints and states beyond it and temporary files are removed,
and every record names it (`store.truncate_metrics` cuts the metrics rows).

A run directory written before batch commits holds one `state.safetensors` and no record: it
reads as a batch of one, and `settle` moves its state to the step-tagged name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from grokinterp.errors import UsageError
from grokinterp.storage import store

RECORD_FILE = "group.json"
RECORD_FORMAT = "grokinterp-group-1"


@dataclass(frozen=True)
class BatchState:
    """The runs of a batch in batch order, the step all of them have saved (None before the
    first commit) and whether that step is the last."""

    runs: tuple[Path, ...]
    step: int | None
    finished: bool

    def same_runs(self, other: BatchState) -> bool:
        return [r.resolve() for r in self.runs] == [r.resolve() for r in other.runs]


def _write_record(run_dir: Path, runs: Sequence[Path], step: int | None, finished: bool) -> None:
    names = [os.path.relpath(run, run_dir) for run in runs]
    record = {"format": RECORD_FORMAT, "runs": names, "step": step, "finished": finished}
    store.atomic_write(Path(run_dir) / RECORD_FILE, json.dumps(record).encode())


def _read_record(run_dir: Path) -> BatchState | None:
    """The record in `run_dir` as written, or None when there is none."""
    path = Path(run_dir) / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable batch record ({exc})") from None
    try:
        if record["format"] != RECORD_FORMAT:
            raise ValueError(record["format"])
        runs = tuple(Path(os.path.normpath(Path(run_dir) / name)) for name in record["runs"])
        step = None if record["step"] is None else int(record["step"])
        return BatchState(runs, step, bool(record["finished"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not a grokinterp batch record ({exc})") from None


def start(run_dirs: Sequence[Path]) -> None:
    """Record the batch of new runs, in batch order, before anything is saved."""
    for run_dir in run_dirs:
        _write_record(run_dir, run_dirs, None, False)


def commit(
    run_dirs: Sequence[Path], step: int, states: Sequence[dict[str, Tensor]], finished: bool
) -> None:
    """Save every run's training state after `step` steps as one commit (module docstring);
    `states[r]` is the state of `run_dirs[r]`."""
    for run_dir, state in zip(run_dirs, states, strict=True):
        store.save_state(run_dir, step, state, finished)
    for run_dir in run_dirs:
        _write_record(run_dir, run_dirs, step, finished)
    for run_dir in run_dirs:
        for saved, path in store.list_states(run_dir):
            if saved < step:
                path.unlink()


def status(run_dir: Path) -> BatchState | None:
    """The batch of the run in `run_dir` and its committed step, read from every member's
    record; None when the directory has neither a record nor an older grokinterp's state.

    Safe while the batch trains in another process: a commit that lands between reading the
    records and checking the states removes the older states, so a missing state is checked
    again against fresh records before the batch is called damaged."""
    for _ in range(_READ_ATTEMPTS):
        try:
            return _status_once(run_dir)
        except _MissingState as exc:
            missing = exc.path
    raise UsageError(f"{missing}: missing; the batch is damaged")


_READ_ATTEMPTS = 5


class _MissingState(Exception):
    def __init__(self, path: Path):
        self.path = path


def _status_once(run_dir: Path) -> BatchState | None:
    run_dir = Path(run_dir)
    own = _read_record(run_dir)
    if own is None:
        legacy = run_dir / store.LEGACY_STATE_FILE
        if not legacy.exists():
            return None
        metadata = store.header_metadata(legacy)
        return BatchState((run_dir,), int(metadata["step"]), metadata["finished"] == "True")
    records = [_read_record(member) for member in own.runs]
    steps = [record.step for record in records if record and record.step is not None]
    if not steps:  # nothing committed (some records may be missing: killed in `start`)
        return BatchState(own.runs, None, False)
    for member, record in zip(own.runs, records, strict=True):
        if record is None or not record.same_runs(own):
            raise UsageError(
                f"{member} does not hold the batch that {run_dir / RECORD_FILE} names; the runs "
                "of a batch resume together, so restore it or move the batch away"
            )
    step = max(steps)
    for member in own.runs:
        if not store.state_path(member, step).exists():
            raise _MissingState(store.state_path(member, step))
    finished = any(record.finished for record in records if record.step == step)
    return BatchState(own.runs, step, finished)


def batches_of(run_dirs: Sequence[Path]) -> list[BatchState]:
    """The batches that these run directories belong to, each once, in the order first named;
    a directory without a committed state is refused."""
    batches: list[BatchState] = []
    for run_dir in run_dirs:
        if not Path(run_dir).is_dir():
            raise UsageError(f"{run_dir}: no such run directory")
        batch = status(run_dir)
        if batch is None or batch.step is None:
            raise UsageError(f"{run_dir}: no saved training state, nothing to resume")
        if not any(batch.same_runs(other) for other in batches):
            batches.append(batch)
    return batches


def resumable(run_dirs: Sequence[Path], epochs: int | None = None) -> list[BatchState]:
    """`batches_of(run_dirs)`, each checked for a resume: not finished, or (with `epochs`) to
    be trained on beyond its step. A finished batch is settled before it is refused."""
    batches = batches_of(run_dirs)
    for batch in batches:
        if epochs is not None and epochs <= batch.step:
            raise UsageError(f"--epochs {epochs} is not beyond the saved step {batch.step}")
        if batch.finished and epochs is None:
            settle(batch)  # completes a last commit that was killed half-way
            raise UsageError(f"{batch.runs[0]} has already finished training; --epochs N trains on")
    return batches


def settle(batch: BatchState) -> None:
    """Bring every run of `batch` to its committed step: remove what a killed commit left beyond
    it (checkpoints, states, temporary files) and make every record name it. Writes nothing
    when the batch is settled already."""
    for run_dir in batch.runs:
        legacy = run_dir / store.LEGACY_STATE_FILE
        if legacy.exists():
            os.replace(legacy, store.state_path(run_dir, batch.step))
        for epoch, path in store.list_checkpoints(run_dir):
            if epoch > batch.step:
                path.unlink()
        for step, path in store.list_states(run_dir):
            if step != batch.step:
                path.unlink()
        for folder in (run_dir, run_dir / store.CHECKPOINT_DIR):
            for path in folder.glob(".*.tmp-*"):
                path.unlink()
        record = _read_record(run_dir)
        if record is None or (record.step, record.finished) != (batch.step, batch.finished):
            _write_record(run_dir, batch.runs, batch.step, batch.finished)


def load_state(run_dir: Path) -> tuple[dict[str, Tensor], int, bool]:
    """The committed training state of one run (checked against its digest), its step and
    whether it is final."""
    batch = status(run_dir)
    if batch is None or batch.step is None:
        raise UsageError(f"{run_dir}: no saved training state")
    path = store.state_path(run_dir, batch.step)
    if not path.exists():  # an older grokinterp's run, not yet settled
        path = Path(run_dir) / store.LEGACY_STATE_FILE
    tensors, step, _ = store.read_state(path)
    return tensors, step, batch.finished
