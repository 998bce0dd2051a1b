"""Small pieces that the fast forwards and the hooked modules share, so both compute one
function: activations, LayerNorm, and the Clock-and-Pizza attention mix."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ACTIVATIONS = ("relu", "gelu", "quadratic")
"""relu; gelu (the exact erf form, TransformerLens's `gelu`); quadratic x^2 (Gromov 2023)."""

LN_EPS = 1e-5
"""LayerNorm's epsilon (TransformerLens's default)."""


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """table[r, index[r, n], ...] for every run r and pair n: a per-run row lookup
    ([run, rows, ...] and int64 [run, n] -> [run, n, ...])."""
    trailing = table.shape[2:]
    expanded = index.reshape(*index.shape, *([1] * len(trailing))).expand(*index.shape, *trailing)
    return table.gather(1, expanded)


def activate(x: Tensor, name: str) -> Tensor:
    if name == "relu":
        return torch.relu(x)
    if name == "gelu":
        return F.gelu(x)
    if name == "quadratic":
        return x * x
    raise ValueError(f"unknown activation {name!r}")


def layer_norm(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """TransformerLens's LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b,
    with `w` and `b` broadcast from the right."""
    centred = x - x.mean(dim=-1, keepdim=True)
    scale = (centred.pow(2).mean(dim=-1, keepdim=True) + LN_EPS).sqrt()
    return centred / scale * w + b


def mix_uniform(pattern: Tensor, rate: float, uniform: Tensor | float) -> Tensor:
    """Zhong et al.'s (NeurIPS 2023) attention rate: rate * pattern + (1 - rate) * uniform,
    `uniform` being the constant attention (1 / the number of keys a query may see, 0 on masked
    keys). Rate 1 returns `pattern` itself, bit for bit; rate 0 gives `uniform` exactly
    (0 * pattern is 0) and still passes the queries and keys a zero gradient."""
    if rate == 1.0:
        return pattern
    return rate * pattern + (1.0 - rate) * uniform
