"""The MLP family: the network of Gromov (2023), Liu et al. (Omnigrok, 2022) and Chughtai et al.
(2023). Embeddings of a and b (one shared table or two), combined by concatenation or sum, one or
more hidden layers of `d_mlp` neurons, an unembedding that reads the last hidden layer. No biases,
as in Gromov's and Chughtai et al.'s models, unless `first_bias` is `per-operand`: devinterp's
grokking example (examples/grokking.ipynb), whose `linear1l(e_a) + linear1r(e_b)` is the concat
layer [e_a, e_b] @ W_in with W_in = [linear1l.weight^T; linear1r.weight^T] plus both biases.

State-dict names, in TransformerLens's words where it has one:
    embed.W_E                [n_elements, d_model]  shared embedding of a and b
    embed.W_E_a, embed.W_E_b [n_elements, d_model]  separate embeddings (`embedding="separate"`)
    blocks.{l}.mlp.W_in      [d_in, d_mlp]  hidden layer l; d_in is 2 d_model (concat) or
                                            d_model (sum) for l = 0, d_mlp after
    blocks.0.mlp.b_in_a, blocks.0.mlp.b_in_b [d_mlp]  a's and b's first-layer biases
                                            (`first_bias="per-operand"`)
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
from torch import Tensor, nn

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

    @property
    def first_biases(self) -> tuple[str, ...]:
        if self.cfg.first_bias == "none":
            return ()
        return ("blocks.0.mlp.b_in_a", "blocks.0.mlp.b_in_b")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        cfg = self.cfg
        shapes = {name: (cfg.n_elements, cfg.d_model) for name in self.tables}
        for layer in range(cfg.n_layers):
            shapes[f"blocks.{layer}.mlp.W_in"] = (self.d_in(layer), cfg.d_mlp)
            if layer == 0:
                shapes.update({name: (cfg.d_mlp,) for name in self.first_biases})
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

    def init_params(self) -> dict[str, Tensor]:
        """`Architecture.init_params`; with `init="pytorch"`, `pytorch_init`."""
        if self.cfg.init == "pytorch":
            return pytorch_init(self)
        return super().init_params()

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
            x = x @ params[f"blocks.{layer}.mlp.W_in"]
            if layer == 0:
                for name in self.first_biases:
                    x = x + params[name][:, None]
            x = activate(x, self.cfg.activation)
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


def pytorch_init(model: MLP) -> dict[str, Tensor]:
    """Float32 initial weights under PyTorch's defaults, drawn from a generator seeded by
    `cfg.seed` alone in the order in which devinterp's grokking example builds its module
    (embedding, linear1r, linear1l, linear2). The embedding tables (a's, then b's when separate):
    N(0, 1), as nn.Embedding. Each weight: an nn.Linear's [out, in] by `kaiming_uniform_(a =
    sqrt(5))`, U(-1/sqrt(k), 1/sqrt(k)) with k its fan-in, stored transposed; a first-layer bias
    U(-1/sqrt(k), 1/sqrt(k)) right after its weight. The first layer under `concat` is one
    nn.Linear(d_model, d_mlp) per operand, b's before a's (linear1r before linear1l), so k is
    d_model, not 2 d_model; under `sum` one nn.Linear(d_model, d_mlp), then b's bias, then a's.
    Later layers nn.Linear(d_mlp, d_mlp), W_U nn.Linear(d_mlp, classes), without biases. With one
    shared table, `first_bias="per-operand"` and seed s this is devinterp's MLP built after
    `torch.manual_seed(s)`, value for value."""
    cfg, shapes = model.cfg, model.param_shapes()
    generator = torch.Generator().manual_seed(cfg.seed)
    params = {
        name: nn.init.normal_(torch.empty(shapes[name]), generator=generator)
        for name in model.tables
    }

    def weight(fan_in: int, fan_out: int) -> Tensor:
        drawn = torch.empty(fan_out, fan_in)
        return nn.init.kaiming_uniform_(drawn, a=math.sqrt(5), generator=generator).T

    def bias(name: str | None, fan_in: int) -> None:
        if name is not None:
            bound = 1 / math.sqrt(fan_in)
            params[name] = nn.init.uniform_(torch.empty(cfg.d_mlp), -bound, bound, generator)

    bias_a, bias_b = model.first_biases or (None, None)
    if cfg.combine == "concat":
        w_b = weight(cfg.d_model, cfg.d_mlp)
        bias(bias_b, cfg.d_model)
        w_a = weight(cfg.d_model, cfg.d_mlp)
        bias(bias_a, cfg.d_model)
        params["blocks.0.mlp.W_in"] = torch.cat([w_a, w_b])
    else:
        params["blocks.0.mlp.W_in"] = weight(cfg.d_model, cfg.d_mlp)
        bias(bias_b, cfg.d_model)
        bias(bias_a, cfg.d_model)
    for layer in range(1, cfg.n_layers):
        params[f"blocks.{layer}.mlp.W_in"] = weight(cfg.d_mlp, cfg.d_mlp)
    params["unembed.W_U"] = weight(cfg.d_mlp, cfg.d_vocab_out)
    return {name: params[name].contiguous() for name in shapes}
