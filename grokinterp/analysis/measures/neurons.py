"""Neuron clustering by basis component (Nanda et al. 2023, section 5.1).

Each MLP neuron's activation at `=` is a function of (a, b) over the task's domain, the product
of the two operand sets. Its 2D transform A M B^T (A, B: the task's basis restricted to each
operand set) splits its energy into products of rows. Component K explains the products of
{trivial rows} u K with each other, except trivial x trivial (for the Fourier basis: the
const/cos k/sin k products minus const x const, the paper's rule); the denominator is the energy
outside trivial x trivial, the neuron's centred variance when the constant is the only trivial row.
A neuron belongs to the component that explains the largest fraction (FVE); the paper counts
neurons with FVE > 0.85.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.bases import Basis
from grokinterp.bases.base import transform_2d
from grokinterp.tasks import Task, require_basis

FVE_THRESHOLD = 0.85


def _explained(squares: Tensor, basis_a: Basis, basis_b: Basis) -> Tensor:
    """[ckpt, spectrum, d_mlp]: the energy in (trivial u K) x (trivial u K) for each component K,
    gathered once per distinct row count (the Fourier basis has one: const, cos k, sin k)."""
    trivial_a, trivial_b = basis_a.trivial_rows(), basis_b.trivial_rows()
    rows_a = [trivial_a + list(c.rows) for c in basis_a.spectrum]
    rows_b = [trivial_b + list(c.rows) for c in basis_b.spectrum]
    out = squares.new_zeros(squares.shape[0], len(rows_a), squares.shape[-1])
    for width in sorted({len(r) for r in rows_a}):
        picked = [j for j, r in enumerate(rows_a) if len(r) == width]
        index_a = torch.tensor([rows_a[j] for j in picked])
        index_b = torch.tensor([rows_b[j] for j in picked])
        gathered = squares[:, index_a[:, :, None], index_b[:, None, :]]
        out[:, picked] = gathered.sum(dim=(2, 3))
    return out


def component_fve(
    post: Float[Tensor, "ckpt pairs d_mlp"], task: Task, basis: Basis
) -> Float[Tensor, "ckpt d_mlp spectrum"]:
    """Fraction of each neuron's energy (trivial x trivial left out) over the domain explained
    by each spectrum component. A neuron that never varies gets 0 everywhere."""
    require_basis(task, basis)
    operands_a, operands_b = task.operands
    basis_a, basis_b = basis.restricted(operands_a), basis.restricted(operands_b)
    if [c.key for c in basis_a.spectrum] != [c.key for c in basis_b.spectrum]:
        raise ValueError(f"{basis.title}: operand bases with different components")
    grid = post.reshape(post.shape[0], len(operands_a), len(operands_b), post.shape[-1])
    squares = transform_2d(grid, basis_a, basis_b).pow_(2)  # a fresh tensor: squared in place
    trivial_a, trivial_b = basis_a.trivial_rows(), basis_b.trivial_rows()
    baseline = squares[:, trivial_a][:, :, trivial_b].sum(dim=(1, 2))  # [ckpt, d_mlp]
    total = squares.sum(dim=(1, 2)) - baseline
    explained = _explained(squares, basis_a, basis_b) - baseline[:, None]  # [ckpt, spectrum, m]
    fve = explained / total[:, None].clamp_min(torch.finfo(total.dtype).tiny)
    return fve.where(total[:, None] > 0, 0.0).transpose(1, 2)


def cluster_sizes(
    fve_by_component: Float[Tensor, "ckpt d_mlp spectrum"], threshold: float = FVE_THRESHOLD
) -> tuple[Tensor, Tensor, Tensor]:
    """(the dominant component's 1-based position in the spectrum, which is the frequency k for
    the Fourier and discrete-log bases, and its FVE, per neuron; and per checkpoint the count of
    neurons with FVE > threshold whose dominant component is at position j + 1, column j)."""
    fve, dominant = fve_by_component.max(dim=-1)
    clustered = fve > threshold
    counts = torch.zeros(fve.shape[0], fve_by_component.shape[-1], dtype=torch.int64)
    counts.scatter_add_(1, dominant, clustered.long())
    return dominant + 1, fve, counts
