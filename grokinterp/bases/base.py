"""A `Basis`: an orthonormal matrix over a task's elements, its rows named and grouped.

Every measure of the circuit (key components, restricted and excluded loss, logit FVE, neuron
clusters) is defined through one: for modular addition the Fourier basis of Z_p, whose
components are `const` and a (cos k, sin k) pair per frequency k (Nanda et al. 2023); for
multiplication the characters of Z_p^* through the discrete logarithm; for a finite group the
entries of its irreducible representations. A basis belongs to one group (`group`), and a measure
refuses a basis whose group is not its task's (`require_basis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from grokinterp.errors import UsageError


@dataclass(frozen=True)
class Component:
    """A group of basis rows that a measure treats as one (a frequency, an irrep)."""

    name: str
    """Column label in the measures table, e.g. `k3` (frequency 3) or `zero`."""
    key: int | str
    """How the summary names it: the frequency k as an int, or an irrep's name."""
    rows: tuple[int, ...]
    """Indices of its rows in the basis matrix."""
    trivial: bool = False
    """True for the constant (and the zero indicator of Z_p^*): never a key component, and left
    out of every spectrum, as the constant row is left out of the Fourier norms."""


@dataclass(frozen=True, eq=False)
class Basis:
    """Orthonormal rows over the elements 0..n-1: `matrix[i, x]` is row i at element x."""

    name: str
    """Registry name, e.g. `fourier` or `dlog`."""
    title: str
    """What it is, in words, for the summary and the report."""
    group: str
    """The group it is a basis of functions on, e.g. `Z_59`; must equal the task's."""
    kind: Literal["frequency", "irrep"]
    """What a non-trivial component is called."""
    matrix: Float[Tensor, "n n"]
    """float64, orthonormal: matrix @ matrix.T = I."""
    row_names: tuple[str, ...]
    components: tuple[Component, ...]

    @property
    def n(self) -> int:
        return self.matrix.shape[1]

    @property
    def spectrum(self) -> tuple[Component, ...]:
        """The non-trivial components, in order: the candidates for key components."""
        return tuple(c for c in self.components if not c.trivial)

    def component(self, key: int | str) -> Component:
        for candidate in self.spectrum:
            if candidate.key == key:
                return candidate
        raise UsageError(f"{self.title} has no {self.kind} {key!r}")

    def rows_of(self, keys: list) -> list[int]:
        """Basis rows of the given components, in the order given."""
        return [row for key in keys for row in self.component(key).rows]

    def membership(self, trivial_too: bool = False) -> Float[Tensor, "n n_spectrum"]:
        """1 where a row belongs to a spectrum component (and, with `trivial_too`, to any
        trivial component as well), float64 [rows, spectrum components]."""
        member = torch.zeros(self.n, len(self.spectrum), dtype=torch.float64)
        for j, component in enumerate(self.spectrum):
            member[list(component.rows), j] = 1.0
        if trivial_too:
            member[self.trivial_rows()] = 1.0
        return member

    def trivial_rows(self) -> list[int]:
        return [row for c in self.components if c.trivial for row in c.rows]

    def restricted(self, elements: Int[Tensor, " m"]) -> Basis:
        """The basis of functions on a subset of the elements: the rows that vanish off it, which
        must be exactly as many as the subset (Z_p^* inside Z_p drops the zero indicator)."""
        elements = torch.as_tensor(elements)
        if len(elements) == self.n:
            return self
        outside = torch.ones(self.n, dtype=torch.bool)
        outside[elements] = False
        keep = self.matrix[:, outside].abs().amax(dim=1) < 1e-12
        if int(keep.sum()) != len(elements):
            raise UsageError(f"{self.title} does not split over the operands of this task")
        index = torch.full((self.n,), -1, dtype=torch.int64)
        index[keep] = torch.arange(int(keep.sum()))
        components = tuple(
            Component(c.name, c.key, tuple(int(index[r]) for r in c.rows), c.trivial)
            for c in self.components
            if all(keep[r] for r in c.rows)
        )
        return Basis(
            self.name,
            self.title,
            self.group,
            self.kind,
            self.matrix[keep][:, elements],
            tuple(n for n, k in zip(self.row_names, keep.tolist(), strict=True) if k),
            components,
        )

    def component_norms(self, values: Float[Tensor, "ckpt n width"]) -> Tensor:
        """Per checkpoint, the norm of each spectrum component of a matrix whose dim 1 runs over
        the elements (summed over the trailing width), float64 [ckpt, spectrum]."""
        coefficients = torch.einsum("ix,cxw->ciw", self.matrix, values.double())
        return (coefficients.pow(2).sum(dim=2) @ self.membership()).sqrt()


def transform_2d(
    values: Float[Tensor, "batch na nb width"], basis_a: Basis, basis_b: Basis
) -> Float[Tensor, "batch na nb width"]:
    """A M B^T for functions M(a, b) in dims 1 and 2, batched over the first and last dims.
    Two plain matmuls: a three-operand einsum is much slower here."""
    batch, na, nb, width = values.shape
    A = basis_a.matrix.to(values.dtype).to(values.device)
    B = basis_b.matrix.to(values.dtype).to(values.device)
    over_a = A @ values.reshape(batch, na, nb * width)  # [batch, i, (b width)]
    over_b = B @ over_a.reshape(batch * na, nb, width)  # [(batch i), j, width]
    return over_b.reshape(batch, na, nb, width)


def check_orthonormal(matrix: Tensor, what: str) -> None:
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype)
    if matrix.shape[0] != matrix.shape[1] or not torch.allclose(matrix @ matrix.T, eye, atol=1e-9):
        raise AssertionError(f"{what} is not orthonormal")
