"""Weight norm and sparsity (Nanda et al. 2023, section 5.2: the weight norm falls in cleanup;
the Gini coefficient of the Fourier norms rises as the embedding becomes sparse)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def sum_of_squares(state: dict[str, Float[Tensor, "ckpt ..."]]) -> dict[str, Tensor]:
    """Per parameter, the sum of squared entries per checkpoint (float64)."""
    return {name: t.double().pow(2).flatten(1).sum(dim=1) for name, t in state.items()}


def gini(values: Float[Tensor, "ckpt n"]) -> Float[Tensor, " ckpt"]:
    """Hurley and Rickard's Gini: 0 for a constant vector, 1 - 1/n for a one-hot one."""
    n = values.shape[-1]
    ordered = values.double().abs().sort(dim=-1).values
    weights = (n - torch.arange(1, n + 1, dtype=torch.float64) + 0.5) / n
    return 1 - 2 * (ordered / ordered.sum(dim=-1, keepdim=True) * weights).sum(dim=-1)
