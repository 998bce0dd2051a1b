"""Measures of the proposed causes of the grokking delay, per checkpoint.

- Logit scale (the norm may act only through it; Liu et al.'s Omnigrok and the temperature
  account): `logit_scale`.
- Softmax collapse (Prieto et al. 2025, "Grokking at the edge of numerical stability"): the
  share of training pairs whose float32 softmax puts probability exactly 1 on the answer, so
  that their float32 loss and gradient are exactly 0: `softmax_collapse`.
- The direction of the update against the weights (⊥Grad's premise: late in training the update
  mostly rescales the weights along themselves): `update_cosine`.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def logit_scale(
    logits: Float[Tensor, "ckpt n classes"], labels: Int[Tensor, " n"]
) -> tuple[Float[Tensor, " ckpt"], Float[Tensor, " ckpt"]]:
    """(margin, spread) per checkpoint, float64: margin = mean over pairs of x_y - mean_c x_c
    (the correct logit above the pair's mean logit); spread = mean over pairs of the standard
    deviation of the pair's logits over the classes (population, ddof 0). Both scale linearly
    with the logits."""
    x = logits.double()
    correct = x.gather(-1, labels.expand(x.shape[0], -1)[..., None])[..., 0]
    margin = (correct - x.mean(dim=-1)).mean(dim=1)
    return margin, x.std(dim=-1, correction=0).mean(dim=1)


def softmax_collapse(
    logits: Float[Tensor, "ckpt n classes"], labels: Int[Tensor, " n"]
) -> Float[Tensor, " ckpt"]:
    """Share (in [0, 1], float64) of pairs whose float32 softmax gives the answer probability
    exactly 1.0: every other exp(x_c - x_max) is lost below float32's rounding of the sum (a gap
    of about 17 nats or more; Prieto et al.'s softmax collapse)."""
    probs = logits.float().softmax(dim=-1)
    answer = probs.gather(-1, labels.expand(probs.shape[0], -1)[..., None])[..., 0]
    return (answer == 1.0).double().mean(dim=1)


def update_cosine(
    previous: dict[str, Float[Tensor, "ckpt ..."]], current: dict[str, Float[Tensor, "ckpt ..."]]
) -> Float[Tensor, " ckpt"]:
    """cos(theta_now - theta_before, theta_before) per checkpoint pair (float64), over every
    parameter flattened into one vector: -1 when the net update between two checkpoints only
    shrinks the weights, 0 when it is orthogonal to them (⊥Grad's updates are, step by step)."""
    before = torch.cat([previous[name].double().flatten(1) for name in current], dim=1)
    now = torch.cat([current[name].double().flatten(1) for name in current], dim=1)
    return torch.nn.functional.cosine_similarity(now - before, before, dim=1, eps=1e-300)
