"""Measures of the proposed causes of the grokking delay (`grokinterp.analysis.measures.causes`):
the logits' scale, softmax collapse, and the update's direction against the weights."""

from __future__ import annotations

import torch
from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.measures import causes

NAME = "causes"
COLUMNS = (
    Column(
        "logit_margin",
        "mean over training pairs of the label's logit minus the pair's mean logit",
        "logit units",
    ),
    Column(
        "logit_std",
        "mean over training pairs of the std (ddof 0) of the pair's logits over the classes",
        "logit units, >= 0",
    ),
    Column(
        "softmax_collapse",
        "share of training pairs whose float32 softmax gives the label probability exactly 1 "
        "(Prieto et al. 2025)",
        "[0, 1]",
    ),
    Column(
        "update_cos",
        "cos(theta_e - theta_prev, theta_prev) over all parameters: the net update since the "
        "previous checkpoint against the weights there; NaN at the first checkpoint",
        "[-1, 1]",
    ),
)


def not_applicable(ctx) -> str | None:
    return None


def columns(ctx, ckpts) -> dict[str, Tensor]:
    """The logit-scale columns, and `update_cos` when the batch holds its predecessors."""
    labels, train_at = ctx.task.labels, ctx.train_at
    margin, spread = causes.logit_scale(ckpts.logits64[:, train_at], labels[train_at])
    collapse = causes.softmax_collapse(ckpts.internals.logits[:, train_at], labels[train_at])
    out = {"logit_margin": margin, "logit_std": spread, "softmax_collapse": collapse}
    if ckpts.previous is not None:
        out["update_cos"] = _update_cos(ctx.model, ckpts.params, ckpts.previous)
    return out


def _update_cos(model, params: dict, previous: list) -> Tensor:
    """`causes.update_cosine` of each checkpoint against its predecessor (NaN without one)."""
    result = torch.full((len(previous),), float("nan"), dtype=torch.float64)
    have = [i for i, state in enumerate(previous) if state is not None]
    if have:
        before = {n: torch.stack([previous[i][n] for i in have]) for n in model.param_shapes()}
        result[have] = causes.update_cosine(before, {n: t[have] for n, t in params.items()})
    return result
