"""Clock or pizza: Zhong et al. (2023)'s gradient symmetricity and distance irrelevance
(`grokinterp.analysis.measures.clock_pizza`), for a commutative group operation."""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.measures import clock_pizza

NAME = "clock_pizza"
COLUMNS = (
    Column(
        "gradient_symmetricity",
        "s_g: mean over 100 fixed triples (a, b, c) of cos(dQ_abc/dE_a, dQ_abc/dE_b); pizza 1, "
        "clock about 0",
        "[-1, 1]",
    ),
    Column(
        "distance_irrelevance",
        "q: mean over distances d of the std of the right answer's logit over the pairs with "
        "a b^-1 = d (a - b for a + b), over its std on all pairs; pizza near 0, clock near 1",
        "[0, 1]",
    ),
)


def not_applicable(ctx) -> str | None:
    return clock_pizza.not_applicable(ctx.task)


def columns(ctx, ckpts) -> dict[str, Tensor]:
    model, module = ctx.model, ctx.gradient_module
    symmetricity = [
        clock_pizza.gradient_symmetricity(
            *clock_pizza.operand_gradients(model, state, *ctx.triples, module=module)
        )
        for state in ckpts.states
    ]
    return {
        "gradient_symmetricity": torch.stack(symmetricity),
        "distance_irrelevance": clock_pizza.distance_irrelevance(
            ckpts.logits64, ctx.task.labels, ctx.distance
        ),
    }
