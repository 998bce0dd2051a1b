"""Bases of functions on a set of elements; one module per family (see `base.Basis`).

A basis is built from what it is a basis of (n for the residues, a group's multiplication table
for its irreps), never from a task: `grokinterp.tasks` picks the bases of each task.
"""

from grokinterp.bases.base import Basis, Component
from grokinterp.bases.dlog import dlog_basis
from grokinterp.bases.fourier import fourier_basis

__all__ = ["Basis", "Component", "dlog_basis", "fourier_basis"]
