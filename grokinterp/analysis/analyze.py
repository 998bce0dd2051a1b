"""Measure every checkpoint of a run: `grokinterp analyze --ckpt-dir RUN`.

Writes the analysis directory (default `analyses/<run-name>/`, format in
`grokinterp.storage.analysis_format`). The measures of the circuit are taken in the task's basis
(the Fourier basis for a + b and a - b, the characters of Z_p^* for a * b and a / b); the key
components come from the last checkpoint, and restricted and excluded loss use them at every
checkpoint. A task with no known basis gets the measures that need none (losses, accuracy, weight
norm, phases by the loss curves), and the summary lists the others as not applicable.

Re-running measures only what is new: a stored row is reused only when its checkpoint's digest,
the run's config and split, the basis and the key components are all unchanged. The rows measured
so far are kept through a kill or a Ctrl-C (`grokinterp.storage.analysis_dir`), so the next run goes
on from them; the directory is refused, before any work, when it belongs to another run.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from grokinterp.analysis.columns import measures_table, required_columns
from grokinterp.analysis.columns import neurons as neuron_columns
from grokinterp.analysis.columns.weights import weight_norm_ratio
from grokinterp.analysis.context import AnalysisContext, key_components
from grokinterp.analysis.loop import checkpoint_batches
from grokinterp.analysis.summary import summarise
from grokinterp.analysis.views import final_views
from grokinterp.errors import Interrupted, UsageError
from grokinterp.progress import Progress
from grokinterp.storage import run_lock, store
from grokinterp.storage.analysis_dir import (
    FINAL_VIEWS_FILE,
    MEASURES_FILE,
    NEURONS_FILE,
    PROGRESS_EVERY_S,
    SUMMARY_FILE,
    check_owner,
    commit,
    default_analysis_dir,
    run_fingerprint,
)
from grokinterp.storage.analysis_format import (
    Summary,
    load_measures,
    load_neurons,
    write_analysis,
)
from grokinterp.storage.analysis_progress import Measured, resume_progress, save_progress
from grokinterp.storage.outputs import check_output_dir
from grokinterp.storage.run import Run, open_run

__all__ = ["Summary", "analyze_run", "load_measures"]


def analyze_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    progress: bool = True,
    basis_name: str | None = None,
    replace: bool = False,
) -> Summary:
    """Measure every complete checkpoint of a run, commit the analysis directory (default
    `analysis_dir.default_analysis_dir(run_dir)`) and return its summary, whose `path` is the
    analysis directory.

    UsageError before any work when `out_dir` cannot be written or holds another run's analysis,
    or one with checkpoints the run no longer has (`replace` overwrites those). `Interrupted` (a
    KeyboardInterrupt) after keeping the rows measured so far, for the next call to go on from.
    """
    run = open_run(run_dir)
    basis = run.basis(basis_name)
    series = store.list_checkpoints(run.path)
    if not series:
        raise UsageError(f"{run.path / store.CHECKPOINT_DIR}: no checkpoints to analyse")
    out = Path(out_dir) if out_dir is not None else default_analysis_dir(run.path)
    check_output_dir(out, "--out")
    with run_lock.holding_one(out, doing="analysed"):
        return _analyze_into(out, run, basis, series, progress, replace)


def _analyze_into(out: Path, run: Run, basis, series, progress: bool, replace: bool) -> Summary:
    """`analyze_run` once `out` is locked."""
    digests = {epoch: store.checkpoint_digest(path) for epoch, path in series}
    fingerprint = run_fingerprint(run.config, run.train_indices)
    stale = check_owner(out, run.path, fingerprint, digests, replace, _summary_and_epochs)
    final_epoch, final_path = series[-1]
    final_state = run.checkpoint_state(final_path, final_epoch)
    keys = key_components(run.architecture, final_state, basis)
    ctx = AnalysisContext.of_run(run, basis, keys)
    identity = (fingerprint, basis and basis.title, keys)
    neurons_per_ckpt = run.architecture.hidden_layers * run.config.d_mlp

    # a table written before a measure existed lacks its column: measure it all again
    required = required_columns(ctx)
    measured, final_fve = _previous(out, identity, digests, neurons_per_ckpt, required)
    kept = None if replace or stale else _kept_summary(out, measured, series, basis)
    if kept is not None:
        if not (out / FINAL_VIEWS_FILE).is_file():  # an analysis without the final views
            views = final_views(
                run.task, run.architecture, final_state, final_epoch, basis, kept.key_components
            )
            commit(out, {FINAL_VIEWS_FILE: views.to_bytes()})
        return kept
    measured, final_fve = resume_progress(out, identity, digests, measured, final_fve)
    done = set(measured.table["epoch"].tolist())
    todo = [(epoch, path) for epoch, path in series if epoch not in done]
    bar = Progress(len(todo), enabled=progress, unit="checkpoint")
    saved_at, fresh, count = time.monotonic(), False, 0
    try:
        for ckpts in checkpoint_batches(run, ctx, todo, series):
            table = measures_table(ctx, ckpts)
            if basis is None:
                dominant = torch.zeros(len(ckpts.epochs), neurons_per_ckpt, dtype=torch.int64)
                fve = torch.zeros(len(ckpts.epochs), neurons_per_ckpt)
            else:
                dominant, fve, by_component = neuron_columns.per_neuron(ckpts)
                if ckpts.epochs[-1] == final_epoch:
                    final_fve = by_component[-1]
            measured, fresh = measured.extend(Measured(table, dominant, fve)), True
            if time.monotonic() - saved_at >= PROGRESS_EVERY_S:
                save_progress(out, identity, digests, measured, final_fve)
                saved_at, fresh = time.monotonic(), False
            count += len(ckpts.epochs)
            bar.update(count, partial(str, f"epoch {ckpts.epochs[-1]}"))
    except KeyboardInterrupt:
        bar.close(lambda: "interrupted")
        if fresh:
            save_progress(out, identity, digests, measured, final_fve)
        raise Interrupted(
            f"{len(measured.table)} of {len(series)} checkpoints measured are kept in {out}; "
            "run the same command to go on from them"
        ) from None
    bar.close(lambda: f"{len(series)} checkpoints measured")

    summary = summarise(ctx, run, measured.table, final_state, digests)
    measured.table["weight_norm_ratio"] = weight_norm_ratio(measured.table, summary.phases)
    arrays = {}
    if basis is not None:
        arrays = {
            "epochs": torch.tensor(measured.table["epoch"].to_numpy(), dtype=torch.int64),
            "dominant_frequency": measured.dominant.to(torch.int64),
            "fve": measured.fve.to(torch.float32),
            "final_fve_by_frequency": final_fve.to(torch.float32),
        }
    views = final_views(
        run.task, run.architecture, final_state, final_epoch, basis, summary.key_components
    )
    write_analysis(out, measured.table, arrays, summary, views, remove=stale)
    return dataclasses.replace(summary, path=out)


def _kept_summary(out: Path, measured: Measured, series, basis) -> Summary | None:
    """The summary of the committed analysis in `out` when it already measured every checkpoint
    of `series` (`measured`: its rows still valid, the progress file's not included) and holds
    its measures table, its summary (in this version's format) and, with a basis, its neurons
    file: then analysing again measures nothing and keeps those files' bytes (a summary is
    computed from values at full precision, which measures.csv rounds to 10 digits). Else None."""
    if len(measured.table) != len(series):
        return None
    needed = [SUMMARY_FILE, MEASURES_FILE] + ([NEURONS_FILE] if basis else [])
    if not all((out / name).is_file() for name in needed):
        return None
    summary = Summary.load(out)
    return summary if summary.to_bytes() == (out / SUMMARY_FILE).read_bytes() else None


def _summary_and_epochs(out: Path) -> tuple[Summary, list[int]]:
    """The summary of the analysis in `out` and the epochs of its measures table."""
    return Summary.load(out), [int(e) for e in load_measures(out)["epoch"]]


def resummarise(run_dir: str | Path, analysis_dir: str | Path) -> Summary:
    """Rewrite an analysis's summary.json with today's rules from its measures table and the
    run's last checkpoint (the table's last epoch), keeping the table and neurons file: for a
    shipped analysis whose run keeps only some of its checkpoints. UsageError when the run's
    last checkpoint is not the table's last row."""
    run = open_run(run_dir)
    table = load_measures(analysis_dir)
    series = store.list_checkpoints(run.path)
    if not series or series[-1][0] != int(table["epoch"].iloc[-1]):
        raise UsageError(f"{run.path}: its last checkpoint is not the last row of {analysis_dir}")
    basis = run.basis()
    final_state = run.checkpoint_state(series[-1][1], series[-1][0])
    ctx = AnalysisContext.of_run(run, basis, key_components(run.architecture, final_state, basis))
    digests = {epoch: store.checkpoint_digest(path) for epoch, path in series}
    summary = summarise(ctx, run, table, final_state, digests)
    summary.write(Path(analysis_dir))
    return dataclasses.replace(summary, path=Path(analysis_dir))


def _previous(out: Path, identity, digests: dict, d_mlp: int, required: tuple[str, ...]):
    """The rows of an earlier analysis of the same run, basis and key components whose
    checkpoints are unchanged (same digest), with its final FVE table; else nothing (also when
    its table lacks a `required` column, written before that measure existed)."""
    empty = Measured.empty(d_mlp), None
    try:
        summary = Summary.load(out)
        basis_title = summary.basis["title"] if summary.basis else None
        if (summary.run_fingerprint, basis_title, summary.measured_components) != identity:
            return empty
        table = load_measures(out)
        stored = load_neurons(out)
    except UsageError:
        return empty
    if not set(required) <= set(table.columns):
        return empty
    epochs = table["epoch"].to_numpy()
    recorded = summary.checkpoint_digests
    same = np.array(
        [bool(digests.get(int(e))) and recorded.get(str(e)) == digests[int(e)] for e in epochs],
        dtype=bool,
    )
    final_is_last = int(epochs[-1]) == max(digests) and same[-1]
    if stored and not final_is_last:  # the final FVE table is the final checkpoint's: redo it
        same &= epochs != max(digests)
    if not same.any():
        return empty
    if stored:
        if not torch.equal(stored["epochs"], torch.tensor(epochs)):
            return empty
        keep = torch.from_numpy(same)
        measured = Measured(
            table[same].reset_index(drop=True),
            stored["dominant_frequency"][keep],
            stored["fve"][keep],
        )
        return measured, stored["final_fve_by_frequency"] if final_is_last else None
    zeros = torch.zeros(int(same.sum()), d_mlp)
    return Measured(table[same].reset_index(drop=True), zeros.long(), zeros), None
