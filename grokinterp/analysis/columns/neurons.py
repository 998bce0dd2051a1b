"""Neuron clusters (Nanda et al. 2023, section 5.1): each hidden layer's neurons by the basis
component that explains most of their activation over the domain (`measures.neurons`)."""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.measures import neurons
from grokinterp.storage.analysis_format import layer_prefix

NAME = "neurons"
COLUMNS = (
    Column(
        "fve_share",
        f"share of the layer's neurons whose dominant component explains more than "
        f"{neurons.FVE_THRESHOLD} of their variance (FVE) over the domain",
        "[0, 1]",
        per_layer=True,
    ),
    Column(
        "cluster.<c>",
        f"number of the layer's neurons with FVE > {neurons.FVE_THRESHOLD} whose dominant "
        "component is c",
        "0 .. d_mlp",
        "int64",
        per_layer=True,
    ),
)


def not_applicable(ctx) -> str | None:
    return None if ctx.basis is not None else f"{ctx.task.formula} has no known basis"


def columns(ctx, ckpts) -> dict[str, Tensor]:
    out = {}
    for layer, (_, fve, counts) in enumerate(ckpts.clusters):
        prefix = layer_prefix(layer)
        out[f"{prefix}fve_share"] = (fve > neurons.FVE_THRESHOLD).double().mean(dim=1)
        out |= {f"{prefix}cluster.{c.name}": counts[:, j] for j, c in enumerate(ctx.basis.spectrum)}
    return out


def per_neuron(ckpts) -> tuple[Tensor, Tensor, Tensor]:
    """Every hidden layer's neurons one after another: the dominant component's 1-based
    position in the spectrum (int64) and its FVE [ckpt, hidden_layers * d_mlp], and the FVE by
    component [ckpt, hidden_layers * d_mlp, spectrum] (the batch's context must have a
    basis)."""
    dominant = torch.cat([d for d, _, _ in ckpts.clusters], dim=1)
    fve = torch.cat([f for _, f, _ in ckpts.clusters], dim=1)
    return dominant, fve, torch.cat(ckpts.fve_by_layer, dim=1)
