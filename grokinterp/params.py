"""Parameter names, shapes and initialisation, shared by the hooked model and the fast engine.

Names and shapes are those of TransformerLens's classic `HookedTransformer` state dict for a
one-layer, LayerNorm-free model, so a grokinterp checkpoint loads into it unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from grokinterp.config import RunConfig

TRAINED = (
    "embed.W_E",
    "pos_embed.W_pos",
    "blocks.0.attn.W_Q",
    "blocks.0.attn.W_K",
    "blocks.0.attn.W_V",
    "blocks.0.attn.W_O",
    "blocks.0.mlp.W_in",
    "blocks.0.mlp.b_in",
    "blocks.0.mlp.W_out",
    "blocks.0.mlp.b_out",
    "unembed.W_U",
)
"""Parameters that AdamW updates. In Nanda et al.'s code only the MLP has biases."""

ZERO_BIASES = (
    "blocks.0.attn.b_Q",
    "blocks.0.attn.b_K",
    "blocks.0.attn.b_V",
    "blocks.0.attn.b_O",
    "unembed.b_U",
)
"""Biases that HookedTransformer has but the paper's model does not: kept at zero, never trained."""

MASK = "blocks.0.attn.mask"
IGNORE = "blocks.0.attn.IGNORE"


def param_shapes(cfg: RunConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every float tensor of the state dict, trained and zero biases alike."""
    d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    return {
        "embed.W_E": (cfg.d_vocab, d),
        "pos_embed.W_pos": (cfg.n_ctx, d),
        "blocks.0.attn.W_Q": (h, d, dh),
        "blocks.0.attn.W_K": (h, d, dh),
        "blocks.0.attn.W_V": (h, d, dh),
        "blocks.0.attn.W_O": (h, dh, d),
        "blocks.0.attn.b_Q": (h, dh),
        "blocks.0.attn.b_K": (h, dh),
        "blocks.0.attn.b_V": (h, dh),
        "blocks.0.attn.b_O": (d,),
        "blocks.0.mlp.W_in": (d, m),
        "blocks.0.mlp.b_in": (m,),
        "blocks.0.mlp.W_out": (m, d),
        "blocks.0.mlp.b_out": (d,),
        "unembed.W_U": (d, cfg.d_vocab_out),
        "unembed.b_U": (cfg.d_vocab_out,),
    }


def init_params(cfg: RunConfig) -> dict[str, Tensor]:
    """Initial float32 weights drawn from a generator seeded by `cfg.seed` alone (no global RNG)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf.startswith("b_"):
            params[name] = torch.zeros(shape)
            continue
        if cfg.init == "paper":
            fan = cfg.d_vocab if name == "unembed.W_U" else cfg.d_model
            std = 1.0 / math.sqrt(fan)
        else:
            std = 0.8 / math.sqrt(cfg.d_model)
        params[name] = torch.randn(shape, generator=generator) * std
    return params


def buffers(cfg: RunConfig) -> dict[str, Tensor]:
    """The attention's causal mask (bool) and masking value (float32), as HookedTransformer has."""
    return {
        MASK: torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)),
        IGNORE: torch.tensor(-torch.inf),
    }


def state_dict_of(cfg: RunConfig, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """A complete HookedTransformer-style state dict: the float32 parameters plus buffers."""
    out = {name: params[name].detach().to("cpu", torch.float32).contiguous() for name in params}
    out.update(buffers(cfg))
    return out
