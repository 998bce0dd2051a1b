"""What one analysis of a run builds once and every column family reads (`AnalysisContext`), and
a batch of the run's checkpoints with what their columns share (`Checkpoints`).

The context holds the run's config, task, model family, split and basis, the key components
(read off the final checkpoint) and what follows from them: the pairs' positions, the key
directions of restricted and excluded loss, the clock/pizza triples and distances, and one
hooked module for the clock/pizza gradients. A batch stacks its checkpoints along the fast
forward's `run` axis and computes the forward on every domain pair, and the neurons' FVE by
component, once, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from grokinterp import data
from grokinterp.analysis.measures import clock_pizza, embedding, losses, neurons
from grokinterp.bases import Basis
from grokinterp.config import RunConfig
from grokinterp.models import Architecture, Internals
from grokinterp.tasks import Task


def forward_on_domain(
    model: Architecture, params: dict[str, torch.Tensor], task: Task
) -> Internals:
    """The model's fast forward on every domain pair (in domain order), one checkpoint per
    `run` slot of the batched forward."""
    n, domain = task.n_elements, task.domain
    ckpts = next(iter(params.values())).shape[0]
    with torch.no_grad():
        return model.forward(
            params, (domain // n).expand(ckpts, -1), (domain % n).expand(ckpts, -1)
        )


def joined_embedding(model: Architecture, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The element embeddings as one matrix [ckpt, vocab, d]: the shared table, or the a- and
    b-tables side by side (so a component's norm covers both operands)."""
    n = model.cfg.n_elements
    return torch.cat([t[:, :n] for t in model.embeddings(params).values()], dim=-1)


def key_components(
    model: Architecture, final_state: dict[str, Tensor], basis: Basis | None
) -> list:
    """The share rule's key components of the final element embeddings
    (`measures.embedding.key_components`; [] without a basis)."""
    if basis is None:
        return []
    final = {k: v[None] for k, v in final_state.items()}
    final_norms = embedding.embedding_norms(joined_embedding(model, final), basis)[0]
    return embedding.key_components(final_norms, basis)


@dataclass(frozen=True, eq=False)
class AnalysisContext:
    """One run as its analysis reads it; the derived tensors are built on first use and kept."""

    config: RunConfig
    task: Task
    model: Architecture
    train: Tensor
    """Sorted grid indices of the training pairs (int64)."""
    basis: Basis | None
    """The basis of the circuit measures; None for a task with no known basis."""
    keys: list
    """The components restricted and excluded loss keep and remove ([] without a basis)."""

    @classmethod
    def of_run(cls, run, basis: Basis | None, keys: list) -> AnalysisContext:
        """The context of a `grokinterp.storage.run.Run`, from what the run has built."""
        return cls(run.config, run.task, run.architecture, run.train_indices, basis, keys)

    @cached_property
    def train_at(self) -> Tensor:
        """Positions of the training pairs in the task's domain (int64)."""
        return self.task.positions(self.train)

    @cached_property
    def test_at(self) -> Tensor:
        """Positions of the test pairs (the domain less the training pairs) in the domain."""
        return self.task.positions(data.test_indices(self.task, self.train))

    @cached_property
    def directions(self) -> Tensor:
        """Orthonormal key directions over the domain pairs (`losses.key_directions`)."""
        return losses.key_directions(self.task, self.basis, self.keys)

    @cached_property
    def triples(self) -> tuple[Tensor, Tensor, Tensor]:
        """The (a, b, c) sample of the gradient symmetricity (`clock_pizza.sample_triples`)."""
        return clock_pizza.sample_triples(self.task)

    @cached_property
    def distance(self) -> Tensor:
        """Each domain pair's distance a b^-1 (`clock_pizza.operand_distance`)."""
        return clock_pizza.operand_distance(self.task)

    @cached_property
    def gradient_module(self):
        """The family's hooked module in float64, into which each checkpoint is loaded for the
        clock/pizza gradients (`clock_pizza.operand_gradients`)."""
        return clock_pizza.gradient_module(self.model)


class Checkpoints:
    """A batch of checkpoints of one run: their epochs and state dicts, and for `update_cos`
    the state dict of the checkpoint before each (None before the first); `previous` None
    when not wanted."""

    def __init__(
        self,
        ctx: AnalysisContext,
        epochs: list[int],
        states: list[dict[str, Tensor]],
        previous: list[dict[str, Tensor] | None] | None = None,
    ):
        self.ctx, self.epochs, self.states, self.previous = ctx, epochs, states, previous

    @cached_property
    def params(self) -> dict[str, Tensor]:
        """The float parameters stacked: name -> [ckpt, ...] (float32)."""
        return {n: torch.stack([s[n] for s in self.states]) for n in self.ctx.model.param_shapes()}

    @cached_property
    def internals(self) -> Internals:
        """The fast forward on every domain pair (`forward_on_domain`)."""
        return forward_on_domain(self.ctx.model, self.params, self.ctx.task)

    @cached_property
    def logits64(self) -> Tensor:
        """The forward's logits in float64 [ckpt, pairs, classes], converted once for every
        measure that takes them in float64."""
        return self.internals.logits.double()

    @cached_property
    def fve_by_layer(self) -> list[Tensor]:
        """Per hidden layer, its neurons' FVE by basis component [ckpt, d_mlp, spectrum]
        (`neurons.component_fve`; the context must have a basis)."""
        ctx = self.ctx
        return [neurons.component_fve(post, ctx.task, ctx.basis) for post in self.internals.neurons]

    @cached_property
    def clusters(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per hidden layer, `neurons.cluster_sizes` of its FVE: (dominant component, its FVE,
        per checkpoint the count of neurons above the threshold by component)."""
        return [neurons.cluster_sizes(fve) for fve in self.fve_by_layer]
