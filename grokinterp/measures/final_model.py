"""Measures of one model read through its computation at `=` over all p^2 inputs: the attention
pattern in the Fourier basis, and the least-squares fit of the logits by key-frequency cosines
(Nanda et al. 2023, section 4: the figures of the final model)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.data import pair_operands
from grokinterp.engine import last_position
from grokinterp.fourier import transform


class LogitFit(NamedTuple):
    """Centred logits (mean over c removed) and their least-squares fit by key-frequency cosines."""

    centred: Float[Tensor, "p p p"]
    fitted: Float[Tensor, "p p p"]
    alpha: Float[Tensor, " key"]
    fve: float


def model_at_eq(params: dict[str, Tensor], p: int):
    """`engine.last_position` of one model (float64) on all p^2 pairs, in pair-index order."""
    a, b = pair_operands(p)
    batched = {k: v.double()[None] for k, v in params.items() if v.is_floating_point()}
    return last_position(batched, a[None], b[None])


def attention_to_a_fourier(params: dict[str, Tensor], p: int) -> Float[Tensor, "p head"]:
    """Attention from `=` to a, as a function of a (averaged over b), in the Fourier basis."""
    pattern = model_at_eq(params, p).pattern[0, :, :, 0]  # [pair, head], pair = a * p + b
    return transform(pattern.reshape(p, p, -1).mean(dim=1))


def fit_logit_cosines(logits: Float[Tensor, "p p p"], key_frequencies: list[int]) -> LogitFit:
    """Least-squares alpha_k of logits[a, b, c] ~ sum_k alpha_k cos(2 pi k (a + b - c) / p).

    The logits are centred over c (softmax ignores that shift). For distinct k in 1..(p-1)/2 the
    cosines are orthogonal over the p^3 grid, each of squared norm p^3 / 2, so each alpha_k is a
    projection and one cosine at a time is in memory.
    """
    p = logits.shape[0]
    centred = logits.double() - logits.double().mean(dim=-1, keepdim=True)
    x = torch.arange(p, dtype=torch.float64)
    shift = x[:, None, None] + x[None, :, None] - x[None, None, :]
    fitted = torch.zeros_like(centred)
    alpha = torch.zeros(len(key_frequencies), dtype=torch.float64)
    for i, k in enumerate(key_frequencies):
        cosine = torch.cos(2 * math.pi * k * shift / p)
        alpha[i] = (centred * cosine).sum() / (p**3 / 2)
        fitted += alpha[i] * cosine
    fve = 1.0 - float((centred - fitted).pow(2).sum() / centred.pow(2).sum().clamp_min(1e-300))
    return LogitFit(centred, fitted, alpha, fve)
