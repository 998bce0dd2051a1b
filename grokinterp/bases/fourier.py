"""The Fourier basis over Z_n, with named rows, and 1D / 2D transforms.

Row order (stated once, used everywhere): row 0 is `const` = 1/sqrt(n); for k = 1..(n-1)/2,
row 2k-1 is `cos k` = cos(2 pi k x / n) and row 2k is `sin k` = sin(2 pi k x / n), each scaled to
unit norm. For even n one more row, `cos n/2` = (-1)^x / sqrt(n), closes the basis (its sine is
zero). The n rows are orthonormal, so the basis matrix F satisfies F @ F.T = I. Components:
`const` (trivial) and frequency k holding its cos/sin rows (Nanda et al. 2023, section 4).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.bases.base import Basis, Component


def frequencies(n: int) -> list[int]:
    """The non-constant frequencies 1..n // 2 (n // 2 has no sine row when n is even)."""
    return list(range(1, n // 2 + 1))


def basis_names(n: int) -> list[str]:
    names = ["const"]
    for k in frequencies(n):
        names += [f"cos {k}"] + ([f"sin {k}"] if 2 * k != n else [])
    return names


def basis(n: int, dtype: torch.dtype = torch.float64) -> Float[Tensor, "n n"]:
    """F[i, x]: the i-th basis function (see the module docstring for the order) at residue x."""
    x = torch.arange(n, dtype=torch.float64)
    rows = [torch.ones(n, dtype=torch.float64)]
    for k in frequencies(n):
        angle = 2 * math.pi * k * x / n
        rows += [torch.cos(angle)] + ([torch.sin(angle)] if 2 * k != n else [])
    F = torch.stack(rows)
    return (F / F.norm(dim=1, keepdim=True)).to(dtype)


def components(n: int) -> tuple[Component, ...]:
    """`const`, then one component per frequency k, named `k<k>`, in row order."""
    found, row = [Component("const", "const", (0,), trivial=True)], 1
    for k in frequencies(n):
        width = 1 if 2 * k == n else 2
        found.append(Component(f"k{k}", k, tuple(range(row, row + width))))
        row += width
    return tuple(found)


def fourier_basis(n: int) -> Basis:
    """The additive Fourier basis of Z_n as a `Basis`."""
    return Basis(
        name="fourier",
        title=f"additive Fourier basis of Z_{n}",
        group=f"Z_{n}",
        kind="frequency",
        matrix=basis(n),
        row_names=tuple(basis_names(n)),
        components=components(n),
    )


def transform(values: Float[Tensor, "p ..."]) -> Float[Tensor, "p ..."]:
    """Coefficients of `values` (a function of one residue, along dim 0) in the basis."""
    F = basis(values.shape[0], values.dtype).to(values.device)
    return torch.tensordot(F, values, dims=([1], [0]))


def frequency_norms(coefficients: Float[Tensor, "p ..."]) -> Float[Tensor, "n_freq ..."]:
    """Norm of each frequency's (cos k, sin k) coefficient pair, summed over trailing dims
    (odd p). Returns (p-1)/2 values, frequency k at index k-1; the constant row is left out."""
    squares = coefficients.pow(2)
    if squares.dim() > 1:
        squares = squares.flatten(1).sum(dim=1)
    return (squares[1::2] + squares[2::2]).sqrt()
