"""Attention-head diagnostics from the patterns at the answer position (the last query, `=` in
`[a, b, =]`, attending to every input position): how alike the heads are and how spread their
sharpness is. Head similarity and
attention entropy are used as grokking diagnostics in the literature; the exact
reductions here (mean over head pairs, standard deviation over heads) are ours."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def head_similarity(patterns: Float[Tensor, "ckpt n head key"]) -> Float[Tensor, " ckpt"]:
    """Mean over the H (H - 1) / 2 pairs of heads of the cosine similarity of their patterns
    (each head's pattern flattened over the n pairs and the key positions), float64. Range
    [0, 1] for attention weights (non-negative): 1 when every head attends alike. NaN with a
    single head."""
    heads = patterns.double().transpose(1, 2).flatten(2)  # ckpt head (n key)
    unit = heads / heads.norm(dim=-1, keepdim=True)
    cosines = unit @ unit.transpose(1, 2)
    h = cosines.shape[-1]
    upper = torch.triu_indices(h, h, offset=1)
    return cosines[:, upper[0], upper[1]].mean(dim=-1)


def head_entropies(patterns: Float[Tensor, "ckpt n head key"]) -> Float[Tensor, "ckpt head"]:
    """Each head's mean over the n pairs of the entropy (nats) of its attention distribution:
    0 for one-hot attention, log(key) for uniform. A pattern under Zhong et al.'s attention rate
    c < 1 (c * softmax + (1 - c) per key: rows summing to keys - (keys - 1) c) is first divided
    by its row sum; a row summing to 1 (within 1e-3) is taken as it is."""
    p = patterns.double()
    total = p.sum(dim=-1, keepdim=True)
    p = torch.where((total - 1).abs() > 1e-3, p / total, p)
    return -torch.special.xlogy(p, p).sum(dim=-1).mean(dim=1)


def entropy_spread(patterns: Float[Tensor, "ckpt n head key"]) -> Float[Tensor, " ckpt"]:
    """Population standard deviation over heads of `head_entropies` (nats), in
    [0, log(key) / 2]."""
    return head_entropies(patterns).std(dim=-1, correction=0)
