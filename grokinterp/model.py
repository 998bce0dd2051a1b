"""The one-layer transformer as a TransformerLens `HookedRootModule`.

TransformerLens 4 removed `HookedTransformer` but keeps `HookedRootModule` and `HookPoint` as the
way to hook any model. This module rebuilds the classic one-layer, LayerNorm-free HookedTransformer
with the same parameter names, shapes and hook points (`blocks.0.attn.hook_pattern`,
`blocks.0.mlp.hook_post`, ...), so `run_with_hooks` / `run_with_cache` work as before and a state
dict moves between the two unchanged. It computes every position; `grokinterp.engine` is the fast
path that computes only the last.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from grokinterp.config import RunConfig
from grokinterp.params import IGNORE, MASK, ZERO_BIASES, buffers, init_params, param_shapes


def _parameter(shape: tuple[int, ...]) -> nn.Parameter:
    return nn.Parameter(torch.zeros(shape))


class Embed(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_E = _parameter((cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_pos = _parameter((cfg.n_ctx, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)


class Attention(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q, self.W_K, self.W_V = (_parameter((h, d, dh)) for _ in range(3))
        self.W_O = _parameter((h, dh, d))
        self.b_Q, self.b_K, self.b_V = (_parameter((h, dh)) for _ in range(3))
        self.b_O = _parameter((d,))
        for name, value in buffers(cfg).items():
            self.register_buffer(name.rsplit(".", 1)[1], value)
        self.attn_scale = math.sqrt(dh)
        self.hook_q, self.hook_k, self.hook_v, self.hook_z = (HookPoint() for _ in range(4))
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.attn_scale
        n = x.shape[1]
        scores = torch.where(self.mask[:n, :n], scores, self.IGNORE)
        pattern = self.hook_pattern(F.softmax(self.hook_attn_scores(scores), dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O


class MLP(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_in = _parameter((cfg.d_model, cfg.d_mlp))
        self.b_in = _parameter((cfg.d_mlp,))
        self.W_out = _parameter((cfg.d_mlp, cfg.d_model))
        self.b_out = _parameter((cfg.d_model,))
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        post = self.hook_post(F.relu(self.hook_pre(x @ self.W_in + self.b_in)))
        return post @ self.W_out + self.b_out


class TransformerBlock(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.hook_resid_pre, self.hook_attn_out = HookPoint(), HookPoint()
        self.hook_resid_mid, self.hook_mlp_out = HookPoint(), HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(x)))
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(x)))


class Unembed(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_U = _parameter((cfg.d_model, cfg.d_vocab_out))
        self.b_U = _parameter((cfg.d_vocab_out,))

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos vocab"]:
        return x @ self.W_U + self.b_U


class GrokTransformer(HookedRootModule):
    """One attention layer and one MLP, no LayerNorm, learned positions, untied embeddings.

    `forward(tokens)` returns logits at every position, float32 [batch, pos, d_vocab_out];
    the task reads the last position.
    """

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg)
        self.blocks = nn.ModuleList([TransformerBlock(cfg)])
        self.unembed = Unembed(cfg)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.setup()
        for name in ZERO_BIASES:
            self.get_parameter(name).requires_grad_(False)
        expected = set(param_shapes(cfg)) | {MASK, IGNORE}
        assert set(self.state_dict()) == expected, "model and params.py disagree on names"

    @classmethod
    def initialised(cls, cfg: RunConfig) -> GrokTransformer:
        """A model with the run's initial weights (seeded by `cfg.seed`)."""
        model = cls(cfg)
        model.load_state_dict({**init_params(cfg), **buffers(cfg)})
        return model

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)
