"""The data set: every pair (a, b) of residues, its label, and the seeded train/test split.

Pair index i stands for (a, b) = (i // p, i % p), i.e. i = a * p + b. The split is stored with each
run as the explicit sorted list of train pair indices, so no analysis ever re-derives it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Int
from torch import Tensor

from grokinterp.config import RunConfig

OPERATIONS: dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    "add": lambda a, b, p: (a + b) % p,
}
"""Registry of modular operations: name -> f(a, b, p) over integer tensors."""


def pair_operands(p: int) -> tuple[Int[Tensor, " pairs"], Int[Tensor, " pairs"]]:
    """The operands (a, b) of all p^2 pairs, in pair-index order (int64)."""
    index = torch.arange(p * p)
    return index // p, index % p


def all_tokens(p: int) -> Int[Tensor, "pairs 3"]:
    """Input sequences `[a, b, =]` of all p^2 pairs (int64); `=` is token id p."""
    a, b = pair_operands(p)
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)


def labels(cfg: RunConfig) -> Int[Tensor, " pairs"]:
    """The answer `(a op b) mod p` of each pair (int64)."""
    a, b = pair_operands(cfg.p)
    return OPERATIONS[cfg.operation](a, b, cfg.p)


def train_indices(cfg: RunConfig) -> Int[Tensor, " n_train"]:
    """Sorted pair indices of the training set, drawn from `cfg.data_seed` alone (int64)."""
    generator = torch.Generator().manual_seed(cfg.data_seed)
    chosen = torch.randperm(cfg.n_pairs, generator=generator)[: cfg.n_train]
    return chosen.sort().values


def test_indices(p: int, train: Int[Tensor, " n_train"]) -> Int[Tensor, " n_test"]:
    """Sorted pair indices not in the training set (int64)."""
    is_train = torch.zeros(p * p, dtype=torch.bool)
    is_train[train] = True
    return torch.nonzero(~is_train).flatten()


def swap_unseen(p: int, train: Int[Tensor, " n_train"], pairs: Int[Tensor, " n"]) -> Tensor:
    """For each pair (a, b) in `pairs`, whether its swap (b, a) is NOT a training pair (bool).

    Addition commutes, so a test pair whose swap was trained on can be answered by memorisation;
    accuracy on the others is the honest measure of generalisation.
    """
    is_train = torch.zeros(p * p, dtype=torch.bool)
    is_train[train] = True
    swapped = (pairs % p) * p + pairs // p
    return ~is_train[swapped]
