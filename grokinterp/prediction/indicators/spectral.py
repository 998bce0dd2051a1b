"""Spectral entropy of the hidden representation's covariance (Truong, Truong, Luu and Phan
2026, "Spectral Entropy Collapse as an Empirical Signature of Delayed Generalisation in
Grokking", arXiv 2604.13123: the normalised entropy crosses ~0.61 about 1,020 steps before
generalisation in their runs)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from scipy import stats
from torch import Tensor


def covariance(representation: Float[Tensor, "ckpt n d"]) -> Float[Tensor, "ckpt d d"]:
    """The (biased, 1/n) covariance of n representation vectors of dimension d per checkpoint,
    float64."""
    x = representation.double()
    centred = x - x.mean(dim=1, keepdim=True)
    return centred.transpose(1, 2) @ centred / x.shape[1]


def spectral_entropy(cov: Float[Tensor, "ckpt d d"]) -> Float[Tensor, " ckpt"]:
    """H~ = -sum_i p_i log p_i / log d with p_i = lambda_i / sum_j lambda_j, the eigenvalues of the
    symmetric PSD covariance (negative rounding clipped to 0). Range [0, 1]: 0 when one direction
    holds all the variance, 1 for an isotropic covariance. NaN for a zero covariance."""
    d = cov.shape[-1]
    eigenvalues = torch.linalg.eigvalsh(cov.double()).clamp(min=0).numpy()
    entropy = stats.entropy(eigenvalues, axis=-1)  # normalises each row to sum 1
    return torch.as_tensor(entropy, dtype=torch.float64) / math.log(d)
