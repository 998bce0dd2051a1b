"""What every model family gives the rest of grokinterp: `Architecture` and `Internals`.

A family is one module of `grokinterp.models` holding an `Architecture` subclass: its parameter
names (TransformerLens's classic names where there is one), shapes and initialisation; the fast
batched forward that training and analysis use (every tensor carries a leading `run` axis, so
many runs, or many checkpoints of one run, go through as one batched model); the hooked
`HookedRootModule` for `run_with_cache`; and the views the measures read (the embeddings of a
and b, each hidden layer's neurons at the answer and its neuron-to-logit map, the logits).
Training, storage and the report only ever talk to this interface.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from grokinterp.config import RunConfig


class Internals(NamedTuple):
    """What the measures read off one forward pass at the answer, for every run and pair."""

    logits: Float[Tensor, "run n classes"]
    neurons: tuple[Float[Tensor, "run n d_mlp"], ...]
    """Each hidden layer's neuron activations at the answer (`blocks.{l}.mlp.hook_post`)."""
    patterns: tuple[Float[Tensor, "run n head n_ctx"], ...]
    """Each layer's attention from the answer (the last position) to every input position, in
    input order (`blocks.{l}.attn.hook_pattern` at the last query); empty for a family without
    attention."""


class Architecture:
    """One model of a family, for one run config. Subclasses set the class attributes and
    implement the methods that raise NotImplementedError."""

    family: ClassVar[str]
    """The `RunConfig.model` value that selects this family."""
    has_attention: ClassVar[bool]
    operand_hooks: tuple[tuple[str, int | None], tuple[str, int | None]]
    """Where the embeddings of a and of b enter the hooked module: a hook point each, with the
    position to read at it (None for a hook holding that operand alone); a class attribute, or
    a property where the position depends on the input format."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    # ---- parameters -------------------------------------------------------------------------
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every float tensor of the state dict, in state-dict order."""
        raise NotImplementedError

    def n_parameters(self) -> int:
        """The number of values in the float tensors of the state dict (`param_shapes`: every
        weight and bias, trained or not; buffers excluded)."""
        return sum(math.prod(shape) for shape in self.param_shapes().values())

    @property
    def trained(self) -> tuple[str, ...]:
        """Parameters the optimiser updates; the others (zero biases) stay at their init."""
        raise NotImplementedError

    def init_std(self, name: str) -> float:
        """Standard deviation of the normal init of weight `name` (biases, `b_*` and LayerNorm's
        `b`, start at 0)."""
        raise NotImplementedError

    def ones(self) -> tuple[str, ...]:
        """Parameters that start at 1 (LayerNorm scales); none by default."""
        return ()

    def buffers(self) -> dict[str, Tensor]:
        """Non-parameter tensors of the state dict (the attention's mask); none by default."""
        return {}

    def init_params(self) -> dict[str, Tensor]:
        """Initial float32 weights drawn, in state-dict order, from a generator seeded by
        `cfg.seed` alone (no global RNG)."""
        generator = torch.Generator().manual_seed(self.cfg.seed)
        params = {}
        for name, shape in self.param_shapes().items():
            if name in self.ones():
                params[name] = torch.ones(shape)
            elif name.rsplit(".", 1)[1] == "b" or name.rsplit(".", 1)[1].startswith("b_"):
                params[name] = torch.zeros(shape)
            else:
                params[name] = self.init_weight(name, shape, generator)
        return params

    def init_weight(
        self, name: str, shape: tuple[int, ...], generator: torch.Generator
    ) -> Float[Tensor, ...]:
        """The initial value of weight `name`: randn * `init_std`, or with `init="pytorch"`
        PyTorch's default init of the layer it stands for (Power et al.'s code has no init of its
        own): an embedding table (`embed.*`, `pos_embed.*`) N(0, 1) as nn.Embedding; a matrix
        W of `x @ W` ([fan_in, fan_out]) is nn.Linear's weight transposed, drawn in nn.Linear's
        [fan_out, fan_in] layout by `linear_weight`."""
        if self.cfg.init != "pytorch":
            return torch.randn(shape, generator=generator) * self.init_std(name)
        if name.split(".")[0] in ("embed", "pos_embed"):
            return torch.randn(shape, generator=generator)
        if len(shape) != 2:
            raise NotImplementedError(f"no PyTorch layout for {name} {shape}")
        return linear_weight((shape[1], shape[0]), generator).T.contiguous()

    def initial_state_dict(self) -> dict[str, Tensor]:
        """The complete state dict of the run's initial weights (`state_dict_of(init_params())`),
        as a checkpoint at epoch 0 holds it."""
        return self.state_dict_of(self.init_params())

    def state_names(self) -> list[str]:
        return [*self.param_shapes(), *self.buffers()]

    def state_dict_of(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """A complete state dict: the float32 parameters (CPU, contiguous) plus the buffers."""
        out = {n: params[n].detach().to("cpu", torch.float32).contiguous() for n in params}
        out.update(self.buffers())
        return out

    # ---- computation ------------------------------------------------------------------------
    def forward(
        self,
        params: dict[str, Float[Tensor, "run ..."]],
        a: Int[Tensor, "run n"],
        b: Int[Tensor, "run n"],
    ) -> Internals:
        """The fast batched forward: logits, neurons and attention at the answer."""
        raise NotImplementedError

    def logits(self, params: dict[str, Tensor], a: Tensor, b: Tensor) -> Tensor:
        """`forward(...).logits`; the function training differentiates."""
        return self.forward(params, a, b).logits

    def hooked(self):
        """The family's `HookedRootModule` (zero weights; load a state dict into it). It takes
        tokens in the run's input format (`grokinterp.data.tokens`, [batch, n_ctx]) and returns
        logits [batch, pos, classes] whose last position is the answer."""
        raise NotImplementedError

    # ---- what the measures read -------------------------------------------------------------
    @property
    def hidden_layers(self) -> int:
        """Number of layers of neurons (MLP hidden layers)."""
        return self.cfg.n_layers

    def embeddings(self, params: dict[str, Tensor]) -> dict[str, Float[Tensor, "run vocab d"]]:
        """The element embeddings by name: {"W_E": ...} for one shared table, {"W_E_a": ...,
        "W_E_b": ...} for separate ones; rows past the elements (the symbols `=`, `op`) are
        dropped by the measures."""
        raise NotImplementedError

    @property
    def direct_layers(self) -> tuple[int, ...]:
        """The hidden layers whose neurons write to the logits directly (a key of
        `neuron_logit_maps`)."""
        raise NotImplementedError

    def neuron_logit_maps(
        self, params: dict[str, Tensor]
    ) -> dict[int, Float[Tensor, "run classes d_mlp"]]:
        """W_L of each hidden layer that writes to the logits directly (float64): the linear
        map from its neurons to the logits. Layers without a direct path are left out."""
        raise NotImplementedError


def linear_weight(shape: tuple[int, int], generator: torch.Generator) -> Float[Tensor, "out in"]:
    """nn.Linear's default weight of `shape` [fan_out, fan_in]: kaiming_uniform_ with a =
    sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), float32, drawn from `generator` as
    nn.Linear draws it from the global generator."""
    weight = torch.empty(shape)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    return weight
