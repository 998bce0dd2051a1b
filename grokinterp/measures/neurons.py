"""Neuron frequency clustering (Nanda et al. 2023, section 5.1).

Each MLP neuron's activation at `=` is a function of (a, b). Its 2D Fourier transform F A F^T
splits the centred variance into terms; the terms of frequency k are the products of
{const, cos k, sin k} with each other, except const x const. A neuron belongs to the frequency that
explains the largest fraction of its variance (FVE); the paper counts neurons with FVE > 0.85.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp import fourier

FVE_THRESHOLD = 0.85


def frequency_fve(
    post: Float[Tensor, "ckpt pairs d_mlp"], p: int
) -> Float[Tensor, "ckpt d_mlp n_freq"]:
    """Fraction of each neuron's centred variance over all p^2 inputs explained by frequency k
    (column k - 1). A neuron that never varies gets 0 everywhere."""
    activations = post.reshape(post.shape[0], p, p, post.shape[-1])
    squares = fourier.transform_2d(activations).pow(2)
    total = squares.sum(dim=(1, 2)) - squares[:, 0, 0]
    rows = torch.tensor([[0, 2 * k - 1, 2 * k] for k in fourier.frequencies(p)])
    per_frequency = squares[:, rows[:, :, None], rows[:, None, :]].sum(dim=(2, 3))
    explained = per_frequency - squares[:, None, 0, 0]  # [ckpt, n_freq, d_mlp]
    fve = explained / total[:, None].clamp_min(torch.finfo(total.dtype).tiny)
    return fve.where(total[:, None] > 0, 0.0).transpose(1, 2)


def cluster_sizes(
    fve_by_frequency: Float[Tensor, "ckpt d_mlp n_freq"], threshold: float = FVE_THRESHOLD
) -> tuple[Tensor, Tensor, Tensor]:
    """(dominant frequency (1-based) and its FVE per neuron, and per checkpoint the count of
    neurons with FVE > threshold whose dominant frequency is k, column k - 1)."""
    fve, dominant = fve_by_frequency.max(dim=-1)
    clustered = fve > threshold
    n_freq = fve_by_frequency.shape[-1]
    counts = torch.zeros(fve.shape[0], n_freq, dtype=torch.int64)
    counts.scatter_add_(1, dominant, clustered.long())
    return dominant + 1, fve, counts
