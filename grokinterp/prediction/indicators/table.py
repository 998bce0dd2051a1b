"""The indicators of a run's checkpoints as one table (I/O: reads the run directory and, when
present, the analysis's measures table). Written by `grokinterp indicators` as
`indicators.csv` in the analysis directory (`grokinterp.storage.analysis_format`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from grokinterp.errors import UsageError
from grokinterp.progress import Progress
from grokinterp.storage import store

NANDA_COLUMNS = ("restricted_loss", "excluded_loss", "gini_W_E", "gini_W_L", "fve_share")
"""Nanda et al.'s progress measures taken from the measures table as predictors. Restricted and
excluded loss use the key frequencies of the run's LAST checkpoint: as predictors they look
ahead, which `grokinterp.prediction.forecast` and the evaluation mark."""


def run_indicators(run, upto: int | None = None, progress: bool = False) -> pd.DataFrame:
    """One row per complete checkpoint of `run` (a `grokinterp.storage.run.Run`) at epochs <= `upto`
    (default all): `epoch`, the train and test loss and accuracy of the metrics at that epoch,
    `weight_norm` (sum of squares), every `checkpoint_indicators` column and the
    critical-slowing-down columns of `with_slowing` and the loss curves' Hankel-DMD residual of
    `with_loss_dmd` (computed on the rows up to `upto` only:
    the table at `upto` never sees later epochs). UsageError when there is no checkpoint."""
    from grokinterp.analysis.context import AnalysisContext
    from grokinterp.analysis.loop import checkpoint_batches
    from grokinterp.analysis.measures import weights
    from grokinterp.prediction.indicators import (
        checkpoint_indicators,
        with_loss_dmd,
        with_slowing,
    )

    series = [(e, p) for e, p in store.list_checkpoints(run.path) if upto is None or e <= upto]
    if not series:
        raise UsageError(f"{run.path}: no checkpoint at or before epoch {upto}")
    ctx = AnalysisContext.of_run(run, None, [])
    rows, count = [], 0
    bar = Progress(len(series), enabled=progress, unit="checkpoint")
    for ckpts in checkpoint_batches(run, ctx, series):
        columns = checkpoint_indicators(ctx.model, ckpts.params, ckpts.internals)
        columns["weight_norm"] = sum(weights.sum_of_squares(ckpts.params).values())
        rows.append(
            pd.DataFrame({"epoch": ckpts.epochs} | {k: v.numpy() for k, v in columns.items()})
        )
        count += len(ckpts.epochs)
        bar.update(count, partial(str, f"epoch {ckpts.epochs[-1]}"))
    bar.close(lambda: f"{len(series)} checkpoints")
    metrics = run.metrics()
    if upto is not None:
        metrics = metrics.loc[:upto]
    table = pd.concat(rows, ignore_index=True)
    table = table.join(metrics[["train_loss", "test_loss", "train_acc", "test_acc"]], on="epoch")
    return with_loss_dmd(with_slowing(table, metrics), metrics)


def with_measures(table: pd.DataFrame, analysis_dir: Path) -> pd.DataFrame:
    """`table` with the NANDA_COLUMNS of the analysis's measures table joined by epoch (those the
    table has; nothing added when the directory holds no measures table)."""
    from grokinterp.storage.analysis_format import MEASURES_FILE, load_measures

    if not (Path(analysis_dir) / MEASURES_FILE).exists():
        return table
    measures = load_measures(analysis_dir)
    have = [c for c in NANDA_COLUMNS if c in measures.columns]
    return table.join(measures.set_index("epoch")[have], on="epoch")
