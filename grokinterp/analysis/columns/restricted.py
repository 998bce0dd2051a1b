"""Restricted and excluded loss and the logit FVE (Nanda et al. 2023, sections 4.2 and 5.2): the
logits kept to, or cleared of, the key components' directions, in the task's basis."""

from __future__ import annotations

from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.measures import losses
from grokinterp.analysis.measures.logits import logit_fve

NAME = "restricted"
COLUMNS = (
    Column(
        "restricted_loss",
        "cross-entropy over the domain pairs of the logits kept to the key components' "
        "directions (plus each output's mean over the pairs)",
        "nats, >= 0",
    ),
    Column("restricted_loss_test", "the same over the test pairs", "nats, >= 0"),
    Column(
        "excluded_loss",
        "cross-entropy over the training pairs of the logits with the key components' "
        "directions removed",
        "nats, >= 0",
    ),
    Column(
        "logit_fve",
        "share of the class-centred logits' variance explained by the key kernels "
        "(cos(w_k (a + b - c)); for a group the characters chi(a b c^-1))",
        "[0, 1]",
    ),
)


def not_applicable(ctx) -> str | None:
    return None if ctx.basis is not None else f"{ctx.task.formula} has no known basis"


def columns(ctx, ckpts) -> dict[str, Tensor]:
    logits, labels = ckpts.logits64, ctx.task.labels
    restricted, excluded = losses.split_logits(logits, ctx.directions)
    restricted_loss = losses.pair_losses(restricted, labels)
    train_at = ctx.train_at
    return {
        "restricted_loss": losses.mean_loss(restricted_loss),
        "restricted_loss_test": losses.mean_loss(restricted_loss[:, ctx.test_at]),
        "excluded_loss": losses.cross_entropy(excluded[:, train_at], labels[train_at]),
        "logit_fve": logit_fve(logits, ctx.task, ctx.basis, ctx.keys),
    }
