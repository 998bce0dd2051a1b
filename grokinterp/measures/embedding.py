"""The embedding W_E and the neuron-logit map W_L decomposed in the task's basis; key components.

Nanda et al. (2023), section 4: a grokked model's embedding is sparse in the Fourier basis, a few
frequencies carrying almost all of its norm; W_L = W_U^T W_out^T (classes x d_mlp) likewise. For
another task the same holds in its own basis (the characters of Z_p^* for multiplication).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.bases import Basis

KEY_SHARE = 0.05
"""A component is key when it carries at least this share of the embedding's squared norm over
the basis's spectrum (number tokens; trivial components such as the constant excluded) in the
final checkpoint."""


def embedding_norms(W_E: Float[Tensor, "ckpt d_vocab d_model"], basis: Basis) -> Tensor:
    """Per checkpoint, the norm of each spectrum component of the element tokens' embeddings
    (`=` dropped), float64 [ckpt, spectrum]."""
    return basis.component_norms(W_E[:, : basis.n])


def neuron_logit_map(
    W_out: Float[Tensor, "ckpt d_mlp d_model"], W_U: Float[Tensor, "ckpt d_model classes"]
) -> Float[Tensor, "ckpt classes d_mlp"]:
    """W_L = W_U^T W_out^T: the direct effect of each neuron on each output logit."""
    return torch.einsum("cmd,cdp->cpm", W_out.double(), W_U.double())


def key_components(final_norms: Float[Tensor, " spectrum"], basis: Basis) -> list:
    """Keys of the components holding at least KEY_SHARE of the final embedding's squared norm,
    in spectrum order (frequencies as ints, irreps by name)."""
    share = final_norms.pow(2) / final_norms.pow(2).sum()
    return [basis.spectrum[i].key for i in torch.nonzero(share >= KEY_SHARE).flatten().tolist()]
