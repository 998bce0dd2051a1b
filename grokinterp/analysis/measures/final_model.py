"""Measures of one model read through its computation at the answer over its task's domain:
the attention pattern in the task's basis (Nanda et al. 2023, section 4: the figures of the final
model). The logit fit is `grokinterp.analysis.measures.logits.fit_logits`."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.bases import Basis
from grokinterp.models import Architecture, Internals
from grokinterp.tasks import Task, require_basis


def model_at_eq(model: Architecture, params: dict[str, Tensor], task: Task) -> Internals:
    """The fast forward of one model (float64) on the domain pairs, in domain order."""
    n = task.n_elements
    domain = task.domain
    batched = {k: v.double()[None] for k, v in params.items() if v.is_floating_point()}
    with torch.no_grad():
        return model.forward(batched, (domain // n)[None], (domain % n)[None])


def attention_to_a(
    internals: Internals, task: Task, basis: Basis, layer: int = 0
) -> tuple[Float[Tensor, "na head"], Basis]:
    """Attention of layer `layer` from the answer position (`=`, or b in `[a, b]`) to a, as a
    function of a (averaged over b), in the basis restricted to a's operand set; returns the
    coefficients and that basis (for its row names). `internals` is `model_at_eq` of a model
    with attention."""
    require_basis(task, basis)
    operands_a, operands_b = task.operands
    pattern = internals.patterns[layer][0, :, :, 0]  # [pair, head]: key 0 holds a in every format
    by_a = pattern.reshape(len(operands_a), len(operands_b), -1).mean(dim=1)
    basis_a = basis.restricted(operands_a)
    return torch.tensordot(basis_a.matrix, by_a, dims=([1], [0])), basis_a
