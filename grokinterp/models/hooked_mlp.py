"""The MLP family as a TransformerLens `HookedRootModule` (names in `grokinterp.models.mlp`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from grokinterp.models.layers import activate

if TYPE_CHECKING:
    from grokinterp.config import RunConfig


class _Hidden(nn.Module):
    """One hidden layer; `biases` names its bias vectors (the first layer's b_in_a, b_in_b)."""

    def __init__(self, d_in: int, cfg: RunConfig, biases: tuple[str, ...] = ()):
        super().__init__()
        self.activation = cfg.activation
        self.W_in = nn.Parameter(torch.zeros(d_in, cfg.d_mlp))
        self.biases = biases
        for name in biases:
            self.register_parameter(name, nn.Parameter(torch.zeros(cfg.d_mlp)))
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_mlp"]:
        pre = x @ self.W_in
        for name in self.biases:
            pre = pre + getattr(self, name)
        return self.hook_post(activate(self.hook_pre(pre), self.activation))


class _Block(nn.Module):
    """Holds hidden layer l as `blocks.{l}.mlp`, the transformer's name for an MLP layer."""

    def __init__(self, d_in: int, cfg: RunConfig, biases: tuple[str, ...] = ()):
        super().__init__()
        self.mlp = _Hidden(d_in, cfg, biases)


class _Embed(nn.Module):
    def __init__(self, names: tuple[str, ...], cfg: RunConfig):
        super().__init__()
        for name in names:
            self.register_parameter(name, nn.Parameter(torch.zeros(cfg.n_elements, cfg.d_model)))


class _Unembed(nn.Module):
    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.W_U = nn.Parameter(torch.zeros(cfg.d_mlp, cfg.d_vocab_out))


class GrokMLP(HookedRootModule):
    """The MLP as a HookedRootModule. `forward(tokens)` takes `[a, b, =]` or `[a, b]` and
    returns float32 logits [batch, 1, classes]: one position, the answer, so that `[:, -1]`
    reads the answer as for the transformer."""

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.combine = cfg.combine
        names = ("W_E",) if cfg.embedding == "shared" else ("W_E_a", "W_E_b")
        self.embed = _Embed(names, cfg)
        self.hook_embed_a, self.hook_embed_b, self.hook_combined = (HookPoint() for _ in range(3))
        first = (2 if cfg.combine == "concat" else 1) * cfg.d_model
        d_ins = [first] + [cfg.d_mlp] * (cfg.n_layers - 1)
        first = ("b_in_a", "b_in_b") if cfg.first_bias == "per-operand" else ()
        biases = [first] + [()] * (cfg.n_layers - 1)
        self.blocks = nn.ModuleList(
            [_Block(d_in, cfg, names) for d_in, names in zip(d_ins, biases, strict=True)]
        )
        self.unembed = _Unembed(cfg)
        self.setup()

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch 1 classes"]:
        tables = [getattr(self.embed, n) for n in ("W_E_a", "W_E_b") if hasattr(self.embed, n)]
        table_a, table_b = tables or [self.embed.W_E] * 2
        x_a = self.hook_embed_a(table_a[tokens[:, 0]])
        x_b = self.hook_embed_b(table_b[tokens[:, 1]])
        x = torch.cat([x_a, x_b], dim=-1) if self.combine == "concat" else x_a + x_b
        x = self.hook_combined(x)
        for block in self.blocks:
            x = block.mlp(x)
        return (x @ self.unembed.W_U)[:, None]
