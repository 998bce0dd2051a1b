"""Recorded metric curves of a foreign file -> per-epoch metric columns, and the final epoch.

The curves the public grokking code saves (`train_losses`, `test_losses`, and the
TransformerLens demo's `train_accs` / `test_accs`) hold one value per epoch, or one every c
epochs: the paper's main saved run records the train loss at each of its 107,791 epochs and the
test loss every 10 (10,780 values). The longest curve sets the epochs covered, n; a curve of
n_k < n values is read as recorded at epochs 0, c, 2c, ... for the one cadence c with
ceil(n / c) = n_k, and its column is NaN at the other epochs.

Each value is the metric before that epoch's step (the paper's `do_a_training_step`), so a
curve of n values covers the run of n steps; the paper's final.pth labels its weights with the
epoch count n, its per-epoch saves label the weights after the step of epoch e as e (n = e + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from grokinterp.errors import UsageError

CURVE_COLUMNS = {
    "train_losses": "train_loss",
    "test_losses": "test_loss",
    "train_accs": "train_acc",
    "test_accs": "test_acc",
}
"""The file's key -> grokinterp's metrics column."""


@dataclass(frozen=True)
class Curves:
    """The file's curves as columns over the epochs 0..n_epochs-1 (float64, NaN unrecorded)."""

    columns: dict[str, np.ndarray]
    notes: list[str]
    """One line per curve recorded less often than every epoch."""

    @property
    def n_epochs(self) -> int | None:
        """Epochs covered (the length of the longest curve); None without curves."""
        return len(next(iter(self.columns.values()))) if self.columns else None


def cadence(n_epochs: int, n_values: int) -> int | None:
    """The recording interval c of a curve of `n_values` over `n_epochs` epochs: the ratio
    (n_epochs - 1) / (n_values - 1) when it is a whole number (the first and last epochs both
    recorded, as in the paper's run: 107,790 / 10,779 = 10), else the one c with
    ceil(n_epochs / c) == n_values; None when neither settles it."""
    if n_values == 1:
        return n_epochs  # only epoch 0 recorded
    if (n_epochs - 1) % (n_values - 1) == 0:
        return (n_epochs - 1) // (n_values - 1)
    low = math.ceil(n_epochs / n_values)
    high = math.ceil(n_epochs / (n_values - 1)) - 1
    return low if low == high else None


def read_curves(data: dict, enabled: bool) -> Curves:
    """The recorded curves of `data` (none when not `enabled`); UsageError when a curve is not a
    list of numbers or no single cadence fits its length."""
    raw = {}
    for key, column in CURVE_COLUMNS.items():
        if enabled and key in data:
            raw[column] = _numbers(data[key], key)
    if not raw:
        return Curves({}, [])
    n = max(len(values) for values in raw.values())
    columns, notes = {}, []
    for column, values in raw.items():
        step = 1 if len(values) == n else cadence(n, len(values))
        if step is None:
            raise UsageError(
                f"{len(values)} values of {column} fit no single cadence over the {n} epochs of "
                "the longest curve; pass --no-metrics to import without the curves"
            )
        full = np.full(n, np.nan)
        full[::step] = values
        columns[column] = full
        if step > 1:
            notes.append(f"{column} recorded every {step} epochs: blank at the others")
    return Curves(columns, notes)


def _numbers(value: Any, key: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.tolist()
    try:
        values = np.asarray([float(x) for x in value], dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise UsageError(f"'{key}' is not a list of numbers") from None
    if values.size == 0:
        raise UsageError(f"'{key}' is empty")
    return values


def final_epoch(data: dict, flag: int | None, curves: Curves) -> tuple[int, str | None]:
    """The epoch of the file's single final model: its 'epoch', else --epoch, else the number of
    epochs its curves cover; with a note saying where it came from when the file does not say.

    UsageError when none of them is there, when --epoch contradicts the file, or when the file's
    epoch E is neither n nor n - 1 for curves of n epochs."""
    stated = data.get("epoch")
    n = curves.n_epochs
    if stated is not None:
        if isinstance(stated, Tensor) and stated.dim() == 0 and not stated.is_floating_point():
            stated = int(stated)
        if isinstance(stated, bool) or not isinstance(stated, int) or stated < 0:
            raise UsageError(f"the file's 'epoch' is {stated!r}, not an epoch")
        if flag is not None and flag != stated:
            raise UsageError(f"the file says epoch {stated} but --epoch says {flag}")
        if n is not None and stated not in (n, n - 1):
            raise UsageError(
                f"the file's epoch {stated} does not end its curves, which cover {n} epochs"
            )
        return stated, None
    if flag is not None:
        if flag < 0:
            raise UsageError(f"--epoch must be non-negative, got {flag}")
        return flag, f"epoch {flag} of the final weights from --epoch (the file has no 'epoch')"
    if n is None:
        raise UsageError("the file records no epoch and no curves to count them: pass --epoch N")
    return n, f"epoch {n} of the final weights inferred from the curves' length (no 'epoch')"
