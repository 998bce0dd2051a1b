"""Restricted and excluded loss (Nanda et al. 2023, section 5.2), in the task's basis.

The logits at `=` are, for each output c, a function of the pair (a, b) over the task's domain.
The generalising circuit writes them through the key components evaluated at the answer: for
addition cos(w_k (a + b)) and sin(w_k (a + b)), for a - b the same at a - b, for multiplication
the characters at a * b, i.e. cos and sin of w_k (log a + log b). In general, the rows phi_r of the
key components of the basis, as functions phi_r(label(a, b)) of the pair. Restricted loss keeps
only those directions (plus each output's mean over the pairs, the constant term); excluded loss
removes them and keeps everything else.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from grokinterp.bases import Basis
from grokinterp.tasks import Task, require_basis


def key_directions(task: Task, basis: Basis, keys: list) -> Float[Tensor, "pairs r"]:
    """Orthonormal columns over the domain pairs spanning phi_r(label(a, b)) for the rows r of
    the key components (float64; for addition, cos/sin of w_k (a + b), already orthogonal)."""
    require_basis(task, basis)
    rows = basis.rows_of(keys)
    if not rows:
        return torch.zeros(task.n_pairs, 0, dtype=torch.float64)
    spanning = basis.matrix[rows][:, task.labels].T  # [pairs, r]
    directions, _ = torch.linalg.qr(spanning)
    return directions


def project(
    logits: Float[Tensor, "ckpt pairs classes"], directions: Float[Tensor, "pairs r"]
) -> Tensor:
    """The part of each output's logits (as a function over the pairs) in the given directions."""
    return torch.einsum("nk,ckp->cnp", directions, torch.einsum("nk,cnp->ckp", directions, logits))


def restricted_logits(logits: Tensor, directions: Tensor) -> Tensor:
    """Each output's mean over the pairs plus its key-component part (float64)."""
    return split_logits(logits, directions)[0]


def excluded_logits(logits: Tensor, directions: Tensor) -> Tensor:
    """The logits with their key-component part removed (float64). The projection is over all
    domain pairs; select the train pairs afterwards (the paper evaluates excluded loss on them)."""
    return split_logits(logits, directions)[1]


def split_logits(logits: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
    """(`restricted_logits`, `excluded_logits`) from one projection (float64)."""
    logits = logits.double()
    part = project(logits, directions)
    return logits.mean(dim=1, keepdim=True) + part, logits - part


def pair_losses(
    logits: Float[Tensor, "ckpt n classes"], labels: Int[Tensor, " n"]
) -> Float[Tensor, "ckpt n 1"]:
    """-log softmax(logits)_label of every pair, in float64 (average with `mean_loss`)."""
    log_probs = logits.double().log_softmax(dim=-1)
    return -log_probs.gather(-1, labels.expand(logits.shape[0], -1)[..., None])


def mean_loss(losses: Float[Tensor, "ckpt n 1"]) -> Float[Tensor, " ckpt"]:
    return losses.mean(dim=(1, 2))


def cross_entropy(
    logits: Float[Tensor, "ckpt n classes"], labels: Int[Tensor, " n"]
) -> Float[Tensor, " ckpt"]:
    """Mean cross-entropy per checkpoint, computed in float64."""
    return mean_loss(pair_losses(logits, labels))


def accuracy(logits: Float[Tensor, "ckpt n classes"], labels: Int[Tensor, " n"]) -> Tensor:
    return (logits.argmax(dim=-1) == labels).double().mean(dim=1)
