"""A finished or still-training run directory, opened for a notebook.

run = grokinterp.open_run("checkpoints/small-seed0")
run.epochs                 # epochs that have a complete checkpoint
run.metrics()              # pandas DataFrame indexed by epoch, one row per epoch
model = run.model(epoch=1500)   # the hooked model (GrokTransformer, GrokMLP) at that epoch
tokens, labels = run.inputs("test")   # the test pairs' tokens ([a, b, =]) and their answers
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage import store

SPLITS = ("train", "test", "all")


@dataclass
class Run:
    """A run directory: its config, split, metrics and checkpoint series. What the config and
    split define (task, model family, split, basis) is built once, on first use, and kept: a
    run directory's config and split never change."""

    path: Path
    config: RunConfig = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_dir():
            raise UsageError(f"{self.path}: no such run directory")
        self.config = store.read_config(self.path)
        self._bases: dict[str | None, object] = {}

    @cached_property
    def task(self):
        """The run's `grokinterp.tasks.Task`."""
        from grokinterp.tasks import task_of

        return task_of(self.config)

    @cached_property
    def architecture(self):
        """The run's model family for its config (`grokinterp.models.Architecture`)."""
        from grokinterp.models import architecture

        return architecture(self.config)

    def basis(self, name: str | None = None):
        """The task's basis `name` (default: the task's own, its first), or None for the default
        of a task with no known basis. UsageError for a name that does not belong to the task."""
        if name not in self._bases:
            task = self.task
            self._bases[name] = task.basis(name) if task.bases or name else None
        return self._bases[name]

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

    @cached_property
    def train_indices(self) -> Tensor:
        """Sorted train pair indices a * p + b (int64), as stored with the run."""
        return store.read_split(self.path)

    @cached_property
    def test_indices(self) -> Tensor:
        """Sorted grid indices of the task's domain pairs outside the training set (int64)."""
        from grokinterp import data

        return data.test_indices(self.task, self.train_indices)

    @cached_property
    def _config_data(self) -> dict:
        """config.json as data, `epochs` left out (a run may be trained on for longer)."""
        data = json.loads((self.path / store.CONFIG_FILE).read_text())
        data.pop("epochs", None)
        return data

    def inputs(self, split: str = "all") -> tuple[Tensor, Tensor]:
        """Model inputs in the run's input format (`grokinterp.data.tokens`: `[a, b, =]` by
        default; int64, [pairs, n_ctx]) and their labels (int64, [pairs]) of the run's task: its
        training pairs, its test pairs or its whole domain (`split`), in grid-index order
        (a * n + b)."""
        from grokinterp import data

        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        task = self.task
        index = {"train": self.train_indices, "test": self.test_indices, "all": task.domain}[split]
        return data.grid_tokens(self.config, index), task.table.flatten()[index]

    def metrics(self) -> pd.DataFrame:
        """Per-epoch losses and accuracies (float64), indexed by epoch (int64: the index, not a
        column); only complete rows, so it is safe on a run that is still training."""
        table = pd.DataFrame(store.read_metrics_array(self.path), columns=store.METRIC_COLUMNS)
        return table.astype({"epoch": "int64"}).set_index("epoch")

    def checkpoint_path(self, epoch: int | None = None, index: int | None = None) -> Path:
        """The checkpoint at `epoch`, or at position `index` of the series (default: the last)."""
        return self._checkpoint(epoch, index)[1]

    def _checkpoint(self, epoch: int | None, index: int | None) -> tuple[int, Path]:
        """(epoch, path) of the checkpoint `checkpoint_path` names."""
        series = store.list_checkpoints(self.path)
        if not series:
            raise UsageError(f"{self.path}: no checkpoints yet")
        if epoch is not None and index is not None:
            raise UsageError("give an epoch or an index, not both")
        if epoch is not None:
            by_epoch = dict(series)
            if epoch not in by_epoch:
                raise UsageError(f"{self.path}: no checkpoint at epoch {epoch}")
            return epoch, by_epoch[epoch]
        try:
            return series[-1 if index is None else index]
        except IndexError:
            raise UsageError(f"{self.path}: no checkpoint at index {index}") from None

    def state_dict(self, epoch: int | None = None, index: int | None = None) -> dict[str, Tensor]:
        """Float32 weights (HookedTransformer names) of one checkpoint."""
        epoch, path = self._checkpoint(epoch, index)
        return self.checkpoint_state(path, epoch)

    def checkpoint_state(self, path: Path, epoch: int) -> dict[str, Tensor]:
        """The state dict (in the family's order) of this run's checkpoint at `path`, which the
        series lists at `epoch`. Its digest is checked, and its metadata against the run: its
        config as data against config.json's (`epochs` aside: a run may be trained on for
        longer), parsed and compared as a `RunConfig` only when the data differ (a config
        written in an older format), and its epoch against `epoch`. UsageError naming the file
        when any of that fails."""
        tensors, metadata = store.read_checkpoint(path)
        stored = metadata.get("config", "")
        try:
            data = json.loads(stored)
            data.pop("epochs", None)
        except (ValueError, AttributeError):
            data = None
        if data != self._config_data:
            stored_cfg = store.checkpoint_config(path, metadata)
            if stored_cfg.replace(epochs=self.config.epochs) != self.config:
                raise UsageError(f"{path}: checkpoint of a different run config than {self.path}")
        if (stored_epoch := store.checkpoint_epoch(path, metadata)) != epoch:
            raise UsageError(f"{path}: file name says epoch {epoch}, metadata says {stored_epoch}")
        return store.ordered_state(path, tensors, self.architecture.state_names())

    def model(self, epoch: int | None = None, index: int | None = None):
        """The run's hooked module (`GrokTransformer`, `GrokMLP`, ...) holding one checkpoint's
        weights, in eval mode."""
        model = self.architecture.hooked()
        model.load_state_dict(self.state_dict(epoch, index))
        return model.eval()


def open_run(path: str | Path) -> Run:
    """Open a run directory written by `grokinterp train`."""
    return Run(Path(path))
