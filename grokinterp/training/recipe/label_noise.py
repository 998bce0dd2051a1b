"""Label noise: a stated fraction of a run's training labels replaced by other labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor

from grokinterp import data

if TYPE_CHECKING:
    from grokinterp.config import RunConfig


def noisy_labels(cfg: RunConfig, train: Int[Tensor, " n_train"]) -> dict[int, int]:
    """{grid index: new label} for round(label_noise x n_train) training pairs, drawn from a
    generator seeded by `cfg.data_seed` alone: the pairs uniformly without replacement, each new
    label uniform over the classes other than the true one ((y + k) mod classes, k uniform in
    1..classes-1). Empty at label_noise 0."""
    count = round(cfg.label_noise * len(train))
    if count == 0:
        return {}
    generator = torch.Generator().manual_seed(cfg.data_seed)
    chosen = train[torch.randperm(len(train), generator=generator)[:count]]
    shift = torch.randint(1, cfg.d_vocab_out, (count,), generator=generator)
    new = (data.labels(cfg)[chosen] + shift) % cfg.d_vocab_out
    return dict(zip(chosen.tolist(), new.tolist(), strict=True))
