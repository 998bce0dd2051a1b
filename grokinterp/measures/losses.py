"""Restricted and excluded loss (Nanda et al. 2023, section 5.2).

The logits at `=` are, for each output c, a function of (a, b). The generalising circuit writes
them through the directions cos(w_k (a + b)) and sin(w_k (a + b)) of the key frequencies
(w_k = 2 pi k / p). Restricted loss keeps only those directions (plus each output's mean over
inputs, the constant term); excluded loss removes them and keeps everything else.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor


def key_directions(p: int, keys: list[int]) -> Float[Tensor, "pairs two_k"]:
    """Orthonormal columns cos(w_k (a + b)), sin(w_k (a + b)) over the p^2 pairs (index a*p+b)."""
    index = torch.arange(p * p, dtype=torch.float64)
    total = index // p + index % p
    columns = []
    for k in keys:
        angle = 2 * math.pi * k * total / p
        columns += [torch.cos(angle), torch.sin(angle)]
    if not columns:
        return torch.zeros(p * p, 0, dtype=torch.float64)
    directions = torch.stack(columns, dim=1)
    return directions / directions.norm(dim=0)


def project(
    logits: Float[Tensor, "ckpt pairs p"], directions: Float[Tensor, "pairs two_k"]
) -> Tensor:
    """The part of each output's logits (as a function over all pairs) in the given directions."""
    return torch.einsum("nk,ckp->cnp", directions, torch.einsum("nk,cnp->ckp", directions, logits))


def restricted_logits(logits: Tensor, directions: Tensor) -> Tensor:
    """Each output's mean over the pairs plus its key-frequency part (float64)."""
    logits = logits.double()
    return logits.mean(dim=1, keepdim=True) + project(logits, directions)


def excluded_logits(logits: Tensor, directions: Tensor) -> Tensor:
    """The logits with their key-frequency part removed (float64). The projection is over all p^2
    pairs; select the train pairs afterwards (the paper evaluates excluded loss on them)."""
    logits = logits.double()
    return logits - project(logits, directions)


def cross_entropy(
    logits: Float[Tensor, "ckpt n p"], labels: Int[Tensor, " n"]
) -> Float[Tensor, " ckpt"]:
    """Mean cross-entropy per checkpoint, computed in float64."""
    log_probs = logits.double().log_softmax(dim=-1)
    return -log_probs.gather(-1, labels.expand(logits.shape[0], -1)[..., None]).mean(dim=(1, 2))


def accuracy(logits: Float[Tensor, "ckpt n p"], labels: Int[Tensor, " n"]) -> Tensor:
    return (logits.argmax(dim=-1) == labels).double().mean(dim=1)
