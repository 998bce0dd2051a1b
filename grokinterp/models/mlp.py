"""The MLP family: the network of Gromov (2023), Liu et al. (Omnigrok, 2022) and Chughtai et al.
(2023). Embeddings of a and b (one shared table or two), combined by concatenation or sum, one or
more hidden layers of `d_mlp` neurons, an unembedding that reads the last hidden layer. No biases,
as in Gromov's and Chughtai et al.'s models.

State-dict names, in TransformerLens's words where it has one:
    embed.W_E                [n_elements, d_model]  shared embedding of a and b
    embed.W_E_a, embed.W_E_b [n_elements, d_model]  separate embeddings (`embedding="separate"`)
    blocks.{l}.mlp.W_in      [d_in, d_mlp]  hidden layer l; d_in is 2 d_model (concat) or
                                            d_model (sum) for l = 0, d_mlp after
    unembed.W_U              [d_mlp, classes]   the last hidden layer to the logits
Hook points: `hook_embed_a`, `hook_embed_b`, `hook_combined` (the hidden layers' input),
`blocks.{l}.mlp.hook_pre`, `blocks.{l}.mlp.hook_post`. The input formats it takes, `[a, b, =]`
and `[a, b]`, are one network: the `=` token has no embedding, and the hooked module
(`grokinterp.models.hooked_mlp`) reads the first two tokens.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

from grokinterp.models.base import Architecture, Internals
from grokinterp.models.layers import activate, gather_rows


class MLP(Architecture):
    family = "mlp"
    has_attention = False
    operand_hooks = (("hook_embed_a", None), ("hook_embed_b", None))

    @property
    def tables(self) -> tuple[str, ...]:
        if self.cfg.embedding == "shared":
            return ("embed.W_E",)
        return ("embed.W_E_a", "embed.W_E_b")

    def d_in(self, layer: int) -> int:
        if layer:
            return self.cfg.d_mlp
        return (2 if self.cfg.combine == "concat" else 1) * self.cfg.d_model

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        cfg = self.cfg
        shapes = {name: (cfg.n_elements, cfg.d_model) for name in self.tables}
        for layer in range(cfg.n_layers):
            shapes[f"blocks.{layer}.mlp.W_in"] = (self.d_in(layer), cfg.d_mlp)
        shapes["unembed.W_U"] = (cfg.d_mlp, cfg.d_vocab_out)
        return shapes

    @property
    def trained(self) -> tuple[str, ...]:
        return tuple(self.param_shapes())

    def init_std(self, name: str) -> float:
        """`paper`: randn / sqrt(fan-in) for every matrix, d_model for the embeddings (Chughtai
        et al.'s code); `transformer_lens`: 0.8 / sqrt(d_model) for every matrix."""
        if self.cfg.init != "paper":
            return 0.8 / math.sqrt(self.cfg.d_model)
        if name.startswith("embed."):
            return 1.0 / math.sqrt(self.cfg.d_model)
        return 1.0 / math.sqrt(self.param_shapes()[name][0])

    def hooked(self):
        from grokinterp.models.hooked_mlp import GrokMLP

        return GrokMLP(self.cfg)

    def forward(
        self,
        params: dict[str, Float[Tensor, "run ..."]],
        a: Int[Tensor, "run n"],
        b: Int[Tensor, "run n"],
    ) -> Internals:
        first, last = self.tables[0], self.tables[-1]  # the same table when shared
        x_a = gather_rows(params[first], a)
        x_b = gather_rows(params[last], b)
        x = torch.cat([x_a, x_b], dim=-1) if self.cfg.combine == "concat" else x_a + x_b
        neurons = []
        for layer in range(self.cfg.n_layers):
            x = activate(x @ params[f"blocks.{layer}.mlp.W_in"], self.cfg.activation)
            neurons.append(x)
        return Internals(x @ params["unembed.W_U"], tuple(neurons), ())

    def embeddings(self, params):
        return {name.split(".")[1]: params[name] for name in self.tables}

    @property
    def direct_layers(self) -> tuple[int, ...]:
        return (self.cfg.n_layers - 1,)

    def neuron_logit_maps(self, params):
        """Only the last hidden layer writes to the logits: W_L = W_U^T."""
        return {self.cfg.n_layers - 1: params["unembed.W_U"].double().transpose(-1, -2)}
