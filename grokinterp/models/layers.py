"""Small pieces that the fast forwards and the hooked modules share, so both compute one
function: activations, LayerNorm, the Clock-and-Pizza attention rate, the sinusoidal
positions and the biases a transformer lacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

LN_EPS = 1e-5
"""LayerNorm's epsilon (TransformerLens's default)."""


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """table[r, index[r, n], ...] for every run r and pair n: a per-run row lookup
    ([run, rows, ...] and int64 [run, n] -> [run, n, ...])."""
    trailing = table.shape[2:]
    expanded = index.reshape(*index.shape, *([1] * len(trailing))).expand(*index.shape, *trailing)
    return table.gather(1, expanded)


def activate(x: Tensor, name: str) -> Tensor:
    """`RunConfig.activation` `name` of x: relu; gelu (the exact erf form, TransformerLens's
    `gelu`); quadratic x^2 (Gromov 2023)."""
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


def constant_attention(visible: Tensor, rule: str, dtype: torch.dtype) -> Tensor:
    """What rate 0 gives each key under the attention rule `rule`, from `visible` (bool, keys on
    the last axis, True where the query may attend): 1 on visible keys (`zhong`, in `dtype`) or
    1 / their number (`uniform-mix`, float32 as it always was); 0 on masked keys.

    The rules (`RunConfig.attention_rule`) mix a head's softmax pattern s over the n keys its
    query may see with the rate c: `zhong`, Zhong et al.'s (NeurIPS 2023) `attn_coeff`,
    c * s + (1 - c) on every visible key (a row sums to c + n (1 - c)); `uniform-mix`,
    c * s + (1 - c) / n (a row sums to 1). At c = 1 both are s, bit for bit."""
    if rule == "zhong":
        return visible.to(dtype)
    if rule == "uniform-mix":
        return visible / visible.sum(dim=-1, keepdim=True)
    raise ValueError(f"unknown attention rule {rule!r}")


def mix_attention(pattern: Tensor, rate: float, constant: Tensor | float) -> Tensor:
    """rate * pattern + (1 - rate) * constant (`constant_attention`). Rate 1 returns `pattern`
    itself, bit for bit; rate 0 gives `constant` exactly (0 * pattern is 0) and still passes the
    queries and keys a zero gradient."""
    if rate == 1.0:
        return pattern
    return rate * pattern + (1.0 - rate) * constant


def sinusoidal_positions(n_ctx: int, d_model: int) -> Tensor:
    """float32 [n_ctx, d_model]: the fixed position table of Power et al.'s (2022) code
    (`Transformer._position_encoding`), sin(pos / 10000^(i / d_model)) on even dims i and
    cos(pos / 10000^((i - 1) / d_model)) on odd ones; computed in float64, then rounded, as
    their code builds it from Python floats."""
    pos = torch.arange(n_ctx, dtype=torch.float64)[:, None]
    dim = torch.arange(d_model)
    angle = pos / 10000.0 ** ((dim - dim % 2).double() / d_model)
    return torch.where(dim % 2 == 0, angle.sin(), angle.cos()).float()


def absent_biases(cfg: RunConfig) -> tuple[str, ...]:
    """The transformer's biases (TransformerLens names) that the model does not have, kept at zero
    and never trained: every attention bias and b_U (Nanda et al.'s code, `biases="mlp"`), and the
    MLP's too with `biases="none"` (Power et al.'s, LayerNorm's the only biases)."""
    layers = range(cfg.n_layers)
    names = [f"blocks.{i}.attn.b_{x}" for i in layers for x in "QKVO"]
    if cfg.biases == "none":
        names += [f"blocks.{i}.mlp.b_{x}" for i in layers for x in ("in", "out")]
    return (*names, "unembed.b_U")
