"""Training objectives: the loss a run minimises, per run, in float64.

Every objective sees the logits divided by the run's fixed output temperature T
(`RunConfig.temperature`) and averages over the real pairs of each run (`mask` 1). metrics.csv
records the cross-entropy of the raw logits whatever the objective, so runs stay comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

Objective = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(logits [run, n, classes], labels [run, n] int64, mask [run, n] float64) -> loss [run]."""


def cross_entropy(
    logits: Float[Tensor, "run n classes"], labels: Int[Tensor, "run n"]
) -> Float[Tensor, "run n"]:
    """-log softmax(x)_y per pair, in float64."""
    log_probs = logits.double().log_softmax(dim=-1)
    return -log_probs.gather(-1, labels[..., None])[..., 0]


def stablemax(logits: Float[Tensor, "run n classes"]) -> Float[Tensor, "run n classes"]:
    """Prieto et al. 2025 ("Grokking at the edge of numerical stability", eq. 4), in float64:
    StableMax(x)_i = s(x_i) / sum_j s(x_j) with s(x) = x + 1 for x >= 0 and 1 / (1 - x) for
    x < 0 (continuous with slope 1 at 0; grows linearly, not exponentially)."""
    x = logits.double()
    s = torch.where(x >= 0, x.clamp(min=0) + 1, 1 / (1 - x.clamp(max=0)))
    return s / s.sum(dim=-1, keepdim=True)


def stablemax_cross_entropy(
    logits: Float[Tensor, "run n classes"], labels: Int[Tensor, "run n"]
) -> Float[Tensor, "run n"]:
    """-log StableMax(x)_y per pair, in float64 (Prieto et al.'s StableMax cross-entropy)."""
    return -stablemax(logits).gather(-1, labels[..., None])[..., 0].log()


def mse(
    logits: Float[Tensor, "run n classes"], labels: Int[Tensor, "run n"]
) -> Float[Tensor, "run n"]:
    """Mean over the classes of (x_c - onehot(y)_c)^2 per pair, in float64 (the squared loss
    on one-hot targets of Liu et al.'s Omnigrok, torch's MSELoss reduction 'mean' per pair)."""
    x = logits.double()
    target = torch.nn.functional.one_hot(labels, x.shape[-1]).double()
    return (x - target).pow(2).mean(dim=-1)


PER_PAIR = {"cross_entropy": cross_entropy, "stablemax": stablemax_cross_entropy, "mse": mse}


def objective(cfg: RunConfig) -> Objective | None:
    """The run's loss per run (the mean over its real pairs of `PER_PAIR[cfg.objective]` of
    logits / T), or None for plain cross-entropy at T = 1: the training loop then minimises
    the cross-entropy it records (the metrics' train_loss)."""
    if cfg.objective == "cross_entropy" and cfg.temperature == 1.0:
        return None
    per_pair, temperature = PER_PAIR[cfg.objective], cfg.temperature

    def loss(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        values = per_pair(logits.double() / temperature, labels)
        return (values * mask).sum(dim=1) / mask.sum(dim=1)

    return loss
