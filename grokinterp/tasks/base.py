"""A `Task`: the elements, the domain of pairs (a, b) and the label of each pair.

The elements are the tokens 0..n-1 (the run's input format writes a pair as tokens,
`grokinterp.data.tokens`). The domain is the product of the two operand sets (division leaves
out b = 0). A pair is named by its grid index a * n + b, the same over every task, so a split is
a sorted list of grid indices of domain pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import torch
from jaxtyping import Int
from torch import Tensor

from grokinterp.errors import UsageError


@dataclass(frozen=True, eq=False)
class Task:
    """What the network is trained to compute."""

    name: str
    """Registry name, e.g. `add` or `S4`."""
    formula: str
    """The operation in words, e.g. `(a + b) mod 59`."""
    table: Int[Tensor, "n n"]
    """int64 label of (a, b), -1 outside the domain."""
    n_classes: int
    """Output classes: the possible labels 0..n_classes-1."""
    element_names: tuple[str, ...]
    """How an element token prints (a residue, a permutation)."""
    group: str | None = None
    """The group whose composition the labels are, when they are one (e.g. `Z_59`, `Z_59^*`):
    a basis of functions on it describes the network's algorithm. None: no known basis."""
    bases: tuple[str, ...] = ()
    """Names of the bases that belong to this task, the default first."""
    builders: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    """Basis name -> a function that builds it (a `grokinterp.bases.Basis`), for every name in
    `bases` and `element_bases`; set by the module that defines the task."""
    element_bases: tuple[str, ...] = ()
    """Bases of functions on the elements in which the embedding's spectrum is worth comparing,
    whatever the task computes (for residues mod p: the additive and multiplicative ones)."""

    @property
    def n_elements(self) -> int:
        return self.table.shape[0]

    @cached_property
    def operands(self) -> tuple[Int[Tensor, " na"], Int[Tensor, " nb"]]:
        """The sorted elements that a and that b range over (the domain is their product)."""
        inside = self.table >= 0
        return torch.nonzero(inside.any(1)).flatten(), torch.nonzero(inside.any(0)).flatten()

    @cached_property
    def domain(self) -> Int[Tensor, " pairs"]:
        """Sorted grid indices a * n + b of the pairs in the domain (int64)."""
        return torch.nonzero(self.table.flatten() >= 0).flatten()

    @property
    def n_pairs(self) -> int:
        return int((self.table >= 0).sum())

    @cached_property
    def labels(self) -> Int[Tensor, " pairs"]:
        """The label of each domain pair, in domain order (int64)."""
        return self.table.flatten()[self.domain]

    @cached_property
    def commutative(self) -> bool:
        """Whether (b, a) is in the domain with the same label as (a, b) for every pair."""
        return bool(torch.equal(self.table, self.table.T))

    def positions(self, grid: Int[Tensor, " m"]) -> Int[Tensor, " m"]:
        """Positions in `domain` of the given grid indices (each must be a domain pair)."""
        return torch.searchsorted(self.domain, grid.contiguous())

    def swap_unseen(self, train: Int[Tensor, " n_train"], pairs: Int[Tensor, " m"]) -> Tensor:
        """For each pair (a, b) (grid index) whether its answer can NOT be read off a trained
        pair by swapping: true unless (b, a) is a training pair with the same label (bool).

        For a commutative task that is "the swap was not trained on"; for others the swap
        usually has another label and gives nothing away."""
        n = self.n_elements
        is_train = torch.zeros(n * n, dtype=torch.bool)
        is_train[train] = True
        swapped = (pairs % n) * n + pairs // n
        flat = self.table.flatten()
        return ~(is_train[swapped] & (flat[swapped] == flat[pairs]))

    def element_spectra_bases(self) -> list:
        """The `element_bases`, built (no claim about the circuit: a decomposition of W_E)."""
        return [self.builders[name]() for name in self.element_bases]

    def basis(self, name: str | None = None):
        """The named basis of this task (default: its first); UsageError if it has none."""
        if not self.bases:
            raise UsageError(f"{self.formula} has no known basis")
        name = name or self.bases[0]
        if name not in self.bases:
            known = ", ".join(self.bases)
            raise UsageError(
                f"basis {name!r} does not belong to {self.formula}; its bases: {known}"
            )
        return self.builders[name]()


def require_basis(task: Task, basis) -> None:
    """Refuse to measure in a basis of another group than the task's."""
    if task.group is None or basis.group != task.group or basis.n != task.n_elements:
        raise UsageError(
            f"{basis.title} does not belong to {task.formula} "
            f"(its group is {task.group or 'none known'})"
        )
