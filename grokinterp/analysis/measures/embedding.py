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


FLAT_SHARE = 0.5
"""The spectrum is flat, and names no key components, when the components holding at least
KEY_SHARE are more than this share of the spectrum's components: a grokked model's few key
components hold nearly all of the norm, a model that has not grokked spreads it over most of
them (a uniform spectrum of fewer than 1 / KEY_SHARE = 20 components puts every one above
KEY_SHARE)."""


def key_components(final_norms: Float[Tensor, " spectrum"], basis: Basis) -> list:
    """Keys of the components holding at least KEY_SHARE of the final embedding's squared norm,
    in spectrum order (frequencies as ints, irreps by name): the share rule, before the flatness
    check of `flat_spectrum`."""
    share = final_norms.pow(2) / final_norms.pow(2).sum()
    return [basis.spectrum[i].key for i in torch.nonzero(share >= KEY_SHARE).flatten().tolist()]


def flat_spectrum(keys: list, basis: Basis) -> str | None:
    """Why the share rule's `keys` (`key_components`) name no key components: a sentence when
    they are more than FLAT_SHARE of the basis's spectrum, else None."""
    n = len(basis.spectrum)
    if len(keys) <= FLAT_SHARE * n:
        return None
    return (
        f"no key components: the spectrum is flat ({len(keys)} of its {n} components hold at "
        f"least {KEY_SHARE:.0%} of the final embedding's squared norm, more than "
        f"{FLAT_SHARE:.0%} of them); restricted and excluded loss keep and remove those "
        f"{len(keys)} and are not meaningful"
    )
