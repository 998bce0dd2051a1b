"""The transformer family as a TransformerLens `HookedRootModule`.

TransformerLens 4 removed `HookedTransformer` but keeps `HookedRootModule` and `HookPoint` as the
way to hook any model. This module rebuilds the classic LayerNorm-free (or pre-LN)
HookedTransformer, plus post-LN and sinusoidal positions (`RunConfig.layer_norm`,
`RunConfig.positional`), with the same parameter names, shapes and hook points
(`blocks.0.attn.hook_pattern`, `blocks.0.mlp.hook_post`, `blocks.0.ln1.hook_normalized`, ...), so
`run_with_hooks` / `run_with_cache` work as on a HookedTransformer and a state dict moves between
the two unchanged. It computes every position; `Transformer.forward` is the fast path that computes
only the last. Its names and shapes are checked against `Transformer.param_shapes` by the tests (a
strict `load_state_dict` of the family's state dict).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from grokinterp.models.layers import (
    LN_EPS,
    absent_biases,
    activate,
    constant_attention,
    mix_attention,
    sinusoidal_positions,
)

if TYPE_CHECKING:
    from grokinterp.config import RunConfig


def _parameter(shape: tuple[int, ...]) -> nn.Parameter:
    return nn.Parameter(torch.zeros(shape))


class Embed(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_E = _parameter((cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    """Learned `W_pos`, or the fixed sinusoidal table as a buffer of the same name."""

    def __init__(self, cfg: RunConfig):
        super().__init__()
        if cfg.positional == "learned":
            self.W_pos = _parameter((cfg.n_ctx, cfg.d_model))
        else:
            self.register_buffer("W_pos", sinusoidal_positions(cfg.n_ctx, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)


class LayerNorm(nn.Module):
    """TransformerLens's LayerNorm (`w`, `b`, `hook_scale`, `hook_normalized`)."""

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = _parameter((cfg.d_model,))
        self.hook_scale, self.hook_normalized = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
        centred = x - x.mean(dim=-1, keepdim=True)
        scale = self.hook_scale((centred.pow(2).mean(dim=-1, keepdim=True) + LN_EPS).sqrt())
        return self.hook_normalized(centred / scale) * self.w + self.b


class Attention(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.rate, self.rule = cfg.attention_rate, cfg.attention_rule
        self.W_Q, self.W_K, self.W_V = (_parameter((h, d, dh)) for _ in range(3))
        self.W_O = _parameter((h, dh, d))
        self.b_Q, self.b_K, self.b_V = (_parameter((h, dh)) for _ in range(3))
        self.b_O = _parameter((d,))
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)))
        self.register_buffer("IGNORE", torch.tensor(-torch.inf))
        self.attn_scale = math.sqrt(dh)
        self.hook_q, self.hook_k, self.hook_v, self.hook_z = (HookPoint() for _ in range(4))
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.attn_scale
        n = x.shape[1]
        mask = self.mask[:n, :n]
        scores = torch.where(mask, scores, self.IGNORE)
        learned = F.softmax(self.hook_attn_scores(scores), dim=-1)
        constant = constant_attention(mask, self.rule, learned.dtype)
        pattern = self.hook_pattern(mix_attention(learned, self.rate, constant))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O


class FeedForward(nn.Module):
    """TransformerLens's `MLP` component (held at `blocks.{l}.mlp`, with `W_in`, `b_in`, `W_out`,
    `b_out`, `hook_pre`, `hook_post`): the position-wise feed-forward sublayer of a block."""

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.activation = cfg.activation
        self.W_in = _parameter((cfg.d_model, cfg.d_mlp))
        self.b_in = _parameter((cfg.d_mlp,))
        self.W_out = _parameter((cfg.d_mlp, cfg.d_model))
        self.b_out = _parameter((cfg.d_model,))
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        post = self.hook_post(activate(self.hook_pre(x @ self.W_in + self.b_in), self.activation))
        return post @ self.W_out + self.b_out


class TransformerBlock(nn.Module):
    """Attention then MLP, each added to the residual stream; `layer_norm="pre"` normalises
    each sublayer's input (ln1, ln2), `"post"` each residual sum: x = ln1(x + attn(x)) (at
    `hook_resid_mid`), then ln2(x + mlp(x)) (at `hook_resid_post`)."""

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.post = cfg.layer_norm == "post"
        if cfg.layer_norm != "none":
            self.ln1 = LayerNorm(cfg)
        self.attn = Attention(cfg)
        if cfg.layer_norm != "none":
            self.ln2 = LayerNorm(cfg)
        self.mlp = FeedForward(cfg)
        self.hook_resid_pre, self.hook_attn_out = HookPoint(), HookPoint()
        self.hook_resid_mid, self.hook_mlp_out = HookPoint(), HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        x = self.hook_resid_pre(x)
        pre = hasattr(self, "ln1") and not self.post
        x = x + self.hook_attn_out(self.attn(self.ln1(x) if pre else x))
        x = self.hook_resid_mid(self.ln1(x) if self.post else x)
        x = x + self.hook_mlp_out(self.mlp(self.ln2(x) if pre else x))
        return self.hook_resid_post(self.ln2(x) if self.post else x)


class Unembed(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_U = _parameter((cfg.d_model, cfg.d_vocab_out))
        self.b_U = _parameter((cfg.d_vocab_out,))

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos vocab"]:
        return x @ self.W_U + self.b_U


class GrokTransformer(HookedRootModule):
    """`n_layers` blocks of causal attention and MLP, learned or sinusoidal positions, untied
    embeddings, LayerNorm before each sublayer and the unembedding (`layer_norm="pre"`) or
    after each residual sum (`"post"`).

    `forward(tokens)` returns logits at every position, float32 [batch, pos, d_vocab_out];
    the task reads the last position. Biases the model lacks (`layers.absent_biases`) are
    frozen at zero.
    """

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg)
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        if cfg.layer_norm == "pre":
            self.ln_final = LayerNorm(cfg)
        self.unembed = Unembed(cfg)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.setup()
        for name in absent_biases(cfg):
            self.get_parameter(name).requires_grad_(False)

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            x = block(x)
        if hasattr(self, "ln_final"):
            x = self.ln_final(x)
        return self.unembed(x)
