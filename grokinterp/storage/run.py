"""A finished or still-training run directory, opened for a notebook.

run = grokinterp.open_run("checkpoints/small-seed0")
run.epochs                 # epochs that have a complete checkpoint
run.metrics()              # pandas DataFrame indexed by epoch, one row per epoch
model = run.model(epoch=1500)   # the hooked model (GrokTransformer, GrokMLP) at that epoch
tokens, labels = run.inputs("test")   # the test pairs' tokens ([a, b, =]) and their answers
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage import store

SPLITS = ("train", "test", "all")


@dataclass
class Run:
    """A run directory: its config, split, metrics and checkpoint series."""

    path: Path
    config: RunConfig = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_dir():
            raise UsageError(f"{self.path}: no such run directory")
        self.config = store.read_config(self.path)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def checkpoints(self) -> list[Path]:
        """Paths of the complete checkpoints, by epoch (re-read on each access)."""
        return [path for _, path in store.list_checkpoints(self.path)]

    @property
    def epochs(self) -> list[int]:
        return [epoch for epoch, _ in store.list_checkpoints(self.path)]

    @property
    def train_indices(self) -> Tensor:
        """Sorted train pair indices a * p + b (int64), as stored with the run."""
        return store.read_split(self.path)

    def inputs(self, split: str = "all") -> tuple[Tensor, Tensor]:
        """Model inputs in the run's input format (`grokinterp.data.tokens`: `[a, b, =]` by
        default; int64, [pairs, n_ctx]) and their labels (int64, [pairs]) of the run's task: its
        training pairs, its test pairs or its whole domain (`split`), in grid-index order
        (a * n + b)."""
        from grokinterp import data
        from grokinterp.tasks import task_of

        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        task, train = task_of(self.config), self.train_indices
        index = {"train": train, "test": data.test_indices(task, train), "all": task.domain}[split]
        return data.grid_tokens(self.config, index), data.labels(self.config)[index]

    def metrics(self) -> pd.DataFrame:
        """Per-epoch losses and accuracies (float64), indexed by epoch (int64: the index, not a
        column); only complete rows, so it is safe on a run that is still training."""
        table = pd.DataFrame(store.read_metrics_array(self.path), columns=store.METRIC_COLUMNS)
        return table.astype({"epoch": "int64"}).set_index("epoch")

    def checkpoint_path(self, epoch: int | None = None, index: int | None = None) -> Path:
        """The checkpoint at `epoch`, or at position `index` of the series (default: the last)."""
        series = store.list_checkpoints(self.path)
        if not series:
            raise UsageError(f"{self.path}: no checkpoints yet")
        if epoch is not None and index is not None:
            raise UsageError("give an epoch or an index, not both")
        if epoch is not None:
            by_epoch = dict(series)
            if epoch not in by_epoch:
                raise UsageError(f"{self.path}: no checkpoint at epoch {epoch}")
            return by_epoch[epoch]
        try:
            return series[-1 if index is None else index][1]
        except IndexError:
            raise UsageError(f"{self.path}: no checkpoint at index {index}") from None

    def state_dict(self, epoch: int | None = None, index: int | None = None) -> dict[str, Tensor]:
        """Float32 weights (HookedTransformer names) of one checkpoint."""
        return store.load_checkpoint(self.checkpoint_path(epoch, index))[0]

    def model(self, epoch: int | None = None, index: int | None = None):
        """The run's hooked module (`GrokTransformer`, `GrokMLP`, ...) holding one checkpoint's
        weights, in eval mode."""
        from grokinterp.models import architecture

        model = architecture(self.config).hooked()
        model.load_state_dict(self.state_dict(epoch, index))
        return model.eval()


def open_run(path: str | Path) -> Run:
    """Open a run directory written by `grokinterp train`."""
    return Run(Path(path))
