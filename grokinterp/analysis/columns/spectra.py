"""The spectra of the embedding and of each direct hidden layer's neuron-logit map W_L in the
task's basis, with their Gini coefficients (Nanda et al. 2023, sections 4 and 5.2: both become
sparse)."""

from __future__ import annotations

from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.context import joined_embedding
from grokinterp.analysis.measures import embedding, weights
from grokinterp.storage.analysis_format import layer_prefix

NAME = "spectra"
COLUMNS = (
    Column(
        "gini_W_E",
        "Gini coefficient (Hurley and Rickard) of the per-component norms of W_E",
        "[0, 1 - 1/spectrum]",
    ),
    Column(
        "W_E.<c>",
        "norm of component c of the element tokens' embeddings W_E (a and b side by side when "
        "they have their own tables)",
        ">= 0",
    ),
    Column(
        "W_E_a.<c>, W_E_b.<c>",
        "the same for each operand's own table, when a and b have their own (mlp family)",
        ">= 0",
    ),
    Column(
        "gini_W_L",
        "Gini coefficient of the per-component norms of W_L (per direct hidden layer)",
        "[0, 1 - 1/spectrum]",
        per_layer=True,
    ),
    Column(
        "W_L.<c>",
        "norm of component c of W_L = W_U^T W_out^T (transformer) or W_U^T (the mlp's last "
        "hidden layer): the direct map from the layer's neurons to the logits, for each hidden "
        "layer that writes to the logits directly",
        ">= 0",
        per_layer=True,
    ),
)


def not_applicable(ctx) -> str | None:
    return None if ctx.basis is not None else f"{ctx.task.formula} has no known basis"


def columns(ctx, ckpts) -> dict[str, Tensor]:
    """Norms of each component of the embeddings (joined, and each table when a and b have
    their own) and of each direct layer's W_L, with the Gini coefficients."""
    model, params, basis = ctx.model, ckpts.params, ctx.basis
    W_E = embedding.embedding_norms(joined_embedding(model, params), basis)
    out = {"gini_W_E": weights.gini(W_E)}
    out |= {f"W_E.{c.name}": W_E[:, j] for j, c in enumerate(basis.spectrum)}
    tables = model.embeddings(params)
    for name, table in tables.items() if len(tables) > 1 else ():
        norms = embedding.embedding_norms(table, basis)
        out |= {f"{name}.{c.name}": norms[:, j] for j, c in enumerate(basis.spectrum)}
    for layer, W_L in model.neuron_logit_maps(params).items():
        prefix, norms = layer_prefix(layer), basis.component_norms(W_L)
        out[f"{prefix}gini_W_L"] = weights.gini(norms)
        out |= {f"{prefix}W_L.{c.name}": norms[:, j] for j, c in enumerate(basis.spectrum)}
    return out
