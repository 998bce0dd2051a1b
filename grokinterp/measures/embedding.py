"""Fourier decomposition of the embedding W_E and of the neuron-logit map W_L, and key frequencies.

Nanda et al. (2023), section 4: a grokked model's embedding is sparse in the Fourier basis, a few
frequencies carrying almost all of its norm; W_L = W_U^T W_out^T (p x d_mlp) likewise.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp import fourier

KEY_SHARE = 0.05
"""A frequency is key when it carries at least this share of the embedding's squared Fourier norm
(number tokens, constant row excluded) in the final checkpoint."""


def fourier_frequency_norms(matrix: Float[Tensor, "ckpt p width"]) -> Float[Tensor, "ckpt n_freq"]:
    """Per checkpoint, the norm of each frequency k of a matrix indexed by residue along dim 1."""
    p = matrix.shape[1]
    coefficients = torch.einsum("ix,cxw->ciw", fourier.basis(p, matrix.dtype), matrix)
    squares = coefficients.pow(2).sum(dim=2)
    return (squares[:, 1::2] + squares[:, 2::2]).sqrt()


def embedding_norms(W_E: Float[Tensor, "ckpt d_vocab d_model"], p: int) -> Tensor:
    """Fourier frequency norms of the embeddings of the p number tokens (`=` dropped)."""
    return fourier_frequency_norms(W_E[:, :p].double())


def neuron_logit_map(
    W_out: Float[Tensor, "ckpt d_mlp d_model"], W_U: Float[Tensor, "ckpt d_model p"]
) -> Float[Tensor, "ckpt p d_mlp"]:
    """W_L = W_U^T W_out^T: the direct effect of each neuron on each output logit."""
    return torch.einsum("cmd,cdp->cpm", W_out.double(), W_U.double())


def key_frequencies(final_embedding_norms: Float[Tensor, " n_freq"]) -> list[int]:
    """Frequencies (1-based) holding at least KEY_SHARE of the final embedding's squared norm."""
    share = final_embedding_norms.pow(2) / final_embedding_norms.pow(2).sum()
    return [k + 1 for k in torch.nonzero(share >= KEY_SHARE).flatten().tolist()]
