"""The Fourier basis over Z_p, with named rows, and 1D / 2D transforms.

Row order (stated once, used everywhere): row 0 is `const` = 1/sqrt(p); for k = 1..(p-1)/2,
row 2k-1 is `cos k` = cos(2 pi k x / p) and row 2k is `sin k` = sin(2 pi k x / p), each scaled to
unit norm. The p rows are orthonormal, so the basis matrix F satisfies F @ F.T = I.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def frequencies(p: int) -> list[int]:
    """The non-constant frequencies 1..(p-1)/2."""
    return list(range(1, (p - 1) // 2 + 1))


def basis_names(p: int) -> list[str]:
    names = ["const"]
    for k in frequencies(p):
        names += [f"cos {k}", f"sin {k}"]
    return names


def basis(p: int, dtype: torch.dtype = torch.float64) -> Float[Tensor, "p p"]:
    """F[i, x]: the i-th basis function (see the module docstring for the order) at residue x."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.full((p,), 1.0 / math.sqrt(p), dtype=torch.float64)]
    for k in frequencies(p):
        angle = 2 * math.pi * k * x / p
        rows += [torch.cos(angle), torch.sin(angle)]
    F = torch.stack(rows)
    return (F / F.norm(dim=1, keepdim=True)).to(dtype)


def transform(values: Float[Tensor, "p ..."]) -> Float[Tensor, "p ..."]:
    """Coefficients of `values` (a function of one residue, along dim 0) in the basis."""
    F = basis(values.shape[0], values.dtype).to(values.device)
    return torch.tensordot(F, values, dims=([1], [0]))


def transform_2d(values: Float[Tensor, "batch p p width"]) -> Float[Tensor, "batch p p width"]:
    """F M F^T for functions M(a, b) of two residues in dims 1 and 2, batched over the first and
    last dims. Two plain matmuls: a three-operand einsum is much slower here."""
    batch, p, _, width = values.shape
    F = basis(p, values.dtype).to(values.device)
    over_a = F @ values.reshape(batch, p, p * width)  # [batch, i, (b width)]
    over_b = F @ over_a.reshape(batch * p, p, width)  # [(batch i), j, width]
    return over_b.reshape(batch, p, p, width)


def frequency_norms(coefficients: Float[Tensor, "p ..."]) -> Float[Tensor, "n_freq ..."]:
    """Norm of each frequency's (cos k, sin k) coefficient pair, summed over trailing dims.

    Returns (p-1)/2 values, frequency k at index k-1; the constant row is left out.
    """
    squares = coefficients.pow(2)
    if squares.dim() > 1:
        squares = squares.flatten(1).sum(dim=1)
    return (squares[1::2] + squares[2::2]).sqrt()
