"""How well the key-frequency terms cos(w_k (a + b - c)) explain the logits (Nanda et al. 2023,
section 4.2: about 95% of the final model's logit variance)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def logit_fve(logits: Float[Tensor, "ckpt pairs p"], p: int, keys: list[int]) -> Tensor:
    """Fraction of the logits' variance explained by sum_k alpha_k cos(w_k (a + b - c)).

    The logits are centred over c for each input (softmax ignores that shift). The functions
    cos(w_k (a + b - c)) are orthogonal to each other and to those shifts over the p^3 grid, each
    with squared norm p^3 / 2, so the least-squares alpha_k and the explained variance have a
    closed form.
    """
    centred = logits.double() - logits.double().mean(dim=-1, keepdim=True)
    index = torch.arange(p * p, dtype=torch.float64)
    total = index // p + index % p
    c = torch.arange(p, dtype=torch.float64)
    explained = torch.zeros(logits.shape[0], dtype=torch.float64)
    for k in keys:
        w = 2 * math.pi * k / p
        inner = (centred @ torch.cos(w * c)) @ torch.cos(w * total)
        inner += (centred @ torch.sin(w * c)) @ torch.sin(w * total)
        explained += inner.pow(2) / (p**3 / 2)
    return explained / centred.pow(2).sum(dim=(1, 2))
