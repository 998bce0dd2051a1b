"""The one pass over a run's checkpoint series: its checkpoints read in batches of CHUNK, each
verified against the run (`grokinterp.storage.run.Run.checkpoint_state`) and handed on as a
`Checkpoints` batch of one `AnalysisContext`, for the column families
(`grokinterp.analysis.columns`) or any other per-checkpoint measure (the early-warning
indicators)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from grokinterp.analysis.allocator import keeping_freed_memory
from grokinterp.analysis.context import AnalysisContext, Checkpoints

CHUNK = 8
"""Checkpoints measured together (memory ~ CHUNK * pairs * d_mlp * hidden layers floats). The
measures of a checkpoint depend, in their last bits, on how many share its batch."""


def checkpoint_batches(
    run,
    ctx: AnalysisContext,
    todo: list[tuple[int, Path]],
    series: list[tuple[int, Path]] | None = None,
) -> Iterator[Checkpoints]:
    """`todo` ((epoch, path) of checkpoints of `run`, by epoch) in batches of CHUNK, in order.
    With `series` (the run's whole series, which holds `todo`) each batch also holds the state
    of the checkpoint before each of its own in the series (None before the first), for
    `update_cos`: read from the batch itself or the one before, else from its file. Freed
    memory is kept for the next batch until the last is done (`keeping_freed_memory`)."""
    position = {epoch: i for i, (epoch, _) in enumerate(series or ())}
    kept: dict[int, dict] = {}  # the batch before
    with keeping_freed_memory():
        for start in range(0, len(todo), CHUNK):
            part = todo[start : start + CHUNK]
            states = {epoch: run.checkpoint_state(path, epoch) for epoch, path in part}
            previous = None
            if series is not None:
                at_hand = kept | states
                previous = [_before(run, series, position[epoch], at_hand) for epoch in states]
            yield Checkpoints(ctx, list(states), list(states.values()), previous)
            kept = states


def _before(run, series: list[tuple[int, Path]], i: int, known: dict[int, dict]) -> dict | None:
    """The state of the checkpoint before `series[i]` (None for the first)."""
    if i == 0:
        return None
    epoch, path = series[i - 1]
    return known[epoch] if epoch in known else run.checkpoint_state(path, epoch)
