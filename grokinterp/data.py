"""The data set of a run: its task's pairs and labels, and the seeded train/test split.

Pair (a, b) is named by its grid index a * n + b (n the task's element count), so a split is the
sorted list of grid indices of training pairs, stored with each run; no analysis re-derives it.
For a task whose domain is every pair (addition), grid index and position coincide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor

from grokinterp.tasks import Task, task_of

if TYPE_CHECKING:  # the models import this module, and RunConfig.validate imports the models
    from grokinterp.config import RunConfig


def pair_operands(n: int) -> tuple[Int[Tensor, " pairs"], Int[Tensor, " pairs"]]:
    """The operands (a, b) of all n^2 grid pairs, in grid-index order (int64)."""
    index = torch.arange(n * n)
    return index // n, index % n


def tokens(
    cfg: RunConfig, a: Int[Tensor, "*pairs"], b: Int[Tensor, "*pairs"]
) -> Int[Tensor, "*pairs n_ctx"]:
    """The model inputs of the pairs (a, b) in the run's input format (int64; a new last axis
    of `cfg.n_ctx` positions): `[a, b, =]`, `[a, b]` or `[a, op, b, =]` with the symbols' ids
    of `cfg.symbol_ids` (`grokinterp.config.INPUT_FORMATS`). The one place where tokens are
    built."""
    operands, symbols = {"a": a, "b": b}, cfg.symbol_ids
    columns = [
        operands[slot] if slot in operands else torch.full_like(a, symbols[slot])
        for slot in cfg.input_layout
    ]
    return torch.stack(columns, dim=-1)


def grid_tokens(cfg: RunConfig, index: Int[Tensor, " m"]) -> Int[Tensor, "m n_ctx"]:
    """The model inputs (`tokens`) of the pairs with grid indices `index` (a * n + b)."""
    n = cfg.n_elements
    return tokens(cfg, index // n, index % n)


def all_tokens(cfg: RunConfig) -> Int[Tensor, "pairs n_ctx"]:
    """The model inputs (`tokens`) of all n^2 grid pairs, in grid-index order (int64)."""
    return tokens(cfg, *pair_operands(cfg.n_elements))


def labels(cfg: RunConfig) -> Int[Tensor, " grid"]:
    """The label of each grid pair (int64), -1 for pairs outside the task's domain."""
    return task_of(cfg).table.flatten()


def train_indices(cfg: RunConfig) -> Int[Tensor, " n_train"]:
    """Sorted grid indices of the training pairs, drawn from `cfg.data_seed` alone (int64)."""
    domain = task_of(cfg).domain
    generator = torch.Generator().manual_seed(cfg.data_seed)
    chosen = torch.randperm(len(domain), generator=generator)[: cfg.n_train]
    return domain[chosen].sort().values


def test_indices(task: Task, train: Int[Tensor, " n_train"]) -> Int[Tensor, " n_test"]:
    """Sorted grid indices of the domain pairs not in the training set (int64)."""
    domain = task.domain
    return domain[~torch.isin(domain, train)]
