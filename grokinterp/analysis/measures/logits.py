"""How well the key components explain the logits (Nanda et al. 2023, section 4.2: about 95% of
the final model's logit variance is sum_k alpha_k cos(w_k (a + b - c))).

In a basis with rows phi_r, component K contributes the kernel
kappa_K(s, c) = sum_{r in K} phi_r(s) phi_r(c) at the answer s = label(a, b): for the Fourier
basis of Z_p, (2 / p) cos(w_k (s - c)), i.e. the paper's cos(w_k (a + b - c)) up to scale; for an
irrep of dimension d, (d / |G|) chi(s c^-1) (Chughtai et al. 2023). Over the pairs x classes grid
the kernels of different components are orthogonal to each other (the sum over c of
phi_r(c) phi_r'(c) is the identity), and to every shift constant in c (non-trivial rows sum to
zero), so the least-squares fit of the logits centred over c is a projection on each kernel.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.bases import Basis
from grokinterp.tasks import Task, require_basis


def _kernels(task: Task, basis: Basis, keys: list):
    """Per key component: (phi_r(label) [r, pairs], phi_r(c) [r, classes], ||kappa_K||^2)."""
    require_basis(task, basis)
    for key in keys:
        rows = basis.matrix[list(basis.component(key).rows)]
        at_answer = rows[:, task.labels]
        yield at_answer, rows, at_answer.pow(2).sum()


def centre(logits: Tensor) -> Tensor:
    """Logits minus their mean over the classes (softmax ignores that shift), float64."""
    logits = logits.double()
    return logits - logits.mean(dim=-1, keepdim=True)


def logit_fve(
    logits: Float[Tensor, "ckpt pairs classes"], task: Task, basis: Basis, keys: list
) -> Float[Tensor, " ckpt"]:
    """Fraction of the centred logits' variance explained by sum_K alpha_K kappa_K (float64)."""
    centred = centre(logits)
    explained = torch.zeros(logits.shape[0], dtype=torch.float64)
    for at_answer, rows, norm2 in _kernels(task, basis, keys):
        inner = torch.einsum("cnx,rx,rn->c", centred, rows, at_answer)
        explained += inner.pow(2) / norm2
    return explained / centred.pow(2).sum(dim=(1, 2))


class LogitFit(NamedTuple):
    """Centred logits of one model and their least-squares fit by the key kernels."""

    centred: Float[Tensor, "pairs classes"]
    fitted: Float[Tensor, "pairs classes"]
    alpha: Float[Tensor, " key"]
    """Coefficient of each key kernel kappa_K (not of the paper's unit-amplitude cosine)."""
    fve: float


def fit_logits(
    logits: Float[Tensor, "pairs classes"], task: Task, basis: Basis, keys: list
) -> LogitFit:
    """The fit whose explained variance `logit_fve` gives, with the fitted values."""
    centred = centre(logits)
    fitted = torch.zeros_like(centred)
    alpha = torch.zeros(len(keys), dtype=torch.float64)
    for i, (at_answer, rows, norm2) in enumerate(_kernels(task, basis, keys)):
        kernel = at_answer.T @ rows  # [pairs, classes]
        alpha[i] = (centred * kernel).sum() / norm2
        fitted += alpha[i] * kernel
    residual = (centred - fitted).pow(2).sum() / centred.pow(2).sum().clamp_min(1e-300)
    return LogitFit(centred, fitted, alpha, 1.0 - float(residual))
