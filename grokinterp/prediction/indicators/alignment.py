"""The log-alignment ratio (LAR) of a linear map (Shehper and Vaswani 2026, "A Training-Time
Diagnostic for Generalization via the Log-Alignment Ratio", arXiv 2605.28975).

What is implemented (reconstructed from the paper's abstract, which defines LAR as the overlap of
a weight spectrum p and an activation spectrum q and states k ~ n^(2 (1 - LAR))): for inputs X
[N, n] and a map W [n, m] (y = x W) with singular values s_i and input-side singular vectors u_i,
    p_i = s_i^2 / sum_j s_j^2,   q_i = ||X u_i||^2 / ||X||_F^2,
    LAR = 1 + log(sum_i p_i q_i) / (2 log n) = 1 + log(||X W||_F / (||X||_F ||W||_F)) / log n.
Range (-inf, 1]: 1 when the inputs lie in W's top singular direction alone, 1/2 when p and q
are both uniform over the n directions (random alignment), lower for anti-alignment. The
normalisation by log n is ours where the abstract leaves it open.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def log_alignment_ratio(
    inputs: Float[Tensor, "ckpt N n"], weight: Float[Tensor, "ckpt n m"]
) -> Float[Tensor, " ckpt"]:
    """LAR of `weight` on `inputs` per checkpoint (float64), as in the module docstring."""
    x, w = inputs.double(), weight.double()
    n = w.shape[-2]
    overlap = (x @ w).pow(2).sum(dim=(1, 2)) / (x.pow(2).sum(dim=(1, 2)) * w.pow(2).sum(dim=(1, 2)))
    return 1 + overlap.log() / (2 * math.log(n))


def spectra(
    inputs: Float[Tensor, "N n"], weight: Float[Tensor, "n m"]
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """The weight spectrum p and the activation spectrum q of one checkpoint (float64), each
    summing to 1, over the n input-side singular directions of `weight`."""
    u, s, _ = torch.linalg.svd(weight.double(), full_matrices=True)
    s2 = torch.zeros(u.shape[0], dtype=torch.float64)
    s2[: s.shape[0]] = s.pow(2)
    projected = (inputs.double() @ u).pow(2).sum(dim=0)
    return s2 / s2.sum(), projected / projected.sum()
