"""Losses and accuracy on the run's split (float64 cross-entropy, Nanda et al.'s train and test
curves, measured from the checkpoint's weights)."""

from __future__ import annotations

from torch import Tensor

from grokinterp.analysis.columns.base import Column
from grokinterp.analysis.measures import losses

NAME = "losses"
COLUMNS = (
    Column(
        "train_loss",
        "cross-entropy -log softmax(logits)_label, mean over the training pairs",
        "nats, >= 0",
    ),
    Column(
        "test_loss",
        "the same over the test pairs (the domain less the training pairs)",
        "nats, >= 0",
    ),
    Column("all_loss", "the same over every domain pair", "nats, >= 0"),
    Column("train_acc", "share of training pairs whose largest logit is the label", "[0, 1]"),
    Column("test_acc", "share of test pairs whose largest logit is the label", "[0, 1]"),
)


def not_applicable(ctx) -> str | None:
    return None


def columns(ctx, ckpts) -> dict[str, Tensor]:
    logits, labels = ckpts.internals.logits, ctx.task.labels
    train_at, test_at = ctx.train_at, ctx.test_at
    pair_loss = losses.pair_losses(ckpts.logits64, labels)  # one log-softmax for the three
    return {
        "train_loss": losses.mean_loss(pair_loss[:, train_at]),
        "test_loss": losses.mean_loss(pair_loss[:, test_at]),
        "all_loss": losses.mean_loss(pair_loss),
        "train_acc": losses.accuracy(logits[:, train_at], labels[train_at]),
        "test_acc": losses.accuracy(logits[:, test_at], labels[test_at]),
    }
