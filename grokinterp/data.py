"""The data set of a run: its task's pairs and labels, and the seeded train/test split.

Pair (a, b) is named by its grid index a * n + b (n the task's element count), so a split is the
sorted list of grid indices of training pairs, stored with each run; no analysis re-derives it.
For a task whose domain is every pair (addition), grid index and position coincide.
"""

from __future__ import annotations

import torch
from jaxtyping import Int
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.tasks import Task, task_of


def pair_operands(n: int) -> tuple[Int[Tensor, " pairs"], Int[Tensor, " pairs"]]:
    """The operands (a, b) of all n^2 grid pairs, in grid-index order (int64)."""
    index = torch.arange(n * n)
    return index // n, index % n


def all_tokens(n: int) -> Int[Tensor, "pairs 3"]:
    """Input sequences `[a, b, =]` of all n^2 grid pairs (int64); `=` is token id n."""
    a, b = pair_operands(n)
    return torch.stack([a, b, torch.full_like(a, n)], dim=1)


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
